"""Request decoding (empty, garbage, truncated, invalid UTF-8) and response encoding."""

from __future__ import annotations

import pytest

from taskop.bbs import models
from taskop.bbs.codec import (
    CONTENT_TYPE,
    decode_request,
    decode_text,
    encode_error,
    encode_response,
    error_response,
    ping_response,
)
from taskop.bbs.errors import from_proto, to_proto
from taskop.domain.errors import BBSError, ErrorType

INVALID = "the request received is invalid"


def test_content_type() -> None:
    assert CONTENT_TYPE == "application/x-protobuf"


@pytest.mark.parametrize(
    "message_type",
    [
        models.TasksRequest,
        models.TaskByGuidRequest,
        models.DesireTaskRequest,
        models.EventsByCellId,
    ],
)
def test_an_empty_body_is_the_default_message(message_type: type) -> None:
    assert decode_request(message_type, b"") == message_type()


def test_a_body_decodes() -> None:
    body = models.StartTaskRequest(task_guid="g", cell_id="c").SerializeToString()
    assert decode_request(models.StartTaskRequest, body) == models.StartTaskRequest(
        task_guid="g", cell_id="c"
    )


def invalid_request(message_type: type, body: bytes) -> BBSError:
    with pytest.raises(BBSError) as caught:
        decode_request(message_type, body)
    return caught.value


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff",  # a tag with no end
        b"\x0a\x10abc",  # a length beyond the body
        b"\x07",  # wire type 7 does not exist
        b"garbage that is not protobuf",
        b"\x0a\x01",  # truncated string
        models.DesireTaskRequest(task_guid="g", domain="d").SerializeToString()[:-1],
    ],
)
def test_garbage_and_truncated_bodies_are_invalid_requests(body: bytes) -> None:
    error = invalid_request(models.DesireTaskRequest, body)
    assert (error.type, error.message) == (ErrorType.InvalidRequest, INVALID)


def test_invalid_utf8_in_a_string_field_is_an_invalid_request() -> None:
    error = invalid_request(models.TaskGuidRequest, b"\x0a\x02\xc3\x28")
    assert (error.type, error.message) == (ErrorType.InvalidRequest, INVALID)


def test_invalid_utf8_in_free_text_decodes_and_becomes_replacement_characters() -> None:
    body = b"\x0a\x01g\x12\x01c\x18\x01\x22\x02\xff\x41\x2a\x03ok\xfe"
    request = decode_request(models.CompleteTaskRequest, body)
    assert request.failure_reason == b"\xffA"
    assert decode_text(request.failure_reason) == "\ufffdA"
    assert decode_text(request.result) == "ok\ufffd"
    assert decode_text("résultat".encode()) == "résultat"


def nested_desire_body(depth: int) -> bytes:
    """A DesireTaskRequest whose action is ``depth`` timeout actions around a run action."""
    action = b"\x1a\x00"  # Action{run_action: {}}
    for _ in range(depth):  # Action{timeout_action: TimeoutAction{action: ...}}
        timeout = b"\x0a" + _varint(len(action)) + action
        action = b"\x22" + _varint(len(timeout)) + timeout
    td = b"\x1a" + _varint(len(action)) + action
    return b"\x0a" + _varint(len(td)) + td


def test_deeply_nested_actions_are_an_invalid_request_not_a_crash() -> None:
    request = decode_request(models.DesireTaskRequest, nested_desire_body(10))
    assert request.task_definition.action.timeout_action.HasField("action")
    error = invalid_request(models.DesireTaskRequest, nested_desire_body(200))
    assert (error.type, error.message) == (ErrorType.InvalidRequest, INVALID)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_success_responses_carry_no_error() -> None:
    assert encode_response(models.TaskLifecycleResponse()) == b""
    assert encode_response(models.StartTaskResponse(should_start=True)) == b"\x10\x01"
    assert encode_response(ping_response()) == b"\x08\x01"
    assert encode_response(ping_response(False)) == b""


def test_error_responses_carry_only_the_error() -> None:
    error = BBSError.resource_not_found()
    response = error_response(models.TaskResponse, error)
    assert not response.HasField("task")
    assert response.error == models.Error(
        type=models.Error.ResourceNotFound, message="the requested resource could not be found"
    )
    message = b"the requested resource could not be found"
    assert encode_error(models.TaskResponse, error) == (
        b"\x0a" + bytes([len(message) + 4]) + b"\x08\x0d\x12" + bytes([len(message)]) + message
    )
    tasks = error_response(models.TasksResponse, BBSError.unknown("boom"))
    assert len(tasks.tasks) == 0
    assert tasks.error.type == models.Error.UnknownError
    assert encode_response(tasks) == b"\x0a\x06\x12\x04boom"  # UnknownError = 0: type omitted


def test_error_round_trip() -> None:
    for error in (
        BBSError.invalid_request(["Invalid field: task_guid"]),
        BBSError.resource_exists(),
        BBSError.running_on_different_cell("a", "b"),
    ):
        assert from_proto(to_proto(error)) == error
    assert from_proto(models.Error(type=2, message="x")).type == ErrorType.UnknownError  # type: ignore[arg-type]
