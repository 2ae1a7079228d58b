"""The domain's `BBSError` ⇄ the wire's `models.Error`."""

from __future__ import annotations

from typing import cast

from taskop.bbs import models
from taskop.domain.errors import BBSError, ErrorType


def to_proto(error: BBSError) -> models.Error:
    """The `models.Error` for a domain error (the numbers of `ErrorType` are the wire numbers)."""
    return models.Error(type=cast(models.Error.Type, int(error.type)), message=error.message)


def from_proto(error: models.Error) -> BBSError:
    """The domain error for a `models.Error`; numbers taskop does not know become UnknownError."""
    try:
        type_ = ErrorType(error.type)
    except ValueError:
        type_ = ErrorType.UnknownError
    return BBSError(type_, error.message)
