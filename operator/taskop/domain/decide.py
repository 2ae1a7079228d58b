"""The decision of one reconcile pass, pure: what the cache shows → what to write.

Like the Job controller's ``syncJob``, a pass reads its caches, decides here, then writes. This
module holds no clock, no client and no state; the reconciler (``taskop.reconciler.controller``)
reads and writes. The promises it keeps, and where:

- **At most once.** ``status.jobName`` is the witness that the Job was created: a Task whose status
  names a Job that is gone — confirmed by the API server, not just the cache — fails; it never gets
  a second Job. The Job is created carrying the finalizer ``taskop.dev/witness``, so until a status
  write names it the Job cannot vanish (a delete leaves it visible, terminating): an operator that
  crashes there finds it again on restart. The witness has no write of its own: it rides on the
  first write with news (`_nothing_to_say_yet`), Running or Completed. The finalizer is removed once
  a status names the Job *and* the Job has finished or is being deleted (`_release_now`), as the
  Job controller keeps its own pod finalizer until it has recorded the pod: released while its pod
  runs, the patch races the Job controller (a chaos run saw Jobs past their deadline report
  ``BackoffLimitExceeded``); released once finished, it makes the Job controller write nothing.
  Retries happen only inside the one Job (``backoffLimit`` = ``spec.retries``).
- **At most once under Kueue too.** A queued Task's pods are created gated; one pod at a time is
  released, after ``status.releasedPod`` records it, and another only once that one never ran or
  failed by itself; one stopped after a node took it fails the Task (`taskop.domain.queueing`,
  `_queue_step`).
- **Ownership.** A Job is acted on only when an owner reference carries the Task's uid, and every
  delete names that uid. A same-named Job owned by another Task of the same name (an earlier Task,
  being garbage-collected) is waited for; any other same-named Job fails the Task at once.
- **Outcomes are read, never invented.** Completed (succeeded) is recorded only from a pod whose
  task container's terminated state has been seen; until then the pass asks for the pods to be read
  (`Decision.read_pods`). A result that cannot be read is a stated failure, never an empty success.
- **Nothing stuck.** A pod that cannot be created (admission, quota) fails the Task after
  ``pod_create_grace_period``; Pod Security refusals fail it at once, with the API server's message.
  A pod no node can take fails it after its domain profile's ``unschedulableGracePeriod``
  (counted from the pod's PodScheduled condition, so a restart keeps the deadline), in Diego's
  words (``found no compatible cell: …``, ``insufficient resources: memory: …``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from taskop.domain import lifecycle, queueing
from taskop.domain.egress import network_policy
from taskop.domain.fields import field as _get
from taskop.domain.jobs import JobSettings, build_job, unenforced
from taskop.domain.lifecycle import ConvergeAction, ConvergenceSettings, TaskRecord
from taskop.domain.limits import oversized_error
from taskop.domain.names import job_name
from taskop.domain.outcome import (
    OutcomeSettings,
    image_pull_failure,
    placement_failure,
    read_outcome,
    result_from_log,
    task_container_terminated,
    unschedulable,
)
from taskop.domain.profiles import Policy
from taskop.domain.spec import SpecError, TaskSpec, parse_spec
from taskop.domain.states import ConditionReason, ConditionType, TaskState
from taskop.domain.status import (
    derive_conditions,
    record_from_status,
    record_to_status,
    set_condition,
)
from taskop.domain.timefmt import parse_ns

Obj = Mapping[str, Any]

WITNESS_FINALIZER = "taskop.dev/witness"
"""On a Job from its creation until ``status.jobName`` names it and the Job has finished or is
being deleted (see the module docstring)."""
LEGACY_FINALIZER = "taskop.dev/cleanup"
"""Finalizer of taskop ≤ 0.1 (removed from Tasks being deleted; no longer added)."""
TASK_NAME_ANNOTATION = "taskop.dev/task-name"
"""On pods: the Task whose Job made them (the pod watch keys its cache by it)."""
API_LABEL = "taskop.dev/api"
REASON_INVALID_SPEC = "invalid spec: "
POD_SECURITY_REFUSAL = "violates PodSecurity"

_NS = 1_000_000_000
UNAVAILABLE_RECHECK_MAX = 30.0
"""Seconds between attempts at most while a webhook refuses the Job's create as unreachable."""
PASSENGERS = frozenset({"podName"})
"""Status fields that never cause a write on their own: they ride along with the next change
(a pod's name while it is still Pending would cost a Task write per Task for little)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DecideSettings:
    convergence: ConvergenceSettings = dataclasses.field(default_factory=ConvergenceSettings)
    jobs: JobSettings = dataclasses.field(default_factory=JobSettings)
    outcome: OutcomeSettings = dataclasses.field(default_factory=OutcomeSettings)
    pod_create_grace_period: float = 30.0
    """Seconds a Job's pod may fail to be created (quota, limit range) before the Task fails."""
    conflict_recheck: float = 2.0
    """Seconds between looks while a previous same-named Task's Job is garbage-collected."""
    ttl_seconds_after_finished: float | None = None
    """Tasks without spec.ttlSecondsAfterFinished (and outside BBS's expiry): deleted this long
    after completion; None: kept."""
    succeeded_events: bool = False
    """Record a Normal ``Succeeded`` Event per Task that succeeds (Warnings are always recorded:
    a write per Task that nothing reads, off by default)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """Everything a pass knows about one Task, from the caches (and reads it asked for)."""

    task: Obj
    job: Obj | None = None
    """The Job named ``job_name(task)``, whoever owns it."""
    job_absent_confirmed: bool = False
    """The API server just answered 404 for that Job (after a `Decision.read_job`)."""
    pods: Sequence[Obj] = ()
    pods_read: bool = False
    """``pods`` were just listed from the API server (after a `Decision.read_pods`)."""
    create_failure: tuple[int, str] | None = None
    """(first seen, message) of the Job controller's latest FailedCreate for this Job."""
    cell_lost: bool = False
    """The node in ``status.cellId`` was seen deleted and not re-created."""
    result_log: str | None = None
    """The result sidecar's log (after a `Decision.read_result_log`)."""
    result_log_gone: bool = False
    """The API server answered 404 for that pod or its log."""
    create_refused: tuple[ConditionReason, str] | None = None
    """Creating the Task's Job (or its NetworkPolicy) was just refused for good: why."""
    create_unavailable: tuple[int, str] | None = None
    """(first seen, message): creating the Task's Job just failed because an admission webhook
    (Kueue's, which fails closed) could not be reached; nothing was created."""
    workload: Obj | None = None
    """The Kueue Workload of the Task's Job (`taskop.domain.queueing.slim_workload`), if seen."""
    pod_obituaries: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Pods of the Task seen deleted: uid → `queueing.obituary` (what they were when they went)."""
    now: int = 0


@dataclasses.dataclass(slots=True)
class Decision:
    status: dict[str, Any] | None = None
    """The status to merge in (with the Task's resourceVersion as precondition); None: unchanged."""
    create_network_policy: dict[str, Any] | None = None
    """The Task's egress NetworkPolicy, created before ``create_job``."""
    create_job: dict[str, Any] | None = None
    """A Job manifest to create *before* the status write (which then names it)."""
    release_job_uid: str | None = None
    """Remove `WITNESS_FINALIZER` from the Job with this uid, after the status write."""
    release_pod: tuple[str, str] | None = None
    """(name, uid): remove `queueing.RELEASE_GATE` from this pod, after the status write that
    records it (``status.releasedPod``)."""
    deactivate_workload: str | None = None
    """Set ``spec.active=false`` on this Kueue Workload (before the Job's delete)."""
    delete_job_uid: str | None = None
    """Delete the Task's Job, with this uid as precondition."""
    delete_task: bool = False
    remove_finalizer: bool = False
    read_job: bool = False
    """Confirm with the API server that the Job is gone, then decide again."""
    read_pods: bool = False
    """List the Job's pods from the API server, then decide again."""
    read_result_log: str | None = None
    """Read this pod's result sidecar log (a result over a termination message), then decide
    again."""
    callback: bool = False
    """Hand the Task to the callback workers (Completed → Resolving → POST → delete)."""
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    recheck_in: float | None = None
    """Look again after this many seconds even if nothing happens."""

    @property
    def reads(self) -> bool:
        return self.read_job or self.read_pods or self.read_result_log is not None


def _finished(job: Obj) -> str | None:
    for c in _get(job, "status", "conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def done_with(job: Obj) -> bool:
    """A finished Job whose witness finalizer is released: a finished Task needs it no more."""
    return bool(_finished(job)) and WITNESS_FINALIZER not in (
        _get(job, "metadata", "finalizers") or ()
    )


def owned_by(obj: Obj, uid: str) -> bool:
    return any(o.get("uid") == uid for o in _get(obj, "metadata", "ownerReferences") or ())


def _owner_named(obj: Obj, kind: str, name: str) -> bool:
    return any(
        o.get("kind") == kind and o.get("name") == name
        for o in _get(obj, "metadata", "ownerReferences") or ()
    )


@dataclasses.dataclass(slots=True)
class _Pass:
    """Working state of one decision."""

    rec: TaskRecord
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    reason: ConditionReason | None = None
    message: str = ""
    unenforced: str = ""
    """Set when the Job is made under the domain's warn policy: what it does not enforce."""


def decide(obs: Observation, settings: DecideSettings, spec: TaskSpec | None = None) -> Decision:
    """One pass for ``obs.task``; ``spec`` may be passed when already parsed (it is immutable)."""
    task = obs.task
    meta = task["metadata"]
    name, uid = str(meta["name"]), str(meta["uid"])
    d = Decision()
    if meta.get("deletionTimestamp"):
        if LEGACY_FINALIZER in (meta.get("finalizers") or ()):
            d.remove_finalizer = True
            if obs.job is not None and owned_by(obs.job, uid):
                d.delete_job_uid = str(obs.job["metadata"]["uid"])
        return d

    raw_spec = task.get("spec") or {}
    live = ((task.get("status") or {}).get("state") or "Pending") in ("Pending", "Running")
    if live and settings.jobs.profiles.profile(str(raw_spec.get("domain") or "")).taskstore:
        # The taskstore API's own: leased by workers, never run, converged or expired (a write
        # would change the resourceVersion, its id). Once BBS completed it (a cancel), it is
        # BBS's again, and expires like any completed task.
        return d
    spec_error = oversized_error(raw_spec) or ""
    if spec is None and not spec_error:
        try:
            spec = parse_spec(raw_spec)
        except SpecError as e:
            spec_error = "; ".join(e.messages)
    guid = spec.task_guid(name) if spec else str(raw_spec.get("guid") or name)
    domain = spec.domain if spec else str(raw_spec.get("domain") or "")
    status: Mapping[str, Any] = task.get("status") or {}
    now = obs.now
    rec = record_from_status(guid, domain, status)
    if not status.get("state"):
        # Never written yet (or every write refused): the clocks start when the Task was
        # created, not at this pass, so the pending expiry runs even if no write ever lands.
        created = _created_ns(meta, now)
        rec = TaskRecord(guid=guid, domain=domain, created_at=created, updated_at=now)
    before = rec
    p = _Pass(rec)
    job = obs.job
    our_job = job if job is not None and owned_by(job, uid) else None

    if spec is None:
        if rec.state in (TaskState.PENDING, TaskState.RUNNING):
            p.rec = lifecycle.fail(rec, REASON_INVALID_SPEC + spec_error, now)
            p.reason = ConditionReason.INVALID_SPEC
            d.events.append(("Warning", "InvalidSpec", spec_error))
    elif spec.cancelled:
        if rec.state in (TaskState.PENDING, TaskState.RUNNING):
            p.rec = lifecycle.cancel(rec, now)
            d.events.append(("Normal", "Cancelled", "task was cancelled"))
        if (
            our_job is not None
            and not _finished(our_job)
            and not _get(our_job, "metadata", "deletionTimestamp")
        ):
            d.delete_job_uid = str(our_job["metadata"]["uid"])
    elif not spec.external and rec.state in (TaskState.PENDING, TaskState.RUNNING):
        _follow_job(obs, spec, settings, p, d)
        if d.reads:
            return Decision(
                read_job=d.read_job, read_pods=d.read_pods, read_result_log=d.read_result_log
            )
    if spec is not None and (our_job is not None or d.create_job is not None):
        # Said on every pass with a Job, not only the one making it (that status write may be
        # lost, and a cancel may come first).
        p.unenforced = _unenforced(spec, settings.jobs)
        recorded = any(
            c.get("type") == ConditionType.ENFORCED.value and c.get("status") == "False"
            for c in (task.get("status") or {}).get("conditions") or ()
        )
        if p.unenforced and not recorded:
            # With the status write that first records it (a write lost to a conflict is made
            # again by the next pass, and so is its Event): once, never lost.
            d.events.append(("Warning", ConditionReason.UNENFORCEABLE.value, p.unenforced))
    if (
        p.rec.state in (TaskState.COMPLETED, TaskState.RESOLVING)
        and our_job is not None
        and d.delete_job_uid is None
        and not _finished(our_job)
        and not _get(our_job, "metadata", "deletionTimestamp")
    ):
        # A completed task's Job is stopped: asked for by the pass that completed it (image
        # pull, pod not created, expiry, lost node), and again by every later pass, since that
        # delete may have failed after the status write (or taskop restarted in between).
        d.delete_job_uid = str(our_job["metadata"]["uid"])
    rec = p.rec
    convergence = _convergence_for(task, spec, settings)
    has_callback = bool(spec and spec.completion_callback_url)
    expiry_over = False
    if rec.state is not TaskState.COMPLETED or rec == before:
        decision = lifecycle.converge(
            rec, now, convergence, has_callback=has_callback, cell_exists=not obs.cell_lost
        )
        if decision.action is ConvergeAction.DELETE:
            return Decision(delete_task=True)
        queued = our_job is not None and spec is not None and _queued(spec, settings)
        if decision.action is ConvergeAction.EXPIRE_PENDING and queued:
            # Queued: "not started" is read from the Task alone. No pod released (or the one
            # released deleted before a node took it): every pod is gated, none ran. One
            # released may run: the expiry is over for it. The expiry's write and a release's
            # both carry the Task's resourceVersion: they cannot both land.
            assert our_job is not None and spec is not None
            job_pods = [q for q in obs.pods if owned_by(q, str(our_job["metadata"]["uid"]))]
            fate = released_fate(status, job_pods, obs.pod_obituaries)
            profile = settings.jobs.profiles.profile(spec.domain)
            if fate not in ("none", "unbound") or not profile.expire_pending_while_queued:
                decision = lifecycle.NOTHING
                expiry_over = True
        elif decision.action is ConvergeAction.EXPIRE_PENDING and our_job is not None:
            # "Not started" is a claim about the Job's pods: confirm it with the API server (a
            # Job or pod event may still be on its way), never with the caches alone. A Job gone
            # meanwhile is a deleted Job (it may have run); one whose pods ended already ran
            # (the cache's word suffices for that: counts only grow), and the expiry is over for
            # it: no read, and no recheck "now" (that would be a pass and two reads every 10 ms
            # while, say, its next pod pulls an image).
            if _a_pod_ended(our_job):
                decision = lifecycle.NOTHING
                expiry_over = True
            elif not obs.pods_read:
                return Decision(read_job=True, read_pods=True)
        elif (
            decision.action is ConvergeAction.EXPIRE_PENDING
            and job is None
            and spec is not None
            and not spec.external
            and not obs.job_absent_confirmed
        ):
            # No Job in the cache is no proof either: a pass may have made it and lost the
            # witness write, its event on the way; its pod may run. Ask the API server first.
            return Decision(read_job=True)
        if decision.record is not None:
            rec = decision.record
            if decision.action is ConvergeAction.EXPIRE_PENDING:
                d.events.append(("Warning", "NotStarted", rec.failure_reason))
            if decision.action is ConvergeAction.CELL_DISAPPEARED:
                p.reason = ConditionReason.CELL_DISAPPEARED
                p.message = f"node {before.cell_id} was deleted while the task ran on it"
                d.events.append(("Warning", "CellDisappeared", p.message))
            if decision.action is ConvergeAction.EXPIRE_PENDING:
                # Past its time with no Job yet (e.g. every create refused by RBAC): expired,
                # not started now; nor is a queued Task's pod released now.
                d.create_job = d.create_network_policy = d.release_pod = None
                p.extra.pop("releasedPod", None)
                p.extra.pop("releasedPodFailures", None)
            if decision.action in (ConvergeAction.EXPIRE_PENDING, ConvergeAction.CELL_DISAPPEARED):
                if our_job is not None and not _finished(our_job):
                    d.delete_job_uid = str(our_job["metadata"]["uid"])
        d.callback = decision.callback

    if (
        rec.state is TaskState.COMPLETED
        and before.state is not TaskState.COMPLETED
        and not d.events
    ):
        # One Event per completion: a specific one (Cancelled, JobDeleted, …), or this.
        if rec.failed:
            d.events.append(("Warning", "Failed", rec.failure_reason))
        elif settings.succeeded_events:
            d.events.append(("Normal", "Succeeded", "task succeeded"))
    if rec.state is TaskState.COMPLETED and not (status.get("callback") or {}).get("attempts"):
        # Completed here, or by the BBS API (Complete, Cancel, Fail): call back right away.
        d.callback = has_callback

    if p.reason is None and rec.state is before.state is TaskState.COMPLETED:
        # Nothing new: keep the reason recorded when it completed.
        for condition in status.get("conditions") or ():
            if condition.get("type") == "Completed" and condition.get("status") == "True":
                known = ConditionReason.__members__.values()
                p.reason = next((r for r in known if r.value == condition.get("reason")), None)
                p.message = str(condition.get("message") or "") if p.reason else ""
    new_status: dict[str, Any] = {**p.extra, **record_to_status(rec)}
    generation = meta.get("generation")
    new_status["conditions"] = derive_conditions(
        rec,
        status.get("conditions") or [],
        now,
        generation,
        reason=p.reason,
        message=p.message,
    )
    if p.unenforced:
        new_status["conditions"] = set_condition(
            new_status["conditions"],
            ConditionType.ENFORCED,
            "False",
            ConditionReason.UNENFORCEABLE,
            p.unenforced,
            now,
            generation,
        )
    new_status["observedGeneration"] = generation
    news = any(status.get(k) != v for k, v in new_status.items() if k not in PASSENGERS)
    if news and (d.release_pod is not None or not _nothing_to_say_yet(status, rec, p)):
        d.status = new_status
    if our_job is not None and _release_now(our_job, d.status or status, rec, d):
        d.release_job_uid = str(our_job["metadata"]["uid"])
    if not expiry_over:
        d.recheck_in = _recheck_in(rec, now, convergence, has_callback, spec, d.recheck_in)
    return d


def _nothing_to_say_yet(status: Obj, rec: TaskRecord, p: _Pass) -> bool:
    """A status never written, whose only news would be "Pending" (its Job just made, or an
    external task waiting for a cell): no write. The next write with news (Running, Completed,
    or a Pending one saying why it waits) names the Job; until then its witness finalizer keeps
    it visible, so no pass can take it for never made."""
    return (
        not status.get("state")
        and rec.state is TaskState.PENDING
        and p.reason in (None, ConditionReason.JOB_CREATED)
        and not p.message
        and not p.unenforced
    )


def _release_now(job: Obj, status: Obj, rec: TaskRecord, d: Decision) -> bool:
    """Whether the pass removes ``job``'s witness finalizer (after its status write): the
    finalizer is there; the status (as this pass leaves it) names the Job, or the Task is
    finished and will never make a Job again; and the Job has finished or is being deleted (by
    someone, or by this pass). A finished Job is not synced again by the Job controller, so the
    release costs one Job write and induces none."""
    if WITNESS_FINALIZER not in (_get(job, "metadata", "finalizers") or ()):
        return False
    witnessed = status.get("jobName") == _get(job, "metadata", "name")
    if not witnessed and rec.state not in (TaskState.COMPLETED, TaskState.RESOLVING):
        return False
    return bool(_finished(job) or _get(job, "metadata", "deletionTimestamp") or d.delete_job_uid)


def _a_pod_ended(job: Obj) -> bool:
    """Whether the Job controller counted a pod of ``job`` as succeeded or failed: one ran.
    Counting includes ``uncountedTerminatedPods``: the controller lists a pod there, then removes
    its tracking finalizer (and a deleted pod goes), and only then adds it to the counts."""
    uncounted = _get(job, "status", "uncountedTerminatedPods") or {}
    return bool(
        _get(job, "status", "succeeded")
        or _get(job, "status", "failed")
        or any(uncounted.get(k) for k in ("succeeded", "failed"))
    )


def _created_ns(meta: Obj, now: int) -> int:
    """The Task's creationTimestamp in Unix nanoseconds (``now`` if it has none, or a later one)."""
    try:
        return min(parse_ns(str(meta["creationTimestamp"])), now)
    except (KeyError, ValueError):
        return now


def _unenforced(spec: TaskSpec, jobs: JobSettings) -> str:
    """What a Job of ``spec`` runs without enforcing, under its domain's warn policy; else ""."""
    profile = jobs.profiles.profile(spec.domain)
    if profile.unenforceable is not Policy.WARN:
        return ""
    return "; ".join(unenforced(spec, profile))


def _recheck_in(
    rec: TaskRecord,
    now: int,
    convergence: ConvergenceSettings,
    has_callback: bool,
    spec: TaskSpec | None,
    asked: float | None,
) -> float | None:
    due = lifecycle.next_check_in(rec, now, convergence, has_callback=has_callback)
    if spec is not None and not spec.external and rec.state is TaskState.RUNNING:
        # A Job's pod reports its own fate through watch events, and the periodic resync
        # catches a missed one: no timer per running Job task.
        due = None
    if asked is not None:
        due = asked if due is None else min(due, asked)
    return due


def _convergence_for(
    task: Obj, spec: TaskSpec | None, settings: DecideSettings
) -> ConvergenceSettings:
    """BBS expiry of completed tasks applies to tasks created through the BBS API (or the
    taskstore API, once BBS completed one) and to tasks with a completion callback; other Tasks
    are deleted after their TTL (spec, else the
    operator's default), or stay until someone deletes them."""
    convergence = settings.convergence
    labels = _get(task, "metadata", "labels") or {}
    if labels.get(API_LABEL) in ("bbs", "taskstore") or bool(spec and spec.completion_callback_url):
        return convergence
    ttl: float | None = settings.ttl_seconds_after_finished
    if spec is not None and spec.ttl_seconds_after_finished is not None:
        ttl = spec.ttl_seconds_after_finished
    return dataclasses.replace(convergence, expire_completed_task_duration=ttl)


def _fail(
    p: _Pass, d: Decision, reason: ConditionReason, text: str, now: int, *, event: str = ""
) -> None:
    """Fail the task with ``text``, and say so in one Warning Event (``event`` or the text)."""
    p.rec = lifecycle.fail(p.rec, text, now)
    p.reason = reason
    p.message = text
    d.events.append(("Warning", reason.value, event or text))


def _job_deleted(jname: str) -> str:
    return (
        f"Job {jname} was deleted before the task finished; taskop runs a task at most once,"
        " so it does not create the Job again"
    )


def _follow_job(
    obs: Observation, spec: TaskSpec, settings: DecideSettings, p: _Pass, d: Decision
) -> None:
    task, now = obs.task, obs.now
    meta = task["metadata"]
    name, uid = str(meta["name"]), str(meta["uid"])
    jname = job_name(name)
    p.extra["jobName"] = jname
    witnessed = (task.get("status") or {}).get("jobName") == jname
    job = obs.job

    if job is None and obs.create_refused is not None and not witnessed:
        reason, text = obs.create_refused  # never made: nothing ran, nothing to undo
        prefix = REASON_INVALID_SPEC if reason is ConditionReason.INVALID_SPEC else ""
        _fail(p, d, reason, prefix + text, now, event=text)
        return
    if job is None and obs.create_unavailable is not None and not witnessed:
        # Never made (Kueue's webhook, failing closed, is down): Pending, saying so; the next
        # pass tries again, backing off to `UNAVAILABLE_RECHECK_MAX`. No witness: no Job.
        first_seen, text = obs.create_unavailable
        del p.extra["jobName"]
        p.reason = ConditionReason.ADMISSION_UNAVAILABLE
        p.message = f"Kubernetes could not admit Job {jname} yet; taskop tries again: {text}"
        waited = max(0.0, (now - first_seen) / _NS)
        d.recheck_in = min(UNAVAILABLE_RECHECK_MAX, max(1.0, waited / 2))
        return
    if job is None:
        if witnessed:
            # Status names the Job, so it was created, and it may have run: never again.
            if not obs.job_absent_confirmed:
                d.read_job = True
                return
            _fail(p, d, ConditionReason.JOB_DELETED, _job_deleted(jname), now)
            return
        try:
            manifest = build_job(
                name,
                str(meta["namespace"]),
                uid,
                spec,
                settings.jobs,
                annotations=meta.get("annotations") or {},
            )
        except SpecError as e:
            text = "; ".join(e.messages)
            _fail(p, d, ConditionReason.INVALID_SPEC, REASON_INVALID_SPEC + text, now, event=text)
            return
        manifest["spec"]["template"]["metadata"].setdefault("annotations", {})[
            TASK_NAME_ANNOTATION
        ] = name
        manifest["metadata"]["finalizers"] = [WITNESS_FINALIZER]
        d.create_job = manifest
        if spec.egress_rules:  # in place before the Job (and so its pod) exists
            d.create_network_policy = network_policy(
                name,
                str(meta["namespace"]),
                uid,
                list(spec.egress_rules),
                settings.jobs.profiles.profile(spec.domain).allow_egress_to,
            )
        p.reason = ConditionReason.JOB_CREATED
        return

    if not owned_by(job, uid):
        if not witnessed and _owner_named(job, "Task", name):
            # The Job of an earlier Task with this name: the garbage collector deletes it. No
            # witness meanwhile (at most one Job per Task): ``jobName`` would claim a Job this
            # Task never made, and the next pass would fail it (JobConflict, then JobDeleted).
            del p.extra["jobName"]
            p.reason = ConditionReason.PENDING
            p.message = f"waiting for Job {jname} of an earlier Task named {name} to be deleted"
            d.recheck_in = settings.conflict_recheck
            return
        text = (
            f"Job {jname} exists and is not owned by this Task; taskop never adopts or touches"
            " it: delete or rename that Job, or create the Task under another name"
        )
        _fail(p, d, ConditionReason.JOB_CONFLICT, text, now)
        return

    job_uid = str(job["metadata"]["uid"])
    finished = _finished(job)
    if _get(job, "metadata", "deletionTimestamp") and not finished:
        _fail(p, d, ConditionReason.JOB_DELETED, _job_deleted(jname), now)
        return
    pods = [pod for pod in obs.pods if owned_by(pod, job_uid)]
    if not finished and _queued(spec, settings) and _queue_step(obs, spec, job, pods, p, d):
        return
    if finished and not _pod_outcome_seen(job, pods, finished):
        if not obs.pods_read:
            d.read_pods = True
            return
        if finished == "Complete":
            if spec.result_file:
                _fail(
                    p, d, ConditionReason.RESULT_LOST, _result_lost(f"the pod of Job {jname}"), now
                )
                return
    outcome = read_outcome(job, pods, now, settings.outcome)
    if outcome.pod_name:
        p.extra["podName"] = outcome.pod_name
    result = outcome.result
    if outcome.state is TaskState.COMPLETED and outcome.result_log is not None:
        # A result over a termination message: the result sidecar printed it to its log.
        if obs.result_log_gone:
            _fail(p, d, ConditionReason.RESULT_LOST, _result_lost(f"pod {outcome.pod_name}"), now)
            return
        if obs.result_log is None:
            d.read_result_log = outcome.pod_name
            return
        try:
            result = result_from_log(obs.result_log, *outcome.result_log)
        except ValueError as e:
            _fail(p, d, ConditionReason.RESULT_LOST, f"failed to fetch result: {e}", now)
            return
    if outcome.state is TaskState.COMPLETED:
        p.rec = lifecycle.complete_from_job(
            p.rec, outcome.failed, outcome.failure_reason, result, now
        )
        p.reason, p.message = outcome.reason, outcome.message
        if not outcome.job_finished:  # e.g. an image that never pulls: stop the Job
            d.delete_job_uid = job_uid
        return
    ended = ("Succeeded", "Failed")
    if obs.create_failure is not None and all(_get(q, "status", "phase") in ended for q in pods):
        # No pod, or none left running: a replacement (retries) that cannot be created is as
        # stuck as a first pod (nothing stuck: the Task fails after the grace).
        first_seen, message = obs.create_failure
        grace = 0 if POD_SECURITY_REFUSAL in message else settings.pod_create_grace_period
        if now - first_seen >= grace * _NS:
            text = f"pod could not be created: {message}"
            _fail(p, d, ConditionReason.POD_CREATE_FAILED, text, now)
            d.delete_job_uid = job_uid
            return
        d.recheck_in = (first_seen + round(grace * _NS) - now) / _NS + 0.01
        p.reason, p.message = ConditionReason.JOB_CREATED, f"pod not created yet: {message}"
        return
    if outcome.state is TaskState.PENDING and _unschedulable_for_good(
        obs, spec, settings, pods, outcome.pod_name, p, d
    ):
        d.delete_job_uid = job_uid
        return
    if outcome.state is TaskState.RUNNING and p.rec.state is TaskState.PENDING:
        p.rec, _ = lifecycle.start(p.rec, outcome.cell_id, now)
    p.reason, p.message = outcome.reason, outcome.message
    if any(image_pull_failure(pod) for pod in pods):
        d.recheck_in = settings.outcome.image_pull_grace_period
    if p.rec.state is TaskState.RUNNING and outcome.cell_id and p.rec.cell_id != outcome.cell_id:
        p.rec = p.rec.replace(cell_id=outcome.cell_id, updated_at=now)


def _unschedulable_for_good(
    obs: Observation,
    spec: TaskSpec,
    settings: DecideSettings,
    pods: Sequence[Obj],
    pod_name: str,
    p: _Pass,
    d: Decision,
) -> bool:
    """Fail the task (True) when its pod has been unschedulable past the domain's grace, as
    Diego's auctioneer fails a task no cell can take; within it, look again at the deadline."""
    pod = next((q for q in pods if _get(q, "metadata", "name") == pod_name), None)
    found = unschedulable(pod)
    if found is None:
        return False
    desired_by_bbs = (obs.task.get("status") or {}).get("api") == "bbs"
    grace = settings.jobs.profiles.profile(spec.domain).unschedulable_grace(
        desired_by_bbs=desired_by_bbs
    )
    if grace is None:
        return False
    if found.nominated:  # preemption makes room on a node; the pod's next change says more
        return False
    since = found.since or obs.now
    deadline = since + round(grace * _NS)
    if obs.now < deadline:
        d.recheck_in = (deadline - obs.now) / _NS + 0.01
        return False
    _fail(p, d, ConditionReason.UNSCHEDULABLE, placement_failure(found.message), obs.now)
    return True


def _result_lost(pod: str) -> str:
    return (
        f"{pod} was deleted before taskop could read its result;"
        " the task ran, but its result is lost"
    )


def _pod_outcome_seen(job: Obj, pods: Sequence[Obj], finished: str) -> bool:
    """Whether the pods in hand carry what a finished Job's outcome is read from."""
    if finished == "Failed":
        condition = next(
            c for c in _get(job, "status", "conditions") or () if c.get("type") == "Failed"
        )
        if condition.get("reason") == "DeadlineExceeded" or not pods:
            return bool(condition.get("reason") == "DeadlineExceeded")
        ended = [
            pod
            for pod in pods
            if task_container_terminated(pod) is not None
            or bool(_get(pod, "status", "reason"))
            or _get(pod, "status", "phase") == "Failed"
        ]
        # Every pod the Job counted as failed is in hand (retries): else the pod watch lags and
        # an earlier pod's end would be read as the Job's, not the last pod's.
        return bool(ended) and len(ended) >= int(_get(job, "status", "failed") or 0)
    return any(
        _get(pod, "status", "phase") == "Succeeded" and task_container_terminated(pod) is not None
        for pod in pods
    )


def _queued(spec: TaskSpec, settings: DecideSettings) -> bool:
    return bool(queueing.queue_of(spec, settings.jobs.profiles.profile(spec.domain)))


def released_fate(status: Obj, pods: Sequence[Obj], obituaries: Mapping[str, str]) -> str:
    """The fate of a queued Task's released pod (``status.releasedPod``): "none" (no pod
    released), else `queueing.settled`'s answer ("unbound", "failed", "succeeded", or "" for
    may run, or may have run)."""
    released = status.get("releasedPod") or {}
    uid = str(released.get("uid") or "")
    if not uid:
        return "none"
    pod = next((q for q in pods if _get(q, "metadata", "uid") == uid), None)
    return queueing.settled(pod, obituaries.get(uid))


def _queue_step(
    obs: Observation, spec: TaskSpec, job: Obj, pods: Sequence[Obj], p: _Pass, d: Decision
) -> bool:
    """A queued Task's unfinished Job (`taskop.domain.queueing`, whose invariant this keeps):
    release one pod, fail the Task when a released pod may have run and was stopped, or say why
    it waits. False: the released pod runs; its outcome is read as for any Job."""
    status: Obj = obs.task.get("status") or {}
    released: Obj = status.get("releasedPod") or {}
    failures = int(status.get("releasedPodFailures") or 0)
    suspended = bool(_get(job, "spec", "suspend"))
    fate = released_fate(status, pods, obs.pod_obituaries)
    pod = next((q for q in pods if _get(q, "metadata", "uid") == released.get("uid")), None)
    replacement = any(
        queueing.gated(q)
        and not queueing.deleting(q)
        and _get(q, "metadata", "uid") != released.get("uid")
        for q in pods
    )
    if (
        fate == ""
        and pod is None
        and not obs.pods_read
        and released.get("uid") not in (obs.pod_obituaries)
    ):
        d.read_pods = True  # gone, its last state unseen: ask the API server before judging
        return True
    if fate == "" and (
        (pod is None and (suspended or replacement))
        or (pod is not None and queueing.bound(pod) and suspended)
    ):
        # Kueue stopped it (the Job suspended), or it went and the Job controller replaced it:
        # it may have run. (Deleted while the Job runs on — its deadline, a user, a lost node —
        # the Job controller counts it, and the Job's outcome is read as for any Job; only a
        # replacement, which would run it again, ends the Task.)
        seen_bound = (pod is not None and queueing.bound(pod)) or obs.pod_obituaries.get(
            str(released.get("uid"))
        ) == queueing.BOUND
        _stopped_after_start(obs, job, str(released.get("name")), seen_bound, p, d)
        return True
    if fate == "" and pod is not None and queueing.gated(pod) and not queueing.deleting(pod):
        if not suspended:  # recorded, its release lost (a crash, a failed patch): again
            d.release_pod = (str(released["name"]), str(released["uid"]))
        else:
            _say_why_it_waits(obs, p)
        return True
    if fate in ("", "succeeded"):
        return False  # it runs, is about to, or is done: its outcome is read as for any Job
    if fate == "failed" and failures + 1 > spec.retries:
        return False  # no retry left: the Job fails, and the outcome says how
    candidates = sorted(
        (
            q
            for q in pods
            if queueing.gated(q)
            and not queueing.deleting(q)
            and _get(q, "metadata", "uid") != released.get("uid")
        ),
        key=lambda q: (
            str(_get(q, "metadata", "creationTimestamp")),
            str(_get(q, "metadata", "name")),
        ),
    )
    if candidates and not suspended:
        chosen = candidates[0]
        name, uid = str(chosen["metadata"]["name"]), str(chosen["metadata"]["uid"])
        p.extra["releasedPod"] = {"name": name, "uid": uid}
        if fate == "failed":
            p.extra["releasedPodFailures"] = failures + 1
        d.release_pod = (name, uid)
        p.reason = ConditionReason.JOB_CREATED
        return True
    if suspended:
        _say_why_it_waits(obs, p)
        return True
    return False  # admitted, no pod to release yet: the Job's own story (a pod not created, …)


def _say_why_it_waits(obs: Observation, p: _Pass) -> None:
    """Queued, in Kueue's words; nothing when Kueue said nothing yet (no write for that)."""
    if message := queueing.waiting_message(obs.workload):
        p.reason, p.message = ConditionReason.QUEUED, message


def _stopped_after_start(
    obs: Observation, job: Obj, pod_name: str, seen_bound: bool, p: _Pass, d: Decision
) -> None:
    """The released pod may have run and was stopped (Kueue evicted or preempted the Workload, or
    someone deleted the pod): never again. The Task fails; the Workload is deactivated and the
    Job deleted, so Kueue does not run it from the start."""
    found = queueing.eviction(obs.workload)
    if found is not None:
        reason, text = found
    elif _get(job, "spec", "suspend"):
        reason = ConditionReason.EVICTED
        jname = _get(job, "metadata", "name")
        text = f"Job {jname} was suspended (evicted by Kueue) after pod {pod_name} started"
    elif seen_bound:
        reason = ConditionReason.EVICTED
        text = f"released pod {pod_name} was deleted after a node took it"
    else:
        reason = ConditionReason.EVICTED
        text = (
            f"taskop did not see released pod {pod_name} go (it was restarting, or its watch"
            " re-listed), and it may have run"
        )
    text += "; taskop runs a task at most once, so it does not run it again"
    _fail(p, d, reason, text, obs.now)
    d.delete_job_uid = str(job["metadata"]["uid"])
    if obs.workload is not None and _get(obs.workload, "spec", "active") is not False:
        d.deactivate_workload = str(obs.workload["metadata"]["name"])
