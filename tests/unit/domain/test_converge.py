"""Convergence decisions (spec §4, steps 1-6) and when a record next needs a look."""

from __future__ import annotations

import pytest

from taskop.domain.lifecycle import (
    ConvergeAction,
    ConvergeDecision,
    ConvergenceSettings,
    TaskRecord,
    converge,
    next_check_in,
)
from taskop.domain.states import TaskState

P, R, C, X = TaskState.PENDING, TaskState.RUNNING, TaskState.COMPLETED, TaskState.RESOLVING
S = 1_000_000_000
T0 = 1_700_000_000 * S
DEFAULTS = ConvergenceSettings()
A = ConvergeAction


def rec(state: TaskState, created: int = 0, updated: int = 0, completed: int = 0) -> TaskRecord:
    """Times are seconds before T0 ... relative to T0 (negative: in the past)."""
    return TaskRecord(
        guid="g",
        domain="d",
        state=state,
        cell_id="cell-1" if state is R else "",
        failed=state in (C, X),
        failure_reason="boom" if state in (C, X) else "",
        created_at=T0 + created * S,
        updated_at=T0 + updated * S,
        first_completed_at=T0 + completed * S if state in (C, X) else 0,
    )


def test_defaults_are_bbs() -> None:
    assert DEFAULTS == ConvergenceSettings(
        kick_task_duration=30,
        expire_pending_task_duration=1800,
        expire_completed_task_duration=120,
        max_task_retries=3,
        converge_repeat_interval=30,
        callback_attempts=3,
        callback_timeout=10,
    )


@pytest.mark.parametrize(
    ("record", "has_callback", "cell_exists", "action", "callback"),
    [
        # Pending: expires 30 min after created_at, whatever updated_at says
        (rec(P, created=-1800), False, True, A.NOTHING, False),
        (rec(P, created=-1801), False, True, A.EXPIRE_PENDING, False),
        (rec(P, created=-1801, updated=0), True, True, A.EXPIRE_PENDING, True),
        (rec(P, created=-100, updated=-100), True, True, A.NOTHING, False),
        # Running: only a vanished cell matters
        (rec(R, created=-99999, updated=-99999), True, True, A.NOTHING, False),
        (rec(R), False, False, A.CELL_DISAPPEARED, False),
        (rec(R), True, False, A.CELL_DISAPPEARED, True),
        # Resolving: kicked back after 30 s without a change
        (rec(X, updated=-30, completed=-30), True, True, A.NOTHING, False),
        (rec(X, updated=-31, completed=-31), True, True, A.KICK_RESOLVING, True),
        (rec(X, updated=-31, completed=-31), False, True, A.KICK_RESOLVING, False),
        (rec(X, updated=-31, completed=-121), True, True, A.DELETE, False),
        (rec(X, updated=-31, completed=-120), True, True, A.KICK_RESOLVING, True),
        # Completed: deleted 2 min after first completion; callback again after 30 s
        (rec(C, updated=-10, completed=-121), True, True, A.DELETE, False),
        (rec(C, updated=-121, completed=-121), False, True, A.DELETE, False),
        (rec(C, updated=-31, completed=-31), True, True, A.RETRY_CALLBACK, True),
        (rec(C, updated=-31, completed=-31), False, True, A.NOTHING, False),
        (rec(C, updated=-30, completed=-30), True, True, A.NOTHING, False),
        # a vanished cell matters only to Running tasks
        (rec(P), True, False, A.NOTHING, False),
        (rec(C), True, False, A.NOTHING, False),
    ],
)
def test_converge(
    record: TaskRecord, has_callback: bool, cell_exists: bool, action: A, callback: bool
) -> None:
    decision = converge(record, T0, DEFAULTS, has_callback, cell_exists)
    assert (decision.action, decision.callback) == (action, callback)
    if action in (A.NOTHING, A.DELETE, A.RETRY_CALLBACK):
        assert decision.record is None


def test_expire_pending_record() -> None:
    record = rec(P, created=-1801, updated=-5).replace(rejection_count=2, cell_id="c")
    decision = converge(record, T0, DEFAULTS, has_callback=False)
    assert decision == ConvergeDecision(
        A.EXPIRE_PENDING,
        record.replace(
            state=C,
            failed=True,
            failure_reason="not started within time limit",
            first_completed_at=T0,
            updated_at=T0,
        ),
        False,
    )


def test_cell_disappeared_keeps_cell_id() -> None:
    record = rec(R, updated=-5)
    decision = converge(record, T0, DEFAULTS, has_callback=False, cell_exists=False)
    assert decision.record == record.replace(
        state=C,
        failed=True,
        failure_reason="cell disappeared before completion",
        first_completed_at=T0,
        updated_at=T0,
    )
    assert decision.record.cell_id == "cell-1"


def test_kick_resolving_keeps_updated_at() -> None:
    record = rec(X, updated=-31, completed=-40)
    decision = converge(record, T0, DEFAULTS, has_callback=True)
    assert decision.record == record.replace(state=C)
    assert decision.record.updated_at == T0 - 31 * S


def test_never_expire_completed() -> None:
    settings = ConvergenceSettings(expire_completed_task_duration=None)
    record = rec(C, updated=-99999, completed=-99999)
    assert converge(record, T0, settings, has_callback=False).action is A.NOTHING
    assert next_check_in(record, T0, settings, has_callback=False) is None
    resolving = rec(X, updated=-99999, completed=-99999)
    assert converge(resolving, T0, settings, has_callback=True).action is A.KICK_RESOLVING


@pytest.mark.parametrize(
    ("record", "has_callback", "expected"),
    [
        (rec(P, created=0), True, 1800.000000001),
        (rec(P, created=-1000, updated=0), False, 800.000000001),
        (rec(P, created=-5000), False, 0.0),
        (rec(R), True, 30.0),
        (rec(X, updated=-10, completed=-10), True, 20.000000001),
        (rec(X, updated=-100, completed=-100), True, 0.0),
        (rec(C, updated=0, completed=0), True, 30.000000001),
        (rec(C, updated=0, completed=0), False, 120.000000001),
        (rec(C, updated=-10, completed=-100), False, 20.000000001),
        (rec(C, updated=-10, completed=-100), True, 20.000000001),
        (rec(C, updated=-500, completed=-500), True, 0.0),
    ],
)
def test_next_check_in(record: TaskRecord, has_callback: bool, expected: float) -> None:
    assert next_check_in(record, T0, DEFAULTS, has_callback=has_callback) == pytest.approx(
        expected, abs=1e-9
    )


@pytest.mark.parametrize("state", [P, X, C])
@pytest.mark.parametrize("has_callback", [True, False])
@pytest.mark.parametrize("age", [0, 7, 29, 31, 119, 121, 1799])
def test_next_check_in_is_exactly_when_converge_acts(
    state: TaskState, has_callback: bool, age: int
) -> None:
    """Nothing happens before the announced time; something happens at it."""
    record = rec(state, created=-age, updated=-age, completed=-age)
    delay = next_check_in(record, T0, DEFAULTS, has_callback=has_callback)
    assert delay is not None
    due = T0 + round(delay * S)
    assert converge(record, due, DEFAULTS, has_callback).action is not A.NOTHING
    if delay > 0:
        assert converge(record, due - 1, DEFAULTS, has_callback).action is A.NOTHING
