"""The BBS task state machine (spec §4): pure functions from a record to a new record or a BBSError.

Used by both the reconciler and the BBS API, so both follow one set of rules and raise one set of
errors. Times are Unix nanoseconds, passed in by the caller (``now``); nothing here reads a clock.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

from taskop.domain.errors import BBSError
from taskop.domain.states import TaskState

MAX_STRING_BYTES = 1024
TRUNCATED_SUFFIX = "(truncated)"
MAX_ID_LENGTH = 255  # guid, domain and cell_id columns of the reference database

REASON_CANCELLED = "task was cancelled"
REASON_NOT_STARTED = "not started within time limit"
REASON_CELL_DISAPPEARED = "cell disappeared before completion"

GUID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
_NS_PER_S = 1_000_000_000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    """The lifecycle part of a BBS ``Task`` (its definition lives in the Task spec)."""

    guid: str
    domain: str
    state: TaskState = TaskState.PENDING
    cell_id: str = ""
    result: str = ""
    failed: bool = False
    failure_reason: str = ""
    rejection_count: int = 0
    rejection_reason: str = ""
    created_at: int = 0
    updated_at: int = 0
    first_completed_at: int = 0

    def replace(self, **changes: Any) -> TaskRecord:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def truncate_bytes(data: bytes) -> bytes:
    """Go's ``truncateString(s, 1024)``: ≥1024 bytes → the first 1013 bytes + ``(truncated)``."""
    if len(data) < MAX_STRING_BYTES:
        return data
    return data[: MAX_STRING_BYTES - len(TRUNCATED_SUFFIX)] + TRUNCATED_SUFFIX.encode()


def truncate(text: str) -> str:
    """Like `truncate_bytes` on the UTF-8 bytes of ``text``, then drop a split trailing code point.

    Go cuts at byte 1013 even inside a multi-byte character, leaving invalid UTF-8 that Python
    protobuf and Kubernetes cannot carry; taskop drops the partial character instead, so the
    result is 1010 to 1013 bytes of ``text`` + ``(truncated)``. Raw bytes smuggled in a str with
    ``surrogateescape`` keep their bytes.
    """
    data = text.encode("utf-8", "surrogateescape")
    if len(data) < MAX_STRING_BYTES:
        return text
    cut = data[: MAX_STRING_BYTES - len(TRUNCATED_SUFFIX)]
    return _drop_partial_code_point(cut).decode("utf-8", "surrogateescape") + TRUNCATED_SUFFIX


def _drop_partial_code_point(data: bytes) -> bytes:
    continuation = 0
    while continuation < min(3, len(data)) and data[-1 - continuation] & 0xC0 == 0x80:
        continuation += 1
    if continuation == len(data):
        return data
    lead = data[-1 - continuation]
    if 0xF0 <= lead <= 0xF4:
        needed = 3
    elif 0xE0 <= lead <= 0xEF:
        needed = 2
    elif 0xC2 <= lead <= 0xDF:
        needed = 1
    else:
        return data  # ASCII or bytes that start no character: nothing to repair
    return data if continuation >= needed else data[: -1 - continuation]


# --- transitions ----------------------------------------------------------------------------------


def validate_desire(guid: str, domain: str) -> list[str]:
    """BBS's messages for a bad guid or domain (``DesireTaskRequest.Validate`` order)."""
    errors = []
    if not GUID_PATTERN.fullmatch(guid) or len(guid) > MAX_ID_LENGTH:
        errors.append("Invalid field: task_guid")
    if not domain or len(domain) > MAX_ID_LENGTH:
        errors.append("Invalid field: domain")
    return errors


def desire(guid: str, domain: str, now: int) -> TaskRecord:
    """A new Pending task; ``InvalidRequest`` for a bad guid or domain."""
    errors = validate_desire(guid, domain)
    if errors:
        raise BBSError.invalid_request(errors)
    return TaskRecord(guid=guid, domain=domain, created_at=now, updated_at=now)


def start(rec: TaskRecord, cell_id: str, now: int) -> tuple[TaskRecord, bool]:
    """StartTask: Pending → Running on ``cell_id``; returns (record, should_start).

    Already Running on the same cell: the record unchanged and ``False``, no error.
    """
    if rec.state is TaskState.RUNNING and rec.cell_id == cell_id:
        return rec, False
    if rec.state is not TaskState.PENDING:
        raise BBSError.invalid_state_transition(rec.state, TaskState.RUNNING)
    return rec.replace(state=TaskState.RUNNING, cell_id=cell_id, updated_at=now), True


def _completed(rec: TaskRecord, failed: bool, reason: str, result: str, now: int) -> TaskRecord:
    return rec.replace(
        state=TaskState.COMPLETED,
        failed=failed,
        failure_reason=truncate(reason),
        result=result,
        cell_id="",
        first_completed_at=now,
        updated_at=now,
    )


def complete(
    rec: TaskRecord, cell_id: str, failed: bool, failure_reason: str, result: str, now: int
) -> TaskRecord:
    """CompleteTask from the cell the task runs on: Running → Completed, cell_id cleared."""
    if rec.state is TaskState.RUNNING and rec.cell_id != cell_id:
        raise BBSError.running_on_different_cell(rec.cell_id, cell_id)
    if rec.state is not TaskState.RUNNING:
        raise BBSError.invalid_state_transition(rec.state, TaskState.COMPLETED)
    return _completed(rec, failed, failure_reason, result, now)


def complete_from_job(
    rec: TaskRecord, failed: bool, failure_reason: str, result: str, now: int
) -> TaskRecord:
    """The reconciler's completion from a finished Job: Pending or Running → Completed.

    Unlike CompleteTask it accepts Pending: a Job may finish before taskop ever saw it run.
    """
    if rec.state not in (TaskState.PENDING, TaskState.RUNNING):
        raise BBSError.invalid_state_transition(rec.state, TaskState.COMPLETED)
    return _completed(rec, failed, failure_reason, result, now)


def fail(rec: TaskRecord, reason: str, now: int) -> TaskRecord:
    """FailTask: Pending or Running → Completed, failed with ``reason``."""
    if rec.state not in (TaskState.PENDING, TaskState.RUNNING):
        raise BBSError.invalid_state_transition(rec.state, TaskState.COMPLETED)
    return _completed(rec, True, reason, "", now)


def cancel(rec: TaskRecord, now: int) -> TaskRecord:
    """CancelTask: Pending or Running → Completed, failed, "task was cancelled"."""
    return fail(rec, REASON_CANCELLED, now)


def reject(rec: TaskRecord, reason: str, now: int, max_retries: int) -> TaskRecord:
    """RejectTask: Pending or Running → Pending with one more rejection (cell_id kept).

    When the count before this rejection is already ``max_retries`` or more, the task is rejected
    and then failed at once (Completed, failed, reason = the rejection reason).
    """
    if rec.state not in (TaskState.PENDING, TaskState.RUNNING):
        raise BBSError.invalid_request()
    rejected = rec.replace(
        state=TaskState.PENDING,
        rejection_count=rec.rejection_count + 1,
        rejection_reason=truncate(reason),
        updated_at=now,
    )
    if rec.rejection_count >= max_retries:
        return fail(rejected, reason, now)
    return rejected


def resolving(rec: TaskRecord, now: int) -> TaskRecord:
    """ResolvingTask: Completed → Resolving."""
    if rec.state is not TaskState.COMPLETED:
        raise BBSError.invalid_state_transition(rec.state, TaskState.RESOLVING)
    return rec.replace(state=TaskState.RESOLVING, updated_at=now)


def check_delete(rec: TaskRecord) -> None:
    """DeleteTask is allowed only when Resolving (BBS's message says "… to Resolving")."""
    if rec.state is not TaskState.RESOLVING:
        raise BBSError.invalid_state_transition(rec.state, TaskState.RESOLVING)


# --- convergence ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConvergenceSettings:
    """BBS's convergence and callback timings (seconds), as defaults."""

    kick_task_duration: float = 30.0
    """Resolving longer than this goes back to Completed; a callback is retried after it."""
    expire_pending_task_duration: float = 30 * 60.0
    """Pending longer than this (from created_at) fails with "not started within time limit"."""
    expire_completed_task_duration: float | None = 2 * 60.0
    """Completed longer than this (from first_completed_at) is deleted; None: never."""
    max_task_retries: int = 3
    """Rejections allowed before a rejection fails the task."""
    converge_repeat_interval: float = 30.0
    """How often running tasks are checked for a vanished cell."""
    callback_attempts: int = 3
    """Completion callback attempts per round."""
    callback_timeout: float = 10.0
    """HTTP timeout of one completion callback attempt."""


class ConvergeAction(enum.StrEnum):
    NOTHING = "Nothing"
    EXPIRE_PENDING = "ExpirePending"  # write record (Completed, failed)
    CELL_DISAPPEARED = "CellDisappeared"  # write record (Completed, failed)
    KICK_RESOLVING = "KickResolving"  # write record (back to Completed, updated_at unchanged)
    DELETE = "Delete"  # delete the task
    RETRY_CALLBACK = "RetryCallback"  # deliver the completion callback again


@dataclasses.dataclass(frozen=True, slots=True)
class ConvergeDecision:
    action: ConvergeAction
    record: TaskRecord | None = None
    """The record to write (None: nothing to write)."""
    callback: bool = False
    """Deliver the completion callback after writing ``record`` (or now, for RETRY_CALLBACK)."""


NOTHING = ConvergeDecision(ConvergeAction.NOTHING)


def _ns(seconds: float) -> int:
    return round(seconds * _NS_PER_S)


def _older(since: int, now: int, seconds: float | None) -> bool:
    return seconds is not None and now - since > _ns(seconds)


def converge(
    rec: TaskRecord,
    now: int,
    settings: ConvergenceSettings,
    has_callback: bool,
    cell_exists: bool = True,
) -> ConvergeDecision:
    """What one convergence pass of BBS would do to this task (§4, in its order)."""
    s = settings
    match rec.state:
        case TaskState.PENDING if _older(rec.created_at, now, s.expire_pending_task_duration):
            expired = rec.replace(
                state=TaskState.COMPLETED,
                failed=True,
                failure_reason=REASON_NOT_STARTED,
                result="",
                first_completed_at=now,
                updated_at=now,
            )
            return ConvergeDecision(ConvergeAction.EXPIRE_PENDING, expired, has_callback)
        case TaskState.RUNNING if not cell_exists:
            lost = rec.replace(
                state=TaskState.COMPLETED,
                failed=True,
                failure_reason=REASON_CELL_DISAPPEARED,
                result="",
                first_completed_at=now,
                updated_at=now,
            )
            return ConvergeDecision(ConvergeAction.CELL_DISAPPEARED, lost, has_callback)
        case TaskState.RESOLVING if _older(rec.updated_at, now, s.kick_task_duration):
            # BBS demotes first, then expires or re-delivers in the same pass.
            if _older(rec.first_completed_at, now, s.expire_completed_task_duration):
                return ConvergeDecision(ConvergeAction.DELETE)
            demoted = rec.replace(state=TaskState.COMPLETED)
            return ConvergeDecision(ConvergeAction.KICK_RESOLVING, demoted, has_callback)
        case TaskState.COMPLETED:
            if _older(rec.first_completed_at, now, s.expire_completed_task_duration):
                return ConvergeDecision(ConvergeAction.DELETE)
            if has_callback and _older(rec.updated_at, now, s.kick_task_duration):
                return ConvergeDecision(ConvergeAction.RETRY_CALLBACK, None, True)
    return NOTHING


def next_check_in(
    rec: TaskRecord, now: int, settings: ConvergenceSettings, *, has_callback: bool = True
) -> float | None:
    """Seconds until `converge` may decide something for this record (0.0: overdue; None: never).

    Running tasks get ``converge_repeat_interval``: a cell can vanish at any time.
    """
    s = settings
    deadlines: list[int] = []
    match rec.state:
        case TaskState.PENDING:
            deadlines.append(rec.created_at + _ns(s.expire_pending_task_duration))
        case TaskState.RUNNING:
            return s.converge_repeat_interval
        case TaskState.RESOLVING:
            deadlines.append(rec.updated_at + _ns(s.kick_task_duration))
        case TaskState.COMPLETED:
            if s.expire_completed_task_duration is not None:
                deadlines.append(rec.first_completed_at + _ns(s.expire_completed_task_duration))
            if has_callback:
                deadlines.append(rec.updated_at + _ns(s.kick_task_duration))
    if not deadlines:
        return None
    # The conditions are "older than", so the first moment they hold is one nanosecond later.
    return max(0, min(deadlines) + 1 - now) / _NS_PER_S
