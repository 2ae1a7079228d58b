"""Golden wire bytes: field numbers, types and presence exactly as BBS's Go code encodes them."""

from __future__ import annotations

import pytest

from taskop.bbs import models


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_ping_available_is_08_01() -> None:
    assert models.PingResponse(available=True).SerializeToString() == b"\x08\x01"


def test_empty_lifecycle_response_is_zero_bytes() -> None:
    assert models.TaskLifecycleResponse().SerializeToString() == b""


def test_error_response() -> None:
    response = models.TaskLifecycleResponse(
        error=models.Error(type=models.Error.InvalidRequest, message="x")
    )
    assert response.SerializeToString() == b"\x0a\x05\x08\x04\x12\x01x"


def test_a_present_empty_error_is_two_bytes_the_go_client_treats_as_failure() -> None:
    response = models.TaskLifecycleResponse()
    response.error.type = models.Error.UnknownError  # assigning even a default makes it present
    assert response.SerializeToString() == b"\x0a\x00"


def test_start_task_response_should_start() -> None:
    assert models.StartTaskResponse(should_start=True).SerializeToString() == b"\x10\x01"


def test_security_group_rule_ports_are_not_packed() -> None:
    rule = models.SecurityGroupRule(ports=[80, 443])
    assert rule.SerializeToString() == b"\x18\x50\x18\xbb\x03"


def test_packed_ports_are_still_accepted() -> None:
    rule = models.SecurityGroupRule()
    rule.ParseFromString(b"\x1a\x03\x50\xbb\x03")
    assert list(rule.ports) == [80, 443]


def test_desire_task_request_layout() -> None:
    request = models.DesireTaskRequest(
        task_guid="g",
        domain="d",
        task_definition=models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="/bin/true", user="root")),
        ),
    )
    run = b"\x0a\x09/bin/true" + b"\x32\x04root"
    action = b"\x1a" + bytes([len(run)]) + run
    definition = b"\x0a\x11docker:///busybox" + b"\x1a" + bytes([len(action)]) + action
    expected = b"\x0a" + bytes([len(definition)]) + definition + b"\x12\x01g\x1a\x01d"
    assert request.SerializeToString() == expected


def test_task_fields() -> None:
    task = models.Task(
        task_guid="g",
        created_at=1_795_409_461_123_456_789,
        state=models.Task.Completed,
        failed=True,
        failure_reason=b"\xff",
        rejection_count=2,
    )
    assert task.SerializeToString() == (
        b"\x12\x01g"
        + b"\x20"
        + varint(1_795_409_461_123_456_789)
        + b"\x38\x03"
        + b"\x50\x01"
        + b"\x5a\x01\xff"
        + b"\x60\x02"
    )


def test_resource_limits_oneofs_carry_presence_of_zero() -> None:
    limits = models.ResourceLimits(nofile=0)
    assert limits.HasField("nofile")
    assert limits.SerializeToString() == b"\x08\x00"
    assert models.ResourceLimits().SerializeToString() == b""


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        (models.CompleteTaskRequest, "result", 5),
        (models.CompleteTaskRequest, "failure_reason", 4),
        (models.FailTaskRequest, "failure_reason", 2),
        (models.RejectTaskRequest, "rejection_reason", 2),
        (models.Task, "result", 9),
    ],
)
def test_free_text_accepts_invalid_utf8(message: type, field: str, number: int) -> None:
    """Go sends raw bytes in these `string` fields; taskop's protos declare them `bytes`."""
    decoded = message()
    decoded.ParseFromString(bytes([number << 3 | 2, 2]) + b"\xc3\x28")
    assert getattr(decoded, field) == b"\xc3\x28"


def test_error_type_numbers() -> None:
    assert models.Error.Type.Name(24) == "RunningOnDifferentCell"
    assert models.Error.Type.Value("Timeout") == 31
    assert [models.Task.State.Name(n) for n in range(5)] == [
        "Invalid",
        "Pending",
        "Running",
        "Completed",
        "Resolving",
    ]
