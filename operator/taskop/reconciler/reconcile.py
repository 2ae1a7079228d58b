"""One reconcile pass of one Task: read the Task, its Job and its pods; decide; write.

Level-triggered and idempotent: it recomputes everything from what the API server holds, so an
operator restart at any moment is harmless. Every status write carries the Task's resourceVersion;
a lost race (`Conflict`) makes the caller run the pass again on fresh data.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from taskop.domain import lifecycle
from taskop.domain.jobs import API_LABEL, TASK_LABEL, JobSettings, build_job
from taskop.domain.lifecycle import ConvergeAction, ConvergenceSettings, TaskRecord
from taskop.domain.names import job_name, label_value
from taskop.domain.outcome import OutcomeSettings, image_pull_failure, read_outcome
from taskop.domain.spec import SpecError, TaskSpec, parse_spec
from taskop.domain.states import ConditionReason, TaskState
from taskop.domain.status import derive_conditions, record_from_status, record_to_status
from taskop.kube.client import AlreadyExists, Kube, Obj
from taskop.reconciler.observed import Observed
from taskop.settings import Settings

log = logging.getLogger("taskop.reconciler")

FINALIZER = "taskop.dev/cleanup"
TASK_NAME_ANNOTATION = "taskop.dev/task-name"  # on pods: which Task a pod's events concern
REASON_INVALID_SPEC = "invalid spec: "


@dataclass
class Plan:
    """What a pass decided besides the status write, for the engine to carry out."""

    recheck_in: float | None = None
    deliver_callback: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    image_pull_failing: bool = False  # a pod waits on a failed pull: look again after the grace


def now_ns() -> int:
    return time.time_ns()


class TaskReconciler:
    def __init__(self, kube: Kube, settings: Settings, observed: Observed | None = None) -> None:
        self.kube = kube
        self.observed = observed if observed is not None else Observed()
        self.settings = settings
        self.convergence = settings.convergence()
        # kubectl users keep finished Tasks (like Jobs) unless the Task asked for BBS semantics.
        self.convergence_kept = dataclasses.replace(
            self.convergence, expire_completed_task_duration=None
        )
        self.job_settings = JobSettings()
        self.lost_cells: set[str] = set()  # nodes seen deleted (filled by the node watch)
        self.outcome_settings = OutcomeSettings(
            image_pull_grace_period=settings.image_pull_grace_period
        )

    async def reconcile(self, namespace: str, name: str) -> tuple[Obj | None, Plan]:
        """One pass; returns the Task as last seen (None when gone) and the plan."""
        task = await self.kube.get_task(namespace, name)
        plan = Plan()
        if task is None:
            return None, plan
        meta = task["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finalize(task)
            return None, plan
        if FINALIZER not in meta.get("finalizers", []):
            task = await self.kube.patch_task(
                namespace,
                name,
                meta["resourceVersion"],
                {"metadata": {"finalizers": [*meta.get("finalizers", []), FINALIZER]}},
            )
            meta = task["metadata"]

        status: dict[str, Any] = task.get("status") or {}
        now = now_ns()
        try:
            spec: TaskSpec | None = parse_spec(task.get("spec") or {})
        except SpecError as e:
            spec = None
            spec_error = "; ".join(e.messages)
        guid = spec.task_guid(name) if spec else (task.get("spec") or {}).get("guid", name)
        domain = spec.domain if spec else (task.get("spec") or {}).get("domain", "")
        rec = record_from_status(guid, domain, status)
        new_status: dict[str, Any] = {}
        reason: ConditionReason | None = None
        message = ""
        if not status.get("state"):
            rec = lifecycle.desire(guid, domain, now)
            plan.events.append(("Normal", "Accepted", f"task {guid} is Pending"))
        before = rec

        if spec is None:
            if rec.state in (TaskState.PENDING, TaskState.RUNNING):
                rec = lifecycle.fail(rec, REASON_INVALID_SPEC + spec_error, now)
                reason = ConditionReason.INVALID_SPEC
                plan.events.append(("Warning", "InvalidSpec", spec_error))
        elif spec.cancelled:
            # Cancelled here (kubectl) or already by the BBS API: either way the Job must go.
            if rec.state in (TaskState.PENDING, TaskState.RUNNING):
                rec = lifecycle.cancel(rec, now)
                plan.events.append(("Normal", "Cancelled", "task was cancelled"))
            if await self._delete_job(namespace, name):
                plan.events.append(("Normal", "JobDeleted", f"deleted Job {job_name(name)}"))
        elif not spec.external and rec.state in (TaskState.PENDING, TaskState.RUNNING):
            rec, job_status, reason, message = await self._follow_job(task, spec, rec, now, plan)
            new_status.update(job_status)

        # BBS convergence (expiry, vanished cells, kicks, callback retries).
        convergence = self._convergence_for(task, spec)
        if rec.state is not TaskState.COMPLETED or rec == before:
            decision = lifecycle.converge(
                rec,
                now,
                convergence,
                has_callback=bool(spec and spec.completion_callback_url),
                cell_exists=await self._cell_exists(rec),
            )
            if decision.action is ConvergeAction.DELETE:
                log.info("deleting expired task", extra={"task": f"{namespace}/{name}"})
                await self.kube.delete_task(namespace, name, uid=meta["uid"])
                return None, plan
            if decision.record is not None:
                rec = decision.record
                if decision.action is ConvergeAction.EXPIRE_PENDING:
                    await self._delete_job(namespace, name)
                    plan.events.append(("Warning", "NotStarted", rec.failure_reason))
                if decision.action is ConvergeAction.CELL_DISAPPEARED:
                    reason = ConditionReason.CELL_DISAPPEARED
                    message = f"node {rec.cell_id} was deleted while the task ran on it"
                    await self._delete_job(namespace, name)
                    plan.events.append(("Warning", "CellDisappeared", message))
            plan.deliver_callback = decision.callback

        if rec.state is TaskState.COMPLETED and before.state is not TaskState.COMPLETED:
            plan.events.append(
                (
                    "Warning" if rec.failed else "Normal",
                    "Completed",
                    f"failed: {rec.failure_reason}" if rec.failed else "succeeded",
                )
            )
        never_called_back = not (status.get("callback") or {}).get("attempts")
        if rec.state is TaskState.COMPLETED and never_called_back:
            # Completed here, or by the BBS API (Complete, Cancel, Fail): call back right away.
            plan.deliver_callback = bool(spec and spec.completion_callback_url)

        new_status.update(record_to_status(rec))
        generation = meta.get("generation")
        new_status["conditions"] = derive_conditions(
            rec, status.get("conditions", []), now, generation, reason=reason, message=message
        )
        new_status["observedGeneration"] = generation
        if _changed(status, new_status):
            task = await self.kube.patch_task_status(
                namespace, name, meta["resourceVersion"], new_status
            )
        plan.recheck_in = lifecycle.next_check_in(
            rec,
            now_ns(),
            convergence,
            has_callback=bool(spec and spec.completion_callback_url),
        )
        if spec is not None and not spec.external and rec.state is TaskState.RUNNING:
            # A Job's pod reports its own fate (node loss included) through watch events: no
            # periodic look at running Job tasks, which would cost API calls per task.
            plan.recheck_in = None
        if plan.image_pull_failing:
            # Pods waiting on an image pull become failures after a grace period.
            grace = self.settings.image_pull_grace_period
            plan.recheck_in = min(plan.recheck_in or grace, grace)
        return task, plan

    async def _cell_exists(self, rec: TaskRecord) -> bool:
        """False only for a Running task whose node was seen deleted and is still gone."""
        if rec.state is not TaskState.RUNNING or rec.cell_id not in self.lost_cells:
            return True
        if await self.kube.node_exists(rec.cell_id):
            self.lost_cells.discard(rec.cell_id)  # re-created under the same name
            return True
        return False

    def _convergence_for(self, task: Obj, spec: TaskSpec | None) -> ConvergenceSettings:
        """BBS expiry of completed tasks applies to tasks created through the BBS API and to
        tasks with a completion callback; other Tasks stay until someone deletes them."""
        labels = task["metadata"].get("labels") or {}
        bbs = labels.get(API_LABEL) == "bbs" or bool(spec and spec.completion_callback_url)
        return self.convergence if bbs else self.convergence_kept

    async def _follow_job(
        self, task: Obj, spec: TaskSpec, rec: TaskRecord, now: int, plan: Plan
    ) -> tuple[TaskRecord, dict[str, Any], ConditionReason | None, str]:
        meta = task["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        jname = job_name(name)
        extra: dict[str, Any] = {"jobName": jname}
        key = (namespace, name)
        job = self.observed.job(key) or await self.kube.get_job(namespace, jname)
        if job is None:
            try:
                manifest = build_job(
                    name,
                    namespace,
                    meta["uid"],
                    spec,
                    self.job_settings,
                    annotations=meta.get("annotations") or {},
                )
                pod_meta = manifest["spec"]["template"]["metadata"]
                pod_meta.setdefault("annotations", {})[TASK_NAME_ANNOTATION] = name
            except SpecError as e:
                text = "; ".join(e.messages)
                plan.events.append(("Warning", "InvalidSpec", text))
                return (
                    lifecycle.fail(rec, REASON_INVALID_SPEC + text, now),
                    extra,
                    ConditionReason.INVALID_SPEC,
                    text,
                )
            try:
                job = await self.kube.create_job(namespace, manifest)
                plan.events.append(("Normal", "JobCreated", f"created Job {jname}"))
            except AlreadyExists:
                job = await self.kube.get_job(namespace, jname)
            if job is None:
                return rec, extra, None, ""
        owners = [o.get("uid") for o in job["metadata"].get("ownerReferences", [])]
        if meta["uid"] not in owners:
            # A Job of that name that is not ours: never adopt or touch it.
            text = f"Job {jname} exists and is not owned by this Task; delete it or rename the Task"
            plan.events.append(("Warning", "JobConflict", text))
            return rec, extra, ConditionReason.PENDING, text
        pods = self.observed.pods(key)
        if not pods and _finished(job):
            # A finished Job always has a pod (kept until the Task goes): ask the API server
            # rather than read a result from pods the watch has not delivered yet.
            pods = await self.kube.list_pods(namespace, f"{TASK_LABEL}={label_value(name)}")
        pods = [
            p
            for p in pods
            if any(
                o.get("uid") == job["metadata"]["uid"]
                for o in p["metadata"].get("ownerReferences", [])
            )
        ]
        outcome = read_outcome(job, pods, now, self.outcome_settings)
        plan.image_pull_failing = any(image_pull_failure(p) for p in pods)
        if outcome.pod_name:
            extra["podName"] = outcome.pod_name
        if outcome.state is TaskState.COMPLETED:
            rec = lifecycle.complete_from_job(
                rec, outcome.failed, outcome.failure_reason, outcome.result, now
            )
            if not outcome.job_finished:  # e.g. an image that never pulls: stop the Job
                await self._delete_job(namespace, name)
            return rec, extra, outcome.reason, outcome.message
        if outcome.state is TaskState.RUNNING and rec.state is TaskState.PENDING:
            rec, _ = lifecycle.start(rec, outcome.cell_id, now)
            plan.events.append(
                ("Normal", "Running", f"pod {outcome.pod_name} runs on node {outcome.cell_id}")
            )
        return rec, extra, outcome.reason, outcome.message

    async def _delete_job(self, namespace: str, name: str) -> bool:
        return await self.kube.delete_job(namespace, job_name(name))

    async def _finalize(self, task: Obj) -> None:
        meta = task["metadata"]
        finalizers = meta.get("finalizers", [])
        if FINALIZER not in finalizers:
            return
        await self._delete_job(meta["namespace"], meta["name"])
        await self.kube.patch_task(
            meta["namespace"],
            meta["name"],
            meta["resourceVersion"],
            {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER]}},
        )


def _finished(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(k) != v for k, v in new.items())
