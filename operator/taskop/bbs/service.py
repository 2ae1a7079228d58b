"""The BBS write operations: the shared state machine applied with resourceVersion preconditions.

Every state change is a status merge patch carrying the resourceVersion the rule was applied to.
A `Conflict` (someone else wrote first: the reconciler, another request) re-reads the Task from
the API server and applies the rule again, up to `MAX_ATTEMPTS` times; so of two concurrent
transitions from the same state (Cancel and Complete of a Running task) exactly one wins and the
other gets the state machine's error. A rule refused on the view's possibly stale copy is
re-checked once on a fresh read before the error is returned.

Job-run tasks (not ``spec.external``) are run by taskop itself, so cells may not StartTask,
CompleteTask or RejectTask them (InvalidRequest saying so). FailTask is allowed on them and acts
like CancelTask with the given reason: the task completes failed and its Job is stopped
(``spec.cancelled: true``).

Cancelling (or failing) a Job-run task takes two writes: ``spec.cancelled`` (the main resource)
and the Completed status (the status subresource; no single write changes both). The spec goes
first, under the resourceVersion the state machine accepted, and is the commit point: once it is
written the Job is stopped and the cancel recorded whatever happens next, because the reconciler
does both for a cancelled Task (`taskop.domain.decide`). The status write that follows is only
what makes BBS's answer true at once (a client reads Completed right after Cancel). If it fails,
the client gets an error, and either a retry writes it (the spec says cancelled, the status still
Pending or Running: the retry skips the spec and writes the status) or the reconciler has
recorded the cancel first (a retry then gets InvalidStateTransition, as from BBS after a lost
answer; the callback says "task was cancelled" and the Job is gone either way). The other order
would leave a Task saying "task was cancelled" — and calling back so — while its Job runs to the
end, with a retry refused before it reaches the Job. A request whose spec write won answers
success when the status it then finds is Completed: only its cancel can have completed the task
(the reconciler completes a cancelled task as cancelled). External tasks have no Job: Cancel and
Fail are one status write.

An external task's TaskDefinition, and a Job-run task's environment values, go into a Secret
owned by its Task (`desire`); see `taskop.bbs.view` for how it is read back.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from taskop import metrics
from taskop.bbs import models
from taskop.bbs.codec import decode_text
from taskop.bbs.convert import DEFINITION_SECRET_LABEL
from taskop.bbs.desire import plan
from taskop.bbs.view import TaskView, guid_of
from taskop.domain import lifecycle
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.lifecycle import TaskRecord
from taskop.domain.limits import task_bytes
from taskop.domain.names import task_name
from taskop.domain.states import TaskState
from taskop.domain.status import derive_conditions, record_from_status, record_to_status
from taskop.domain.timefmt import parse_ns
from taskop.kube.client import AlreadyExists, Conflict, Invalid, Kube, NotFound, Obj
from taskop.kube.owned import SecretNotCreated, create_owned_secret
from taskop.settings import Settings

log = logging.getLogger("taskop.bbs")

DESIRED_HERE = {"api": "bbs"}
"""The status mark of the Tasks DesireTask created (`callback.presents_client_certificate`): in
status, which only taskop writes; not in the taskop.dev/api label: any Task creator may set it."""

MAX_ATTEMPTS = 8
CANCEL_PATCH = {"spec": {"cancelled": True}}

Rule = Callable[["Current", int], TaskRecord | None]
"""A transition: the new record for the current Task at ``now``, None for "nothing to write"."""


def now_ns() -> int:
    return time.time_ns()


@dataclasses.dataclass(frozen=True)
class Current:
    """A Task as read, with its BBS record."""

    obj: Obj
    record: TaskRecord

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def external(self) -> bool:
        return bool((self.obj.get("spec") or {}).get("external"))

    @property
    def cancelled(self) -> bool:
        return bool((self.obj.get("spec") or {}).get("cancelled"))

    @classmethod
    def of(cls, obj: Obj) -> Current:
        spec = obj.get("spec") or {}
        guid, domain = guid_of(obj), str(spec.get("domain", ""))
        status = obj.get("status") or {}
        if status.get("state"):
            record = record_from_status(guid, domain, status)
        else:  # not initialised yet: Pending since its creation
            created = parse_ns(obj["metadata"]["creationTimestamp"])
            record = TaskRecord(guid=guid, domain=domain, created_at=created, updated_at=created)
        return cls(obj, record)


class TaskService:
    def __init__(self, kube: Kube, settings: Settings, view: TaskView) -> None:
        self.kube = kube
        self.settings = settings
        self.view = view
        self.namespace = settings.bbs_namespace
        self.profiles = settings.profiles
        self.job_settings = settings.job_settings()
        self.task_annotations = settings.task_annotations

    # --- DesireTask
    async def desire(self, req: models.DesireTaskRequest) -> None:
        guid = req.task_guid
        if self.view.get(guid) is not None:
            raise BBSError.resource_exists()
        if self.profiles.profile(req.domain).taskstore:
            raise BBSError.invalid_request(
                [
                    f"domain {req.domain!r} is served by the taskstore API: add its tasks there"
                    " (POST /update); BBS clients may read them"
                ]
            )
        desired = plan(
            req,
            external=self.profiles.external(req.domain),
            annotations=self.task_annotations,
            job_settings=self.job_settings,
        )
        body = desired.task
        size = task_bytes(body.get("spec") or {}, body["metadata"].get("annotations"))
        if size > self.settings.max_task_bytes:
            raise BBSError.invalid_request(
                [
                    f"the task definition takes {size:,} bytes as a Task, more than the"
                    f" {self.settings.max_task_bytes:,} the operator holds per task"
                    " (TASKOP_MAX_TASK_BYTES)"
                ]
            )
        try:
            created = await self.kube.create_task(self.namespace, body)
        except AlreadyExists:
            raise BBSError.resource_exists() from None
        except Invalid as e:
            raise BBSError.invalid_request([f"Kubernetes refused the task: {e}"]) from None
        self.view.observe(created)
        # The Task first, then its Secrets: a Secret needs the Task's uid for the owner reference
        # that has the garbage collector delete it with the Task (a Secret made first would need
        # a third write to gain its owner, and a crash before it would leave credentials behind
        # for good). A Secret that cannot be created deletes the Task again (`create_owned_secret`),
        # so the desire fails whole. Until its Secrets exist a Task is incomplete: one whose
        # definition is in a Secret (external, or Job-run with environment values) is left out of
        # BBS answers and events (`TaskView`), a Job-run one's pod waits for them (a missing
        # secretKeyRef keeps its container in CreateContainerConfigError, a missing Secret volume
        # in ContainerCreating: Pending to the reconciler, not a failure). Should the clean-up
        # fail too (or taskop die in between), the Task stays incomplete, out of BBS answers,
        # until the reconciler expires it as a Pending task.
        for secret in desired.secrets:
            made = await self._create_owned_secret(created, secret)
            if DEFINITION_SECRET_LABEL in (secret["metadata"].get("labels") or {}):
                self.view.observe_definition(made)
        log.info("task desired", extra={"guid": guid, "task": created["metadata"]["name"]})
        now = now_ns()
        record = TaskRecord(guid=guid, domain=req.domain, created_at=now, updated_at=now)
        try:
            obj = await self.kube.patch_task_status(
                self.namespace,
                created["metadata"]["name"],
                created["metadata"]["resourceVersion"],
                {**self._status(created, record, now), **DESIRED_HERE},
            )
        except Conflict:  # the reconciler initialised it first: fine, but the mark must land
            marked = await self._mark_desired(created)
            if marked is None:
                return
            obj = marked
        self.view.observe(obj)

    async def _mark_desired(self, created: Obj) -> Obj | None:
        """Record ``status.api: bbs`` on the Task this door just created (not on another of its
        name, created meanwhile). Its completion callback presents taskop's client certificate
        only when the mark is there: without it (say taskop stopped before writing it) the
        callback goes without, and a receiver that requires it refuses: never the other way."""
        name, uid = created["metadata"]["name"], created["metadata"]["uid"]
        for _ in range(5):
            task = await self.kube.get_task(self.namespace, name)
            if task is None or task["metadata"].get("uid") != uid:
                return None
            if (task.get("status") or {}).get("api") == DESIRED_HERE["api"]:
                return task
            try:
                return await self.kube.patch_task_status(
                    self.namespace, name, task["metadata"]["resourceVersion"], DESIRED_HERE
                )
            except Conflict:
                continue
            except NotFound:
                return None
        log.warning(
            "could not record that the BBS API desired the task: its callback will present no"
            " client certificate",
            extra={"task": name},
        )
        return await self.kube.get_task(self.namespace, name)

    async def _create_owned_secret(self, task: Obj, secret: Obj) -> Obj:
        try:
            return await create_owned_secret(self.kube, self.namespace, task, secret)
        except SecretNotCreated as e:
            meta = task["metadata"]
            self.view.forget(meta["name"], meta["uid"], meta["resourceVersion"])
            raise BBSError.unknown(str(e)) from None

    # --- cell operations (external tasks)
    async def start(self, guid: str, cell_id: str) -> bool:
        should_start = True

        def rule(cur: Current, now: int) -> TaskRecord | None:
            nonlocal should_start
            self._require_external(cur, guid, "StartTask")
            record, should_start = lifecycle.start(cur.record, cell_id, now)
            return record if should_start else None

        await self._transition(guid, rule)
        return should_start

    async def complete(
        self, guid: str, cell_id: str, failed: bool, failure_reason: bytes, result: bytes
    ) -> None:
        reason, text = decode_text(failure_reason), decode_text(result)

        def rule(cur: Current, now: int) -> TaskRecord:
            self._require_external(cur, guid, "CompleteTask")
            return lifecycle.complete(cur.record, cell_id, failed, reason, text, now)

        await self._transition(guid, rule)

    async def reject(self, guid: str, rejection_reason: bytes) -> None:
        reason = decode_text(rejection_reason)
        limit = self.settings.max_task_retries

        def rule(cur: Current, now: int) -> TaskRecord:
            self._require_external(cur, guid, "RejectTask")
            return lifecycle.reject(cur.record, reason, now, limit)

        await self._transition(guid, rule)

    # --- failing and cancelling
    async def fail(self, guid: str, failure_reason: bytes) -> None:
        reason = decode_text(failure_reason)
        await self._transition(
            guid, lambda cur, now: lifecycle.fail(cur.record, reason, now), stop_job=True
        )

    async def cancel(self, guid: str) -> None:
        await self._transition(
            guid, lambda cur, now: lifecycle.cancel(cur.record, now), stop_job=True
        )

    async def resolving(self, guid: str) -> None:
        await self._transition(guid, lambda cur, now: lifecycle.resolving(cur.record, now))

    async def delete(self, guid: str) -> None:
        cur = await self._read(guid, fresh=False)
        fresh = False
        for _ in range(MAX_ATTEMPTS):
            try:
                lifecycle.check_delete(cur.record)
            except BBSError:
                if fresh:
                    raise
                cur, fresh = await self._read(guid, fresh=True), True
                continue
            meta = cur.obj["metadata"]
            try:
                await self.kube.delete_task(
                    self.namespace,
                    cur.name,
                    uid=meta["uid"],
                    resource_version=meta["resourceVersion"],
                )
            except Conflict:
                cur, fresh = await self._read(guid, fresh=True), True
                continue
            except NotFound:
                raise BBSError.resource_not_found() from None
            self.view.forget(cur.name, meta["uid"], meta["resourceVersion"])
            log.info("task deleted", extra={"guid": guid, "task": cur.name})
            return
        raise _too_many_conflicts(guid)

    # --- internals
    @staticmethod
    def _require_external(cur: Current, guid: str, verb: str) -> None:
        if not cur.external:
            raise BBSError.invalid_request(
                [
                    f"task {guid} is run by taskop as a Kubernetes Job; only external tasks "
                    f"accept {verb}"
                ]
            )

    async def _read(self, guid: str, *, fresh: bool) -> Current:
        """The Task of ``guid``: from the view, else (or when ``fresh``) from the API server."""
        entry = self.view.get(guid)
        if not fresh and entry is not None and (held := self.view.obj_of(entry)) is not None:
            return Current.of(held)
        name = entry.name if entry is not None else task_name(guid)
        obj = await self.kube.get_task(self.namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp") or guid_of(obj) != guid:
            raise BBSError.resource_not_found()
        self.view.observe(obj)
        return Current.of(obj)

    async def _transition(self, guid: str, rule: Rule, *, stop_job: bool = False) -> Current:
        """Apply ``rule`` and write the result; returns the Task as written (or as read).

        ``stop_job`` (Cancel, Fail): a Job-run task gets ``spec.cancelled`` first, the commit
        point (module doc)."""
        cur = await self._read(guid, fresh=False)
        fresh = False
        committed = False  # this request's spec.cancelled write won
        for _ in range(MAX_ATTEMPTS):
            if committed and cur.record.state in (TaskState.COMPLETED, TaskState.RESOLVING):
                return cur  # the reconciler recorded this request's cancel first
            now = now_ns()
            try:
                record = rule(cur, now)
            except BBSError:
                if fresh:
                    raise
                cur, fresh = await self._read(guid, fresh=True), True
                continue
            if record is None or record == cur.record:
                return cur
            meta = cur.obj["metadata"]
            if stop_job and not cur.external and not cur.cancelled:
                try:
                    obj = await self.kube.patch_task(
                        self.namespace, cur.name, meta["resourceVersion"], CANCEL_PATCH
                    )
                except Conflict:
                    cur, fresh = await self._read(guid, fresh=True), True
                    continue
                except NotFound:
                    raise BBSError.resource_not_found() from None
                self.view.observe(obj)
                committed = True
                cur = Current(obj, cur.record)
                meta = obj["metadata"]
            try:
                obj = await self.kube.patch_task_status(
                    self.namespace,
                    cur.name,
                    meta["resourceVersion"],
                    self._status(cur.obj, record, now),
                )
            except Conflict:
                cur, fresh = await self._read(guid, fresh=True), True
                continue
            except NotFound:
                raise BBSError.resource_not_found() from None
            metrics.record_transition(
                cur.obj.get("status") or {}, obj.get("status") or {}, now / 1e9
            )
            self.view.observe(obj)
            log.info(
                "task %s",
                record.state.value,
                extra={"guid": guid, "task": cur.name, "state": record.state.value},
            )
            return Current(obj, record)
        raise _too_many_conflicts(guid)

    @staticmethod
    def _status(obj: Obj, record: TaskRecord, now: int) -> dict[str, Any]:
        status = obj.get("status") or {}
        generation = obj["metadata"].get("generation")
        return {
            **record_to_status(record),
            "conditions": derive_conditions(
                record, status.get("conditions") or [], now, generation
            ),
        }


def _too_many_conflicts(guid: str) -> BBSError:
    return BBSError(
        ErrorType.ResourceConflict,
        f"task {guid} kept changing while taskop updated it ({MAX_ATTEMPTS} conflicts); try again",
    )
