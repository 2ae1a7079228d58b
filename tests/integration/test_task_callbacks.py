"""Completion callbacks exactly as BBS delivers them, and the convergence path when they fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from tests.bbscerts import make_certs
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


def test_an_https_receiver_requiring_a_client_certificate_gets_the_callback(
    operator: OperatorFactory, tasks: Tasks, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "certs")
    operator.start(
        callback_tls_cert_file=certs.client_cert,
        callback_tls_key_file=certs.client_key,
        callback_tls_ca_file=certs.ca,
    )
    with callback_receiver([200], tls=certs) as receiver:
        assert receiver.url.startswith("https://")
        tasks.create(task_manifest("mtls", spec={"completionCallbackUrl": receiver.url}))
        tasks.wait_gone("mtls")

    payload = json.loads(receiver.requests[0][1])
    assert (payload["failed"], payload["failure_reason"]) == (False, "")


def test_without_a_client_certificate_the_receiver_refuses_and_the_failure_is_recorded(
    operator: OperatorFactory, tasks: Tasks, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "certs")
    operator.start(callback_tls_ca_file=certs.ca, callback_timeout=2, kick_task_duration=600)
    with callback_receiver([200], tls=certs) as receiver:
        tasks.create(task_manifest("nocert", spec={"completionCallbackUrl": receiver.url}))
        error = wait_until(
            lambda: (tasks.status("nocert").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the failed delivery to be recorded",
        )

    assert receiver.requests == []
    # TLS 1.3: the server refuses the missing certificate after the client's handshake, so the
    # client sees the server's alert or, when the connection is torn down first, a reset.
    assert "certificate required" in error or "reset by peer" in error, error
    assert tasks.status("nocert")["state"] == "Resolving"


def test_a_callback_server_taskop_does_not_trust_fails_with_the_tls_error(
    operator: OperatorFactory, tasks: Tasks, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")  # taskop trusts another CA than the server's
    operator.start(
        callback_tls_cert_file=certs.client_cert,
        callback_tls_key_file=certs.client_key,
        callback_tls_ca_file=other.ca,
        callback_timeout=2,
        kick_task_duration=600,
    )
    with callback_receiver([200], tls=certs) as receiver:
        tasks.create(task_manifest("untrusted", spec={"completionCallbackUrl": receiver.url}))
        error = wait_until(
            lambda: (tasks.status("untrusted").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the failed delivery to be recorded",
        )

    assert receiver.requests == []
    assert "certificate verify failed" in error, error
