"""Completion callbacks exactly as BBS delivers them, and the convergence path when they fail."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.callbacks import callback_receiver, unused_loopback_url
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


def test_the_receiver_gets_bbs_json_and_the_task_is_deleted_after_delivery(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start()
    with callback_receiver([200]) as receiver:
        spec = {"completionCallbackUrl": receiver.url, "annotation": "<tag & co>", "guid": "CB_1"}
        tasks.create(task_manifest("cb", kwok={"message": "42"}, spec=spec))
        tasks.wait_gone("cb")

    ((headers, body),) = receiver.requests
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert list(payload) == [
        "task_guid",
        "failed",
        "failure_reason",
        "result",
        "annotation",
        "created_at",
    ]
    assert payload["task_guid"] == "CB_1"
    assert (payload["failed"], payload["failure_reason"], payload["result"]) == (False, "", "42")
    assert payload["annotation"] == "<tag & co>"
    assert b"\\u003ctag \\u0026 co\\u003e" in body  # Go's encoding/json escapes <, > and &
    assert isinstance(payload["created_at"], int) and payload["created_at"] > 1_700_000_000 * 10**9


def test_a_failed_task_calls_back_with_its_reason(operator: OperatorFactory, tasks: Tasks) -> None:
    operator.start()
    with callback_receiver([200]) as receiver:
        tasks.create(
            task_manifest(
                "cbfail", kwok={"exit-code": "3"}, spec={"completionCallbackUrl": receiver.url}
            )
        )
        tasks.wait_gone("cbfail")

    payload = json.loads(receiver.requests[0][1])
    assert (payload["failed"], payload["failure_reason"], payload["result"]) == (
        True,
        "exit status 3",
        "",
    )
    assert "annotation" not in payload  # omitted when empty, like Go's omitempty


def test_503_twice_then_200_is_delivered_on_the_third_try(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start()
    with callback_receiver([503, 503, 200]) as receiver:
        tasks.create(task_manifest("retry", spec={"completionCallbackUrl": receiver.url}))
        tasks.wait_gone("retry")

    assert len(receiver.requests) == 3
    assert receiver.requests[0][1] == receiver.requests[2][1]


@pytest.mark.parametrize("status", [400, 404, 500])
def test_any_other_status_counts_as_delivered(
    operator: OperatorFactory, tasks: Tasks, status: int
) -> None:
    operator.start()
    with callback_receiver([status]) as receiver:
        tasks.create(task_manifest("other", spec={"completionCallbackUrl": receiver.url}))
        tasks.wait_gone("other")

    assert len(receiver.requests) == 1


def test_a_receiver_that_is_down_makes_the_task_follow_bbs_convergence(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(kick_task_duration=2, expire_completed_task_duration=8, callback_timeout=1)
    tasks.create(task_manifest("down", spec={"completionCallbackUrl": unused_loopback_url()}))

    # Completed → Resolving (callback attempted, all 3 tries fail) …
    tasks.wait_state("down", "Resolving", timeout=60)
    wait_until(
        lambda: (tasks.status("down").get("callback") or {}).get("lastError"),
        timeout=30,
        what="the failed delivery to be recorded",
    )
    callback = tasks.status("down")["callback"]
    assert callback["attempts"] == 3
    assert "refused" in callback["lastError"].lower() or "connect" in callback["lastError"].lower()
    # … kicked back to Completed after kick_task_duration and called back again (another 3 tries) …
    wait_until(
        lambda: (tasks.status("down").get("callback") or {}).get("attempts", 0) >= 6,
        timeout=30,
        what="a second round of callback attempts after the kick",
    )
    # … and deleted expire_completed_task_duration after it first completed.
    tasks.wait_gone("down", timeout=60)
