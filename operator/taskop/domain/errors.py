"""BBS errors (``models.Error``): one exception type carrying the wire error type and message."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from taskop.domain.states import TaskState


class ErrorType(enum.IntEnum):
    """``models.Error.Type``; member names are the BBS names (1, 2, 10, 20, 22, 23, 25 reserved)."""

    UnknownError = 0
    InvalidRecord = 3
    InvalidRequest = 4
    InvalidResponse = 5
    InvalidProtobufMessage = 6
    InvalidJSON = 7
    FailedToOpenEnvelope = 8
    InvalidStateTransition = 9
    ResourceConflict = 11
    ResourceExists = 12
    ResourceNotFound = 13
    RouterError = 14
    ActualLRPCannotBeClaimed = 15
    ActualLRPCannotBeStarted = 16
    ActualLRPCannotBeCrashed = 17
    ActualLRPCannotBeFailed = 18
    ActualLRPCannotBeRemoved = 19
    ActualLRPCannotBeUnclaimed = 21
    RunningOnDifferentCell = 24
    GUIDGeneration = 26
    Deserialize = 27
    Deadlock = 28
    Unrecoverable = 29
    LockCollision = 30
    Timeout = 31


class BBSError(Exception):
    """A failure the BBS API reports in a response's ``error`` field."""

    def __init__(self, type_: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message

    def __repr__(self) -> str:
        return f"BBSError({self.type.name}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BBSError):
            return NotImplemented
        return (self.type, self.message) == (other.type, other.message)

    def __hash__(self) -> int:
        return hash((self.type, self.message))

    @classmethod
    def invalid_state_transition(cls, from_: TaskState, to: TaskState) -> BBSError:
        return cls(
            ErrorType.InvalidStateTransition,
            f"Cannot transition from {from_.value} to {to.value}",
        )

    @classmethod
    def resource_not_found(cls) -> BBSError:
        return cls(ErrorType.ResourceNotFound, "the requested resource could not be found")

    @classmethod
    def resource_exists(cls) -> BBSError:
        return cls(ErrorType.ResourceExists, "the requested resource already exists")

    @classmethod
    def running_on_different_cell(cls, actual: str, requested: str) -> BBSError:
        return cls(ErrorType.RunningOnDifferentCell, f"Running on cell {actual} not {requested}")

    @classmethod
    def invalid_request(cls, messages: Iterable[str] | None = None) -> BBSError:
        joined = ", ".join(messages or ())
        return cls(ErrorType.InvalidRequest, joined or "the request received is invalid")

    @classmethod
    def unknown(cls, message: str) -> BBSError:
        return cls(ErrorType.UnknownError, message)
