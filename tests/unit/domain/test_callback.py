from __future__ import annotations

import json

import pytest

from taskop.domain.callback import (
    CallbackVerdict,
    callback_body,
    classify_callback,
    go_json_string,
)
from taskop.domain.lifecycle import TaskRecord
from taskop.domain.states import TaskState

REC = TaskRecord(
    guid="task-1",
    domain="d",
    state=TaskState.COMPLETED,
    result="the result",
    failed=False,
    created_at=1_795_416_661_123_456_789,
)


def test_body_exact_bytes() -> None:
    assert callback_body(REC, "") == (
        b'{"task_guid":"task-1","failed":false,"failure_reason":"","result":"the result",'
        b'"created_at":1795416661123456789}'
    )


def test_body_with_annotation_and_failure() -> None:
    rec = REC.replace(failed=True, failure_reason="exit status 1", result="")
    assert callback_body(rec, "note") == (
        b'{"task_guid":"task-1","failed":true,"failure_reason":"exit status 1","result":"",'
        b'"annotation":"note","created_at":1795416661123456789}'
    )


def test_body_is_json() -> None:
    rec = REC.replace(result='<a href="x">&</a>\n\u2028é😀')
    decoded = json.loads(callback_body(rec, "<>"))
    assert decoded["result"] == rec.result
    assert decoded["annotation"] == "<>"


@pytest.mark.parametrize(
    ("text", "go"),
    [
        ("plain", '"plain"'),
        ("<b>&amp;</b>", '"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e"'),
        ('quote " backslash \\', '"quote \\" backslash \\\\"'),
        ("\n\r\t", '"\\n\\r\\t"'),
        ("\b\f", '"\\b\\f"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\x7f", '"\x7f"'),
        ("é€😀", '"é€😀"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        (b"\xff".decode("utf-8", "surrogateescape"), '"\\ufffd"'),
        ("/", '"/"'),
        ("'", '"\'"'),
    ],
)
def test_go_json_string(text: str, go: str) -> None:
    assert go_json_string(text) == go


class ClientConnectionError(Exception):
    """Named like aiohttp's, which is not an OSError."""


class ServerDisconnectedError(ClientConnectionError):
    pass


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (200, None, CallbackVerdict.DELIVERED),
        (204, None, CallbackVerdict.DELIVERED),
        (302, None, CallbackVerdict.GIVE_UP),  # a redirect is not followed: not delivered
        (307, None, CallbackVerdict.GIVE_UP),
        (400, None, CallbackVerdict.DELIVERED),
        (404, None, CallbackVerdict.DELIVERED),
        (500, None, CallbackVerdict.DELIVERED),
        (502, None, CallbackVerdict.DELIVERED),
        (503, None, CallbackVerdict.RETRY),
        (504, None, CallbackVerdict.RETRY),
        (None, TimeoutError(), CallbackVerdict.RETRY),
        (None, ConnectionRefusedError(), CallbackVerdict.RETRY),
        (None, ConnectionResetError(), CallbackVerdict.RETRY),
        (None, OSError("network unreachable"), CallbackVerdict.RETRY),
        (None, ServerDisconnectedError(), CallbackVerdict.RETRY),
        # every failure short of an HTTP answer alike: attempts tell no port's state apart
        (None, ValueError("bad url"), CallbackVerdict.RETRY),
        (None, None, CallbackVerdict.GIVE_UP),
    ],
)
def test_classify(
    status: int | None, error: BaseException | None, verdict: CallbackVerdict
) -> None:
    assert classify_callback(status, error) is verdict
