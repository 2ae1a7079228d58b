"""What a Job and its pods say about a task: state, failure reason, result, node."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from taskop.domain.fields import field as _get
from taskop.domain.jobs import CONTAINER_NAME
from taskop.domain.states import ConditionReason, TaskState
from taskop.domain.timefmt import parse_ns

MAX_RESULT_BYTES = 4095
"""Pods without the executor (Jobs made before it): the kubelet keeps at most 4096 bytes of a
termination message (the tail), so a message of 4096 bytes may have been cut: taskop only trusts
results of at most 4095 bytes there. The executor carries results up to 51,200 bytes (Diego's)."""
RESULT_TOO_LARGE = (
    f"result exceeds {MAX_RESULT_BYTES} bytes, the limit of a Kubernetes termination message;"
    " write a smaller result file"
)
EXECUTOR_REPORT = "executor/v1"
"""``taskop`` of the executor's termination message (executor/internal/result)."""
RESULT_FRAME = "taskop-result v1"
"""First word of the result sidecar's log frame (executor/internal/result)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ExecutorReport:
    """What the in-pod executor wrote as the task container's termination message."""

    failed: bool
    failure_reason: str = ""
    result: str = ""
    result_log: tuple[int, str] | None = None
    """(bytes, sha256 hex) of a result handed over through the result sidecar's log."""


def executor_report(pod: Obj | None) -> ExecutorReport | None:
    """The executor's report in the pod's terminated task container; None when there is none."""
    message = (task_container_terminated(pod) or {}).get("message") or ""
    if not message.startswith('{"taskop":'):
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("taskop") != EXECUTOR_REPORT:
        return None
    log = data.get("resultLog")
    return ExecutorReport(
        failed=bool(data.get("failed")),
        failure_reason=str(data.get("failureReason") or ""),
        result=str(data.get("result") or ""),
        result_log=(int(log["bytes"]), str(log["sha256"])) if isinstance(log, dict) else None,
    )


def result_from_log(text: str, size: int, sha256: str) -> str:
    """The result the sidecar printed in ``text`` (its whole log); ValueError saying why not."""
    lines = text.splitlines()
    header = f"{RESULT_FRAME} bytes={size} sha256={sha256}"
    try:
        start = lines.index(header)
        end = lines.index("taskop-result end", start)
    except ValueError:
        raise ValueError("the result sidecar's log holds no result frame") from None
    try:
        data = base64.b64decode("".join(lines[start + 1 : end]), validate=True)
    except binascii.Error:
        raise ValueError("the result sidecar's frame is not base64") from None
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("the result sidecar's frame does not match the executor's digest")
    return data.decode("utf-8", "surrogateescape")


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
    result_log: tuple[int, str] | None = None
    """A succeeded task whose result is in pod ``pod_name``'s result sidecar log: read it."""


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
    report = executor_report(pod)
    if report is not None and report.failed:
        return ConditionReason.ACTION_FAILED, report.failure_reason or "the task failed"
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
        report = executor_report(pod)
        if report is not None and report.failed:  # the executor exits non-zero: not expected
            return Outcome(
                state=TaskState.COMPLETED,
                reason=ConditionReason.ACTION_FAILED,
                message=report.failure_reason,
                failed=True,
                failure_reason=report.failure_reason,
                job_finished=True,
                cell_id=where[0],
                pod_name=where[1],
            )
        if report is not None:
            return Outcome(
                state=TaskState.COMPLETED,
                reason=ConditionReason.SUCCEEDED,
                result=report.result,
                result_log=report.result_log,
                job_finished=True,
                cell_id=where[0],
                pod_name=where[1],
            )
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


NO_COMPATIBLE_CELL = "found no compatible cell"
"""Diego's auctioneer (auctiontypes.ErrorCellMismatch) when no cell matches a task's placement;
Cloud Controller recognises a failure reason by this start."""
INSUFFICIENT_RESOURCES = "insufficient resources"
"""Diego's rep (InsufficientResourcesError): cells match but lack room, followed by ": " and the
sorted problems (``insufficient resources: disk, memory``)."""
_DIEGO_RESOURCES = {
    "memory": "memory",
    "cpu": "cpu",
    "ephemeral-storage": "disk",
    "pods": "containers",
}
"""The scheduler's resource names → Diego's words for them (others keep their own name)."""
_INSUFFICIENT = re.compile(r"\bInsufficient ([^\s,]+)")
_TOO_MANY_PODS = "Too many pods"


@dataclasses.dataclass(frozen=True, slots=True)
class Unschedulable:
    """A pod the scheduler has found no node for."""

    since: int
    """Unix ns when the scheduler first said so: the PodScheduled condition's lastTransitionTime
    (it changes only when the status does), else the pod's creation; 0 when neither is known."""
    message: str
    """The scheduler's words (``0/3 nodes are available: …``)."""
    nominated: bool
    """The scheduler preempts pods to make room on a nominated node: it will fit there."""


def unschedulable(pod: Obj | None) -> Unschedulable | None:
    """The pod's ``PodScheduled=False`` with reason ``Unschedulable``, if it shows one (not a
    scheduling gate, not a scheduler error)."""
    if pod is None or _get(pod, "spec", "nodeName"):
        return None
    condition = next(
        (
            c
            for c in _get(pod, "status", "conditions") or ()
            if c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ),
        None,
    )
    if condition is None:
        return None
    since = 0
    for stamp in (condition.get("lastTransitionTime"), _get(pod, "metadata", "creationTimestamp")):
        try:
            since = parse_ns(str(stamp))
            break
        except ValueError:
            continue
    return Unschedulable(
        since=since,
        message=str(condition.get("message") or ""),
        nominated=bool(_get(pod, "status", "nominatedNodeName")),
    )


def placement_failure(message: str) -> str:
    """Diego's failure reason for a task no node can take, then the scheduler's verdict.

    Like Diego, resources are named only when some node matches the placement but lacks them:
    the scheduler checks a node's resources only after its taints, selector and affinity, so a
    node reported ``Insufficient memory`` matched. Otherwise no node matches: no compatible cell.
    """
    verdict = scheduler_verdict(message)
    problems = {
        _DIEGO_RESOURCES.get(name, name)
        for name in (m.rstrip(".") for m in _INSUFFICIENT.findall(verdict))
        if name
    }
    if _TOO_MANY_PODS in verdict:
        problems.add(_DIEGO_RESOURCES["pods"])
    head = (
        f"{INSUFFICIENT_RESOURCES}: {', '.join(sorted(problems))}"
        if problems
        else NO_COMPATIBLE_CELL
    )
    return f"{head}: {verdict}" if verdict else head


def scheduler_verdict(message: str) -> str:
    """The scheduler's verdict on the nodes, its first sentence (``0/3 nodes are available: 3
    Insufficient memory.``), without what its post-filter plugins add after it (``preemption:
    0/3 nodes are available: 3 Preemption is not helpful for scheduling.``, DRA's notes)."""
    first, end, _ = message.partition(". ")
    return first + "." if end else message


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
