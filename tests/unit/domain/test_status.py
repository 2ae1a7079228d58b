from __future__ import annotations

from typing import Any

import pytest

from taskop.domain import status as status_module
from taskop.domain.lifecycle import TaskRecord
from taskop.domain.states import ConditionReason, TaskState
from taskop.domain.status import (
    TaskStatus,
    completion_reason,
    derive_conditions,
    record_from_status,
    record_to_status,
    set_condition,
)

S = 10**9
T0 = 1_795_416_661_123_456_789
RECORD = TaskRecord(
    guid="g",
    domain="d",
    state=TaskState.COMPLETED,
    cell_id="",
    result="42",
    failed=True,
    failure_reason="exit status 1",
    rejection_count=2,
    rejection_reason="full",
    created_at=T0,
    updated_at=T0 + 1,
    first_completed_at=T0 + 2,
)


def test_record_to_status() -> None:
    assert record_to_status(RECORD) == {
        "state": "Completed",
        "failed": True,
        "failureReason": "exit status 1",
        "result": "42",
        "cellId": "",
        "createdAt": "2026-11-23T06:51:01.123456789Z",
        "updatedAt": "2026-11-23T06:51:01.123456790Z",
        "firstCompletedAt": "2026-11-23T06:51:01.123456791Z",
        "rejectionCount": 2,
        "rejectionReason": "full",
    }


@pytest.mark.parametrize(
    "record",
    [
        RECORD,
        TaskRecord(guid="g", domain="d", created_at=T0, updated_at=T0),
        TaskRecord(guid="g", domain="d", state=TaskState.RUNNING, cell_id="n1", created_at=1),
    ],
)
def test_round_trip(record: TaskRecord) -> None:
    status = {**record_to_status(record), "jobName": "j", "conditions": [], "observedGeneration": 1}
    assert record_from_status("g", "d", status) == record
    TaskStatus.model_validate(status)


def test_empty_status_is_a_new_pending_record() -> None:
    assert record_from_status("g", "d", None) == TaskRecord(guid="g", domain="d")
    assert record_from_status("g", "d", {}) == TaskRecord(guid="g", domain="d")


def test_zero_first_completed_at_is_null() -> None:
    rec = TaskRecord(guid="g", domain="d", created_at=T0, updated_at=T0)
    assert record_to_status(rec)["firstCompletedAt"] is None


def test_set_condition_adds_and_replaces() -> None:
    c1 = set_condition([], "Running", "False", "Pending", "", T0)
    assert c1 == [
        {
            "type": "Running",
            "status": "False",
            "reason": "Pending",
            "message": "",
            "lastTransitionTime": "2026-11-23T06:51:01Z",
        }
    ]
    c2 = set_condition(c1, "Completed", "False", "Pending", "", T0 + 5 * S, 3)
    assert [c["type"] for c in c2] == ["Running", "Completed"]
    assert c2[1]["observedGeneration"] == 3
    # same status: reason and message change, the transition time does not
    c3 = set_condition(c2, "Running", "False", "JobCreated", "waiting", T0 + 10 * S)
    assert c3[0] == {**c1[0], "reason": "JobCreated", "message": "waiting"}
    # new status: the transition time moves
    c4 = set_condition(c3, "Running", "True", "PodRunning", "", T0 + 20 * S)
    assert c4[0]["lastTransitionTime"] == "2026-11-23T06:51:21Z"
    assert c1 == [c1[0]] and len(c2) == 2  # inputs untouched


@pytest.mark.parametrize(
    ("failed", "reason", "expected"),
    [
        (False, "", ConditionReason.SUCCEEDED),
        (True, "task was cancelled", ConditionReason.CANCELLED),
        (True, "not started within time limit", ConditionReason.NOT_STARTED),
        (True, "cell disappeared before completion", ConditionReason.CELL_DISAPPEARED),
        (True, "exit status 2", ConditionReason.EXIT_CODE),
        (True, "OOMKilled (exit status 137)", ConditionReason.OOM_KILLED),
        (True, "DeadlineExceeded: …", ConditionReason.DEADLINE_EXCEEDED),
        (True, "image pull failed: x", ConditionReason.IMAGE_PULL_FAILED),
        (True, "evicted: x", ConditionReason.EVICTED),
        (True, "node lost: x", ConditionReason.NODE_LOST),
        (True, "preempted: x", ConditionReason.PREEMPTED),
        (True, "result exceeds 4095 bytes", ConditionReason.RESULT_TOO_LARGE),
        (True, "some cell said no", ConditionReason.FAILED),
    ],
)
def test_completion_reason(failed: bool, reason: str, expected: ConditionReason) -> None:
    rec = RECORD.replace(failed=failed, failure_reason=reason)
    assert completion_reason(rec) is expected


def _by_type(conditions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conditions}


@pytest.mark.parametrize(
    ("state", "failed", "expected"),
    [
        (
            TaskState.PENDING,
            False,
            {"Running": ("False", "Pending"), "Completed": ("False", "Pending")},
        ),
        (
            TaskState.RUNNING,
            False,
            {"Running": ("True", "PodRunning"), "Completed": ("False", "PodRunning")},
        ),
        (
            TaskState.COMPLETED,
            False,
            {
                "Running": ("False", "Succeeded"),
                "Completed": ("True", "Succeeded"),
                "Succeeded": ("True", "Succeeded"),
                "Failed": ("False", "Succeeded"),
            },
        ),
        (
            TaskState.RESOLVING,
            True,
            {
                "Running": ("False", "ExitCode"),
                "Completed": ("True", "ExitCode"),
                "Succeeded": ("False", "ExitCode"),
                "Failed": ("True", "ExitCode"),
            },
        ),
    ],
)
def test_derive_conditions(state: TaskState, failed: bool, expected: Any) -> None:
    rec = RECORD.replace(state=state, failed=failed)
    conditions = derive_conditions(rec, [], T0, 4)
    assert _by_type(conditions) == expected
    assert all(c["observedGeneration"] == 4 for c in conditions)
    if failed:
        assert conditions[1]["message"] == "exit status 1"


def test_derive_conditions_with_reason() -> None:
    rec = RECORD.replace(state=TaskState.PENDING)
    conditions = derive_conditions(rec, [], T0, reason=ConditionReason.JOB_CREATED, message="m")
    assert _by_type(conditions)["Running"] == ("False", "JobCreated")
    assert conditions[0]["message"] == "m"


def test_a_record_reads_its_fields_as_the_status_model_types_them() -> None:
    """`record_from_status` validates only the fields it reads, typed as in `TaskStatus`."""
    fields = status_module._RecordFields.model_fields
    for name, field in fields.items():
        assert TaskStatus.model_fields[name].annotation == field.annotation, name
        assert TaskStatus.model_fields[name].default == field.default, name
