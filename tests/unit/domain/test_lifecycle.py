"""Every transition of the BBS state machine (spec §4), allowed and refused."""

from __future__ import annotations

import pytest

from taskop.domain import lifecycle
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.lifecycle import TaskRecord, truncate, truncate_bytes
from taskop.domain.states import TaskState

P, R, C, X = TaskState.PENDING, TaskState.RUNNING, TaskState.COMPLETED, TaskState.RESOLVING
T0 = 1_700_000_000_000_000_000
NOW = T0 + 5_000_000_000


def rec(state: TaskState = P, cell: str = "") -> TaskRecord:
    return TaskRecord(guid="g", domain="d", state=state, cell_id=cell, created_at=T0, updated_at=T0)


def transition_error(from_: TaskState, to: TaskState) -> BBSError:
    return BBSError(ErrorType.InvalidStateTransition, f"Cannot transition from {from_} to {to}")


def test_desire() -> None:
    assert lifecycle.desire("g-1_A", "d", NOW) == TaskRecord(
        guid="g-1_A", domain="d", state=P, created_at=NOW, updated_at=NOW
    )


@pytest.mark.parametrize(
    ("guid", "domain", "messages"),
    [
        ("", "d", ["Invalid field: task_guid"]),
        ("a b", "d", ["Invalid field: task_guid"]),
        ("a.b", "d", ["Invalid field: task_guid"]),
        ("a" * 256, "d", ["Invalid field: task_guid"]),
        ("g", "", ["Invalid field: domain"]),
        ("g", "d" * 256, ["Invalid field: domain"]),
        ("/", "", ["Invalid field: task_guid", "Invalid field: domain"]),
    ],
)
def test_desire_invalid(guid: str, domain: str, messages: list[str]) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.desire(guid, domain, NOW)
    assert info.value.type is ErrorType.InvalidRequest
    assert info.value.message == ", ".join(messages)


def test_start_pending() -> None:
    started, should_start = lifecycle.start(rec(P), "cell-1", NOW)
    assert should_start is True
    assert started == rec(P).replace(state=R, cell_id="cell-1", updated_at=NOW)


def test_start_running_same_cell_is_a_no_op() -> None:
    running = rec(R, "cell-1")
    again, should_start = lifecycle.start(running, "cell-1", NOW)
    assert should_start is False
    assert again is running


@pytest.mark.parametrize(("state", "cell"), [(R, "other"), (C, ""), (C, "cell-1"), (X, "")])
def test_start_refused(state: TaskState, cell: str) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.start(rec(state, cell), "cell-1", NOW)
    assert info.value == transition_error(state, R)


def test_complete_running_on_same_cell() -> None:
    done = lifecycle.complete(rec(R, "cell-1"), "cell-1", True, "boom", "res", NOW)
    assert done == rec(R).replace(
        state=C,
        failed=True,
        failure_reason="boom",
        result="res",
        cell_id="",
        first_completed_at=NOW,
        updated_at=NOW,
    )


def test_complete_truncates_reason_not_result() -> None:
    done = lifecycle.complete(rec(R, "c"), "c", True, "x" * 2000, "y" * 2000, NOW)
    assert done.failure_reason == "x" * 1013 + "(truncated)"
    assert done.result == "y" * 2000


def test_complete_other_cell() -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.complete(rec(R, "actual"), "requested", False, "", "", NOW)
    assert info.value == BBSError(
        ErrorType.RunningOnDifferentCell, "Running on cell actual not requested"
    )


@pytest.mark.parametrize("state", [P, C, X])
def test_complete_refused(state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.complete(rec(state, "cell-1"), "cell-1", False, "", "", NOW)
    assert info.value == transition_error(state, C)


@pytest.mark.parametrize(("state", "cell"), [(P, ""), (R, "cell-1")])
def test_complete_from_job(state: TaskState, cell: str) -> None:
    done = lifecycle.complete_from_job(rec(state, cell), False, "", "42", NOW)
    assert (done.state, done.failed, done.result, done.cell_id) == (C, False, "42", "")
    assert done.first_completed_at == done.updated_at == NOW


@pytest.mark.parametrize("state", [C, X])
def test_complete_from_job_refused(state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.complete_from_job(rec(state), False, "", "", NOW)
    assert info.value == transition_error(state, C)


@pytest.mark.parametrize(("state", "cell"), [(P, ""), (R, "cell-1")])
def test_cancel(state: TaskState, cell: str) -> None:
    done = lifecycle.cancel(rec(state, cell).replace(result="partial"), NOW)
    assert done == rec(P).replace(
        state=C,
        failed=True,
        failure_reason="task was cancelled",
        result="",
        cell_id="",
        first_completed_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(("state", "cell"), [(P, ""), (R, "cell-1")])
def test_fail(state: TaskState, cell: str) -> None:
    done = lifecycle.fail(rec(state, cell), "z" * 1024, NOW)
    assert (done.state, done.failed, done.cell_id, done.result) == (C, True, "", "")
    assert done.failure_reason == "z" * 1013 + "(truncated)"


@pytest.mark.parametrize("operation", ["cancel", "fail"])
@pytest.mark.parametrize("state", [C, X])
def test_cancel_and_fail_refused(operation: str, state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        if operation == "cancel":
            lifecycle.cancel(rec(state), NOW)
        else:
            lifecycle.fail(rec(state), "r", NOW)
    assert info.value == transition_error(state, C)


@pytest.mark.parametrize(("state", "cell"), [(P, ""), (P, "kept"), (R, "cell-1")])
@pytest.mark.parametrize("count", [0, 1, 2])
def test_reject_under_the_limit(state: TaskState, cell: str, count: int) -> None:
    before = rec(state, cell).replace(rejection_count=count)
    after = lifecycle.reject(before, "no room", NOW, max_retries=3)
    assert after == before.replace(
        state=P, rejection_count=count + 1, rejection_reason="no room", updated_at=NOW
    )


@pytest.mark.parametrize("count", [3, 4])
def test_reject_over_the_limit_fails(count: int) -> None:
    before = rec(R, "cell-1").replace(rejection_count=count)
    after = lifecycle.reject(before, "no room", NOW, max_retries=3)
    assert after == before.replace(
        state=C,
        rejection_count=count + 1,
        rejection_reason="no room",
        failed=True,
        failure_reason="no room",
        cell_id="",
        first_completed_at=NOW,
        updated_at=NOW,
    )


def test_reject_with_zero_retries_fails_at_once() -> None:
    after = lifecycle.reject(rec(P), "r", NOW, max_retries=0)
    assert (after.state, after.failed, after.rejection_count) == (C, True, 1)


def test_reject_truncates_reason() -> None:
    after = lifecycle.reject(rec(P), "r" * 5000, NOW, max_retries=3)
    assert after.rejection_reason == "r" * 1013 + "(truncated)"


@pytest.mark.parametrize("state", [C, X])
def test_reject_refused_with_invalid_request(state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.reject(rec(state), "r", NOW, max_retries=3)
    assert info.value == BBSError(ErrorType.InvalidRequest, "the request received is invalid")


def test_resolving() -> None:
    completed = rec(C).replace(first_completed_at=T0)
    assert lifecycle.resolving(completed, NOW) == completed.replace(state=X, updated_at=NOW)


@pytest.mark.parametrize("state", [P, R, X])
def test_resolving_refused(state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.resolving(rec(state), NOW)
    assert info.value == transition_error(state, X)


def test_delete_allowed_when_resolving() -> None:
    lifecycle.check_delete(rec(X))


@pytest.mark.parametrize("state", [P, R, C])
def test_delete_refused_says_to_resolving(state: TaskState) -> None:
    with pytest.raises(BBSError) as info:
        lifecycle.check_delete(rec(state))
    assert info.value.type is ErrorType.InvalidStateTransition
    assert info.value.message == f"Cannot transition from {state.value} to Resolving"


def test_records_are_frozen() -> None:
    with pytest.raises(AttributeError):
        rec().state = R  # type: ignore[misc]


# --- truncate -------------------------------------------------------------------------------------

SUFFIX = "(truncated)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("short", "short"),
        ("a" * 1023, "a" * 1023),
        ("a" * 1024, "a" * 1013 + SUFFIX),
        ("a" * 1025, "a" * 1013 + SUFFIX),
        ("a" * 100_000, "a" * 1013 + SUFFIX),
        # 1012 ASCII bytes + a 2-byte char straddling byte 1013: the char is dropped
        ("a" * 1012 + "é" * 10, "a" * 1012 + SUFFIX),
        # 1011 + 2 bytes end exactly at 1013: kept
        ("a" * 1011 + "é" * 10, "a" * 1011 + "é" + SUFFIX),
        # 3-byte chars: 1012 = 3 * 337 + 1 → 337 chars kept
        ("€" * 400, "€" * 337 + SUFFIX),
        # 4-byte chars: 1013 = 4 * 253 + 1 → 253 kept
        ("😀" * 300, "😀" * 253 + SUFFIX),
        # multi-byte text under the limit in bytes is untouched
        ("€" * 341, "€" * 341),
    ],
)
def test_truncate(text: str, expected: str) -> None:
    assert truncate(text) == expected
    assert len(truncate(text).encode()) <= 1024


@pytest.mark.parametrize("prefix", range(4))
@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_truncate_never_splits_a_code_point(prefix: int, char: str) -> None:
    text = "a" * prefix + char * 600
    result = truncate(text)
    assert result.endswith(SUFFIX)
    kept = result.removesuffix(SUFFIX).encode()
    assert 1013 - len(char.encode()) < len(kept) <= 1013
    assert text.encode().startswith(kept)


def test_truncate_keeps_raw_bytes() -> None:
    raw = b"\xff" * 2000
    text = raw.decode("utf-8", "surrogateescape")
    assert truncate(text).encode("utf-8", "surrogateescape") == b"\xff" * 1013 + SUFFIX.encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"x" * 1023, b"x" * 1023),
        (b"x" * 1024, b"x" * 1013 + b"(truncated)"),
        ("é".encode() * 600, ("é".encode() * 600)[:1013] + b"(truncated)"),  # Go splits
    ],
)
def test_truncate_bytes_is_go(data: bytes, expected: bytes) -> None:
    assert truncate_bytes(data) == expected
