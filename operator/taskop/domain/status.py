"""The Task ``status``: pydantic model, ``TaskRecord`` ⇄ status conversions, and conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pydantic
from pydantic.alias_generators import to_camel

from taskop.domain import lifecycle
from taskop.domain.lifecycle import TaskRecord
from taskop.domain.states import ConditionReason, ConditionType, TaskState
from taskop.domain.timefmt import format_ns, format_seconds, parse_ns

ConditionStatus = Literal["True", "False", "Unknown"]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )


class Condition(_Model):
    """A ``metav1.Condition``."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int | None = None


class CallbackStatus(_Model):
    attempts: int = 0
    last_error: str = ""
    delivered_at: str | None = None


class ReleasedPod(_Model):
    name: str
    uid: str


class _RecordFields(_Model):
    """What `record_from_status` reads of a status: validating only these (not the conditions,
    callback or released pod) is most of a pass's status parsing saved."""

    state: TaskState | None = None
    failed: bool = False
    failure_reason: str = ""
    result: str = ""
    cell_id: str = ""
    created_at: str | None = None
    updated_at: str | None = None
    first_completed_at: str | None = None
    rejection_count: int = 0
    rejection_reason: str = ""


class TaskStatus(_RecordFields):
    """The whole status: the record's fields, and what else taskop writes."""

    job_name: str = ""
    pod_name: str = ""
    released_pod: ReleasedPod | None = None
    released_pod_failures: int = 0
    callback: CallbackStatus | None = None
    api: Literal["bbs"] | None = None
    """The API that desired the Task, written by that API (only taskop writes status): unlike the
    ``taskop.dev/api`` label, which whoever creates a Task may set, it can be trusted."""
    conditions: list[Condition] = []
    observed_generation: int | None = None


def _time(ns: int) -> str | None:
    return format_ns(ns) if ns else None


def record_to_status(rec: TaskRecord) -> dict[str, Any]:
    """The status fields a record owns (camelCase; a zero time is ``None``, i.e. removed)."""
    return {
        "state": rec.state.value,
        "failed": rec.failed,
        "failureReason": rec.failure_reason,
        "result": rec.result,
        "cellId": rec.cell_id,
        "createdAt": _time(rec.created_at),
        "updatedAt": _time(rec.updated_at),
        "firstCompletedAt": _time(rec.first_completed_at),
        "rejectionCount": rec.rejection_count,
        "rejectionReason": rec.rejection_reason,
    }


def record_from_status(guid: str, domain: str, status: Mapping[str, Any] | None) -> TaskRecord:
    """The record kept in a Task's status; an empty status is a new Pending task (times 0)."""
    parsed = _RecordFields.model_validate(status or {})

    def ns(text: str | None) -> int:
        return parse_ns(text) if text else 0

    return TaskRecord(
        guid=guid,
        domain=domain,
        state=parsed.state or TaskState.PENDING,
        cell_id=parsed.cell_id,
        result=parsed.result,
        failed=parsed.failed,
        failure_reason=parsed.failure_reason,
        rejection_count=parsed.rejection_count,
        rejection_reason=parsed.rejection_reason,
        created_at=ns(parsed.created_at),
        updated_at=ns(parsed.updated_at),
        first_completed_at=ns(parsed.first_completed_at),
    )


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: int,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new list with condition ``type_`` added or replaced, order kept.

    ``lastTransitionTime`` changes only when the status does.
    """
    result: list[dict[str, Any]] = []
    new: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_seconds(now),
    }
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    found = False
    for condition in conditions:
        if condition.get("type") == type_:
            found = True
            if condition.get("status") == status and condition.get("lastTransitionTime"):
                new["lastTransitionTime"] = condition["lastTransitionTime"]
            result.append(new)
        else:
            result.append(dict(condition))
    if not found:
        result.append(new)
    return result


_FAILURE_REASONS: tuple[tuple[str, ConditionReason], ...] = (
    (lifecycle.REASON_CANCELLED, ConditionReason.CANCELLED),
    (lifecycle.REASON_NOT_STARTED, ConditionReason.NOT_STARTED),
    (lifecycle.REASON_CELL_DISAPPEARED, ConditionReason.CELL_DISAPPEARED),
    ("exit status ", ConditionReason.EXIT_CODE),
    ("OOMKilled", ConditionReason.OOM_KILLED),
    ("DeadlineExceeded", ConditionReason.DEADLINE_EXCEEDED),
    ("image pull failed", ConditionReason.IMAGE_PULL_FAILED),
    ("evicted", ConditionReason.EVICTED),
    ("node lost", ConditionReason.NODE_LOST),
    ("preempted", ConditionReason.PREEMPTED),
    ("result exceeds", ConditionReason.RESULT_TOO_LARGE),
    ("pod could not be created", ConditionReason.POD_CREATE_FAILED),
    ("the pod of Job", ConditionReason.RESULT_LOST),
)


def completion_reason(rec: TaskRecord) -> ConditionReason:
    """The condition reason of a finished task, from its failure reason text."""
    if not rec.failed:
        return ConditionReason.SUCCEEDED
    for prefix, reason in _FAILURE_REASONS:
        if rec.failure_reason.startswith(prefix):
            return reason
    return ConditionReason.FAILED


def derive_conditions(
    rec: TaskRecord,
    conditions: Sequence[Mapping[str, Any]],
    now: int,
    observed_generation: int | None = None,
    *,
    reason: ConditionReason | None = None,
    message: str = "",
) -> list[dict[str, Any]]:
    """Running / Completed / Succeeded / Failed conditions for ``rec``'s state.

    ``reason`` and ``message`` describe the current state (e.g. JobCreated while Pending); finished
    tasks default to `completion_reason` and the failure reason.
    """
    g = observed_generation
    result: list[dict[str, Any]] = [dict(c) for c in conditions]
    if rec.state in (TaskState.PENDING, TaskState.RUNNING):
        running = rec.state is TaskState.RUNNING
        why = reason or (ConditionReason.POD_RUNNING if running else ConditionReason.PENDING)
        status: ConditionStatus = "True" if running else "False"
        result = set_condition(result, ConditionType.RUNNING, status, why, message, now, g)
        result = set_condition(result, ConditionType.COMPLETED, "False", why, message, now, g)
        return result
    why = reason or completion_reason(rec)
    text = message or rec.failure_reason
    ok: ConditionStatus = "False" if rec.failed else "True"
    bad: ConditionStatus = "True" if rec.failed else "False"
    result = set_condition(result, ConditionType.RUNNING, "False", why, text, now, g)
    result = set_condition(result, ConditionType.COMPLETED, "True", why, text, now, g)
    result = set_condition(result, ConditionType.SUCCEEDED, ok, why, text, now, g)
    return set_condition(result, ConditionType.FAILED, bad, why, text, now, g)
