from __future__ import annotations

import pytest

from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.states import ConditionReason, ConditionType, TaskState


@pytest.mark.parametrize(
    ("state", "value", "number"),
    [
        (TaskState.PENDING, "Pending", 1),
        (TaskState.RUNNING, "Running", 2),
        (TaskState.COMPLETED, "Completed", 3),
        (TaskState.RESOLVING, "Resolving", 4),
    ],
)
def test_task_state(state: TaskState, value: str, number: int) -> None:
    assert state == value
    assert str(state) == value
    assert state.bbs_value == number
    assert TaskState.from_bbs(number) is state
    assert TaskState(value) is state


@pytest.mark.parametrize("number", [0, 5, -1])
def test_from_bbs_invalid(number: int) -> None:
    with pytest.raises(ValueError, match=f"invalid BBS task state {number}"):
        TaskState.from_bbs(number)


def test_condition_types_are_kubectl_wait_names() -> None:
    assert [t.value for t in ConditionType] == [
        "Running",
        "Completed",
        "Succeeded",
        "Failed",
        "Enforced",
    ]


def test_condition_reasons_are_camel_case() -> None:
    for reason in ConditionReason:
        assert reason.value[0].isupper() and reason.value.isalnum()


def test_error_types_match_the_bbs_proto() -> None:
    assert {t.name: t.value for t in ErrorType} == {
        "UnknownError": 0,
        "InvalidRecord": 3,
        "InvalidRequest": 4,
        "InvalidResponse": 5,
        "InvalidProtobufMessage": 6,
        "InvalidJSON": 7,
        "FailedToOpenEnvelope": 8,
        "InvalidStateTransition": 9,
        "ResourceConflict": 11,
        "ResourceExists": 12,
        "ResourceNotFound": 13,
        "RouterError": 14,
        "ActualLRPCannotBeClaimed": 15,
        "ActualLRPCannotBeStarted": 16,
        "ActualLRPCannotBeCrashed": 17,
        "ActualLRPCannotBeFailed": 18,
        "ActualLRPCannotBeRemoved": 19,
        "ActualLRPCannotBeUnclaimed": 21,
        "RunningOnDifferentCell": 24,
        "GUIDGeneration": 26,
        "Deserialize": 27,
        "Deadlock": 28,
        "Unrecoverable": 29,
        "LockCollision": 30,
        "Timeout": 31,
    }


@pytest.mark.parametrize(
    ("error", "type_", "message"),
    [
        (
            BBSError.invalid_state_transition(TaskState.PENDING, TaskState.COMPLETED),
            ErrorType.InvalidStateTransition,
            "Cannot transition from Pending to Completed",
        ),
        (
            BBSError.resource_not_found(),
            ErrorType.ResourceNotFound,
            "the requested resource could not be found",
        ),
        (
            BBSError.resource_exists(),
            ErrorType.ResourceExists,
            "the requested resource already exists",
        ),
        (
            BBSError.running_on_different_cell("a", "b"),
            ErrorType.RunningOnDifferentCell,
            "Running on cell a not b",
        ),
        (BBSError.invalid_request(), ErrorType.InvalidRequest, "the request received is invalid"),
        (BBSError.invalid_request([]), ErrorType.InvalidRequest, "the request received is invalid"),
        (
            BBSError.invalid_request(["Invalid field: task_guid", "Invalid field: domain"]),
            ErrorType.InvalidRequest,
            "Invalid field: task_guid, Invalid field: domain",
        ),
        (BBSError.unknown("db down"), ErrorType.UnknownError, "db down"),
    ],
)
def test_bbs_errors(error: BBSError, type_: ErrorType, message: str) -> None:
    assert error.type is type_
    assert error.message == message
    assert str(error) == message
    assert isinstance(error, Exception)
