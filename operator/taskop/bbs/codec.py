"""Request bodies → messages and responses → bytes (spec §3, §8 items 2 and 5).

Errors travel inside the response with HTTP 200: a response's ``error`` field is set only on
failure, because a present ``error`` (even an empty one, ``0a 00``) is a failure to the Go client.
Limiting the body size is the caller's job (before reading it).

Free text from cells (result, failure_reason, rejection_reason) is ``bytes`` in taskop's protos,
since Go sends whatever bytes it has. `decode_text` turns it into text for the Task status:
invalid UTF-8 becomes U+FFFD. A cell's CompleteTask with a binary result is thus stored, not
refused: refusing would leave the task Running for ever, while Kubernetes (JSON) cannot store the
raw bytes anyway.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError

from taskop.bbs import models
from taskop.bbs.errors import to_proto
from taskop.domain.errors import BBSError

CONTENT_TYPE = "application/x-protobuf"


class _Message(Protocol):
    def ParseFromString(self, serialized: bytes, /) -> int: ...
    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


M = TypeVar("M", bound=_Message)


def decode_request(message_type: type[M], body: bytes) -> M:
    """The request in ``body``; an empty body is the all-default message.

    Garbage, truncated messages and invalid UTF-8 in ``string`` fields raise InvalidRequest
    "the request received is invalid", as BBS answers an unparseable body.
    """
    message = message_type()
    if body:
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError):
            raise BBSError.invalid_request() from None
    return message


def encode_response(message: _Message) -> bytes:
    """The response's wire bytes (maps in a stable order)."""
    return message.SerializeToString(deterministic=True)


def error_response(message_type: type[M], error: BBSError) -> M:
    """A response of ``message_type`` carrying only ``error`` (lists empty, no task)."""
    response = message_type()
    response.error.CopyFrom(to_proto(error))  # type: ignore[attr-defined]
    return response


def encode_error(message_type: type[_Message], error: BBSError) -> bytes:
    """`error_response` encoded."""
    return encode_response(error_response(message_type, error))


def ping_response(available: bool = True) -> models.PingResponse:
    return models.PingResponse(available=available)


def decode_text(data: bytes) -> str:
    """Wire free text → str: UTF-8, invalid sequences replaced by U+FFFD."""
    return data.decode("utf-8", "replace")
