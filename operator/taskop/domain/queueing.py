"""Queueing through Kueue, pure: a queued Task's Job, its release gate, and what Kueue says.

A Task with a queue (``spec.queueName``, or its domain profile's ``queueName``) gets a Job labelled
`QUEUE_LABEL`, created suspended, whose pod template carries the scheduling gate `RELEASE_GATE`.
Kueue unsuspends the Job when it admits its Workload; taskop never does. Kueue also suspends it
again on an eviction or preemption and later resumes it, without limit, and every resume makes a
new pod that would run the command from the start (docs/kueue-design-notes.md).

Invariant kept here (**at most once, under Kueue too**): every pod of a queued Task's Job is
created gated, and a gated pod is never scheduled, so never runs. taskop removes the gate from one
pod at a time, after recording that pod in ``status.releasedPod`` (a status write with the Task's
resourceVersion as precondition, so two passes cannot release two pods). It releases another pod
only when the recorded one is *settled*: deleted before any node took it (it never ran), or failed
on its own (``status.phase: Failed``, not deleted: a retry, counted in ``releasedPodFailures``, at
most ``spec.retries``). A released pod that a node took and that is then stopped — its Job
suspended, the pod deleted, or gone without its last state seen — may have run: the Task fails
(`Preempted` or `Evicted`, in Kueue's words), its Workload is deactivated and its Job deleted.
So the pods that ran a queued Task's command number at most ``1 + releasedPodFailures`` ≤
``1 + spec.retries``, one at a time, whatever Kueue, the watches or taskop's uptime do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskop.domain.fields import field as _get
from taskop.domain.profiles import DomainProfile
from taskop.domain.spec import TaskSpec
from taskop.domain.states import ConditionReason

Obj = Mapping[str, Any]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
RELEASE_GATE = "taskop.dev/release"
"""The scheduling gate on every pod of a queued Task's Job, removed by taskop from one pod at a
time (the module docstring)."""
KUEUE_SETTING = "TASKOP_KUEUE_ENABLED; the chart's kueue.enabled"


def queue_of(spec: TaskSpec, profile: DomainProfile) -> str | None:
    """The Kueue LocalQueue a Task waits in: its own, else its domain's; None: not queued."""
    return spec.queue_name or profile.queue_name


def queue_errors(spec: TaskSpec, profile: DomainProfile, *, enabled: bool) -> list[str]:
    """Why a Task's queueing cannot be honoured (an invalid spec), or nothing."""
    queue = queue_of(spec, profile)
    errors = []
    if queue and not enabled:
        origin = "spec.queueName" if spec.queue_name else f"domain {spec.domain}'s queueName"
        errors.append(
            f"{origin}: queue {queue!r} needs taskop's Kueue support, which is off"
            f" ({KUEUE_SETTING}): ask the admin to enable it, or create the Task without a queue"
        )
    if spec.priority_class_name and not queue:
        errors.append(
            "spec.priorityClassName: a Kueue priority class needs a queue: set spec.queueName"
            " (or the domain profile's queueName)"
        )
    return errors


def queue_job(job: dict[str, Any], queue: str, priority_class: str | None) -> None:
    """Make ``job`` (a manifest of `taskop.domain.jobs.build_job`) Kueue's: labelled, created
    suspended, its pods gated."""
    labels = job["metadata"].setdefault("labels", {})
    labels[QUEUE_LABEL] = queue
    if priority_class:
        labels[PRIORITY_LABEL] = priority_class
    job["spec"]["suspend"] = True
    job["spec"]["template"]["spec"]["schedulingGates"] = [{"name": RELEASE_GATE}]


def gated(pod: Obj) -> bool:
    """Whether ``pod`` still carries `RELEASE_GATE` (never scheduled, never run)."""
    return any(g.get("name") == RELEASE_GATE for g in _get(pod, "spec", "schedulingGates") or ())


def bound(pod: Obj) -> bool:
    """Whether a node took ``pod`` (it may have run)."""
    return bool(_get(pod, "spec", "nodeName"))


def deleting(pod: Obj) -> bool:
    return bool(_get(pod, "metadata", "deletionTimestamp"))


UNBOUND = "unbound"
BOUND = "bound"
"""Obituaries (`obituary`): what a pod of a queued Task was when it went."""


def obituary(pod: Obj, held: Obj | None, ended: str | None) -> str:
    """What a pod seen deleted was: `UNBOUND` (no node took it: it never ran); the phase it
    reached on its own before anyone deleted it (``ended``: Succeeded or Failed, as seen without
    a ``deletionTimestamp``); else `BOUND` (it may have run, and was stopped)."""
    if not bound(pod) and not (held is not None and bound(held)):
        return UNBOUND
    return ended or BOUND


def ended_on_its_own(pod: Obj) -> str | None:
    """Succeeded or Failed, when ``pod`` reached it by itself (not being deleted)."""
    phase = _get(pod, "status", "phase")
    if phase in ("Succeeded", "Failed") and not deleting(pod):
        return str(phase)
    return None


def settled(pod: Obj | None, last: str | None) -> str:
    """What the released pod's fate allows: "unbound" (deleted before a node took it: it never
    ran), "failed" (it failed on its own: a retry may follow), "succeeded" (done: its Job
    completes), "" (it runs, may run, or may have run and was stopped). ``pod`` is the pod as
    cached (None: gone); ``last`` its obituary (None: its deletion was not seen)."""
    if pod is None:
        return {UNBOUND: "unbound", "Failed": "failed", "Succeeded": "succeeded"}.get(
            last or "", ""
        )
    if ended := ended_on_its_own(pod):
        return ended.lower()
    if deleting(pod) and not bound(pod):
        return "unbound"
    return ""


def slim_workload(body: Obj) -> dict[str, Any]:
    """What a pass reads of a Workload: whose it is, whether it is active, its conditions."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta
        }
        | {
            "ownerReferences": [
                {k: o.get(k) for k in ("kind", "name", "uid")}
                for o in meta.get("ownerReferences") or ()
            ]
        },
        "spec": {"active": _get(body, "spec", "active") is not False},
        "status": {
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message")}
                for c in _get(body, "status", "conditions") or ()
                if c.get("type")
                in ("QuotaReserved", "Admitted", "Evicted", "Preempted", "Finished")
            ]
        },
    }


def _condition(workload: Obj | None, type_: str) -> Obj | None:
    conditions: Sequence[Obj] = _get(workload, "status", "conditions") or ()
    return next((c for c in conditions if c.get("type") == type_), None)


def waiting_message(workload: Obj | None) -> str:
    """Why Kueue has not admitted the Workload yet, in its words ("couldn't assign flavors to pod
    set main: insufficient unused quota …"); "" when it says nothing (yet)."""
    reserved = _condition(workload, "QuotaReserved")
    if reserved is None or reserved.get("status") == "True":
        return ""
    return str(reserved.get("message") or "")


def eviction(workload: Obj | None) -> tuple[ConditionReason, str] | None:
    """The Workload's eviction in progress, as (Preempted or Evicted, Kueue's message)."""
    preempted = _condition(workload, "Preempted")
    if preempted is not None and preempted.get("status") == "True":
        return ConditionReason.PREEMPTED, str(preempted.get("message") or "preempted by Kueue")
    evicted = _condition(workload, "Evicted")
    if evicted is not None and evicted.get("status") == "True":
        reason = (
            ConditionReason.PREEMPTED
            if evicted.get("reason") == "Preempted"
            else ConditionReason.EVICTED
        )
        return reason, str(evicted.get("message") or evicted.get("reason") or "evicted by Kueue")
    return None
