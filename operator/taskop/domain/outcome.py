"""What a Job and its pods say about a task: state, failure reason, result, node."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from taskop.domain.jobs import CONTAINER_NAME
from taskop.domain.states import ConditionReason, TaskState
from taskop.domain.timefmt import parse_ns

MAX_RESULT_BYTES = 4095
"""The kubelet keeps at most 4096 bytes of a termination message (the tail), so a message of 4096
bytes may have been cut: taskop only trusts results of at most 4095 bytes."""
RESULT_TOO_LARGE = (
    f"result exceeds {MAX_RESULT_BYTES} bytes, the limit of a Kubernetes termination message;"
    " write a smaller result file"
)
IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_NODE_LOST = frozenset({"NodeLost", "DeletionByTaintManager", "DeletionByPodGC"})
_EVICTED = frozenset({"Evicted", "EvictionByEvictionAPI", "TerminationByKubelet"})
_PREEMPTED = frozenset({"PreemptionByScheduler", "Preempting"})

Obj = Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeSettings:
    image_pull_grace_period: float = 120.0
    """Seconds a pod may fail to pull its image before the task fails."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    state: TaskState  # Pending, Running or Completed
    reason: ConditionReason
    message: str = ""
    failed: bool = False
    failure_reason: str = ""
    result: str = ""
    cell_id: str = ""  # the pod's node
    pod_name: str = ""
    job_finished: bool = False
    """Completed by the Job itself; Completed without it (image pull) means: stop the Job."""


def _get(obj: Obj | None, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _condition(obj: Obj | None, type_: str) -> Obj | None:
    for condition in _get(obj, "status", "conditions") or ():
        if condition.get("type") == type_ and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _task_container(pod: Obj | None) -> Obj:
    for status in _get(pod, "status", "containerStatuses") or ():
        if status.get("name") == CONTAINER_NAME:
            return status  # type: ignore[no-any-return]
    return {}


def task_container_terminated(pod: Obj | None) -> Obj | None:
    """The task container's terminated state (current or last), if the pod shows one."""
    status = _task_container(pod)
    found = _get(status, "state", "terminated") or _get(status, "lastState", "terminated")
    return found if isinstance(found, Mapping) else None


def _latest(pods: Sequence[Obj]) -> Obj | None:
    def key(pod: Obj) -> tuple[str, str]:
        meta = pod.get("metadata") or {}
        return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")

    return max(pods, key=key, default=None)


def pod_failure(pod: Obj | None) -> tuple[ConditionReason, str] | None:
    """Why a pod failed, in words a user can act on; None if it shows no failure."""
    status = _get(pod, "status") or {}
    causes = [(status.get("reason"), status.get("message"))]
    disruption = _condition(pod, "DisruptionTarget")
    if disruption is not None:
        causes.append((disruption.get("reason"), disruption.get("message")))
    for cause, message in causes:
        detail = f": {message or cause}"
        if cause in _EVICTED:
            return ConditionReason.EVICTED, "evicted" + detail
        if cause in _NODE_LOST:
            return ConditionReason.NODE_LOST, "node lost" + detail
        if cause in _PREEMPTED:
            return ConditionReason.PREEMPTED, "preempted" + detail
    terminated = task_container_terminated(pod)
    if terminated is not None:
        code = terminated.get("exitCode", 0)
        if terminated.get("reason") == "OOMKilled":
            return ConditionReason.OOM_KILLED, f"OOMKilled (exit status {code})"
        if code:
            return ConditionReason.EXIT_CODE, f"exit status {code}"
    pull = image_pull_failure(pod)
    if pull is not None:
        return ConditionReason.IMAGE_PULL_FAILED, pull
    return None


def image_pull_failure(pod: Obj | None) -> str | None:
    """``image pull failed: …`` while the task container waits on a failed pull."""
    waiting = _get(_task_container(pod), "state", "waiting") or {}
    if waiting.get("reason") not in IMAGE_PULL_REASONS:
        return None
    return f"image pull failed: {waiting.get('message') or waiting['reason']}"


def _result(pod: Obj | None) -> tuple[str, bool]:
    message = str((task_container_terminated(pod) or {}).get("message") or "")
    if len(message.encode("utf-8", "surrogatepass")) > MAX_RESULT_BYTES:
        return "", False
    return message, True


def read_outcome(
    job: Obj | None, pods: Sequence[Obj], now_ns: int, settings: OutcomeSettings
) -> Outcome:
    """The task's outcome from its Job and the Job's pods (any order)."""
    if job is None:
        return Outcome(state=TaskState.PENDING, reason=ConditionReason.PENDING, message="no Job")
    if _condition(job, "Complete") is not None:
        succeeded = [p for p in pods if _get(p, "status", "phase") == "Succeeded"]
        pod = _latest(succeeded) or _latest(pods)
        where = _where(pod)
        result, fits = _result(pod)
        if not fits:
            return Outcome(
                state=TaskState.COMPLETED,
                reason=ConditionReason.RESULT_TOO_LARGE,
                message=RESULT_TOO_LARGE,
                failed=True,
                failure_reason=RESULT_TOO_LARGE,
                job_finished=True,
                cell_id=where[0],
                pod_name=where[1],
            )
        return Outcome(
            state=TaskState.COMPLETED,
            reason=ConditionReason.SUCCEEDED,
            result=result,
            job_finished=True,
            cell_id=where[0],
            pod_name=where[1],
        )
    pod = _latest(pods)
    where = _where(pod)
    failed_condition = _condition(job, "Failed")
    if failed_condition is not None:
        reason, text = _job_failure(job, failed_condition, pod)
        return Outcome(
            state=TaskState.COMPLETED,
            reason=reason,
            message=text,
            failed=True,
            failure_reason=text,
            job_finished=True,
            cell_id=where[0],
            pod_name=where[1],
        )
    if pod is None:
        return Outcome(state=TaskState.PENDING, reason=ConditionReason.JOB_CREATED)
    pull = image_pull_failure(pod)
    created = _get(pod, "metadata", "creationTimestamp")
    if pull is not None and created:
        grace_ns = round(settings.image_pull_grace_period * 1e9)
        if now_ns - parse_ns(created) >= grace_ns:
            return Outcome(
                state=TaskState.COMPLETED,
                reason=ConditionReason.IMAGE_PULL_FAILED,
                message=pull,
                failed=True,
                failure_reason=pull,
                cell_id=where[0],
                pod_name=where[1],
            )
    if _get(pod, "status", "phase") in ("Running", "Succeeded", "Failed"):
        return Outcome(
            state=TaskState.RUNNING,
            reason=ConditionReason.POD_RUNNING,
            cell_id=where[0],
            pod_name=where[1],
        )
    return Outcome(
        state=TaskState.PENDING,
        reason=ConditionReason.JOB_CREATED,
        message=pull or _waiting_message(pod),
        cell_id=where[0],
        pod_name=where[1],
    )


def _where(pod: Obj | None) -> tuple[str, str]:
    """(node name, pod name)."""
    return str(_get(pod, "spec", "nodeName") or ""), str(_get(pod, "metadata", "name") or "")


def _waiting_message(pod: Obj) -> str:
    scheduled = next(
        (
            c
            for c in _get(pod, "status", "conditions") or ()
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        None,
    )
    if scheduled is not None:
        return str(scheduled.get("message") or scheduled.get("reason") or "")
    waiting = _get(_task_container(pod), "state", "waiting") or {}
    return str(waiting.get("message") or waiting.get("reason") or "")


def _job_failure(job: Obj, condition: Obj, pod: Obj | None) -> tuple[ConditionReason, str]:
    if condition.get("reason") == "DeadlineExceeded":
        timeout = _get(job, "spec", "activeDeadlineSeconds")
        limit = f"its timeout of {timeout} seconds" if timeout else "its timeout"
        return (
            ConditionReason.DEADLINE_EXCEEDED,
            f"DeadlineExceeded: the task ran longer than {limit} (spec.timeoutSeconds)",
        )
    found = pod_failure(pod)
    if found is not None:
        return found
    why = condition.get("reason") or "Failed"
    message = condition.get("message")
    return ConditionReason.FAILED, f"job failed: {why}" + (f": {message}" if message else "")
