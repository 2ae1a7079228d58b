"""Completion callbacks exactly as BBS delivers them, and the convergence path when they fail;
where callbacks may go, and which present taskop's client certificate.

The receivers listen on loopback, which the callback policy refuses by default: the operators of
these tests allow 127.0.0.1 (`LOOPBACK`), except where the refusal is what is tested.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes import client

from taskop.bbs import models
from taskop.domain.callback import REFUSED_DESTINATION, UNREACHABLE
from taskop.domain.names import task_name
from tests.bbscerts import make_certs
from tests.bbsclient import free_port, post, wait_for_ping
from tests.callbacks import callback_receiver, unused_loopback_url
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

LOOPBACK = {"callback_allowed_destinations": "127.0.0.1"}


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


def test_the_receiver_gets_bbs_json_and_the_task_is_deleted_after_delivery(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(**LOOPBACK)
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
    operator.start(**LOOPBACK)
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
    operator.start(**LOOPBACK)
    with callback_receiver([503, 503, 200]) as receiver:
        tasks.create(task_manifest("retry", spec={"completionCallbackUrl": receiver.url}))
        tasks.wait_gone("retry")

    assert len(receiver.requests) == 3
    assert receiver.requests[0][1] == receiver.requests[2][1]


@pytest.mark.parametrize("status", [400, 404, 500])
def test_any_other_status_counts_as_delivered(
    operator: OperatorFactory, tasks: Tasks, status: int
) -> None:
    operator.start(**LOOPBACK)
    with callback_receiver([status]) as receiver:
        tasks.create(task_manifest("other", spec={"completionCallbackUrl": receiver.url}))
        tasks.wait_gone("other")

    assert len(receiver.requests) == 1


def test_a_receiver_that_is_down_makes_the_task_follow_bbs_convergence(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    proc = operator.start(
        kick_task_duration=2, expire_completed_task_duration=8, callback_timeout=1, **LOOPBACK
    )
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
    # The Task's status does not say why (a closed port reads as a filtered one); the log does.
    assert callback["lastError"] == UNREACHABLE
    assert "Cannot connect" in proc.logs()
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
    """A kubectl Task presents taskop's certificate when its domain's profile says all."""
    certs = make_certs(tmp_path / "certs")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("domains:\n  trusted: {callbackClientCertificate: all}\n")
    operator.start(
        callback_tls_cert_file=certs.client_cert,
        callback_tls_key_file=certs.client_key,
        callback_tls_ca_file=certs.ca,
        domain_profiles_file=profiles,
        **LOOPBACK,
    )
    with callback_receiver([200], tls=certs) as receiver:
        assert receiver.url.startswith("https://")
        spec = {"completionCallbackUrl": receiver.url, "domain": "trusted"}
        tasks.create(task_manifest("mtls", spec=spec))
        tasks.wait_gone("mtls")

    payload = json.loads(receiver.requests[0][1])
    assert (payload["failed"], payload["failure_reason"]) == (False, "")


def refused_handshake(logs: str) -> bool:
    """TLS 1.3: the server refuses the missing certificate after the client's handshake, so the
    client sees the server's alert or, when the connection is torn down first, a reset; on
    uvloop's TLS transport, while writing the body ("Can not write request body", with the alert
    or the reset as its cause when there is one)."""
    return any(
        sign in logs
        for sign in ("certificate required", "reset by peer", "Can not write request body")
    )


def test_without_a_client_certificate_the_receiver_refuses_and_the_failure_is_recorded(
    operator: OperatorFactory, tasks: Tasks, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "certs")
    proc = operator.start(
        callback_tls_ca_file=certs.ca, callback_timeout=2, kick_task_duration=600, **LOOPBACK
    )
    with callback_receiver([200], tls=certs) as receiver:
        tasks.create(task_manifest("nocert", spec={"completionCallbackUrl": receiver.url}))
        error = wait_until(
            lambda: (tasks.status("nocert").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the failed delivery to be recorded",
        )

    assert receiver.requests == []
    assert error == UNREACHABLE  # the status says no more, the log has the cause
    logs = proc.logs()
    assert refused_handshake(logs), logs[-3000:]
    assert tasks.status("nocert")["state"] == "Resolving"


def test_a_callback_server_taskop_does_not_trust_fails_with_the_tls_error(
    operator: OperatorFactory, tasks: Tasks, tmp_path: Path
) -> None:
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "other")  # taskop trusts another CA than the server's
    proc = operator.start(
        callback_tls_cert_file=certs.client_cert,
        callback_tls_key_file=certs.client_key,
        callback_tls_ca_file=other.ca,
        callback_timeout=2,
        kick_task_duration=600,
        **LOOPBACK,
    )
    with callback_receiver([200], tls=certs) as receiver:
        tasks.create(task_manifest("untrusted", spec={"completionCallbackUrl": receiver.url}))
        error = wait_until(
            lambda: (tasks.status("untrusted").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the failed delivery to be recorded",
        )

    assert receiver.requests == []
    assert error == UNREACHABLE
    assert "certificate verify failed" in proc.logs()


# --- where callbacks may go ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_callback_to_the_operators_loopback_is_refused_and_never_arrives(
    operator: OperatorFactory, tasks: Tasks, host: str
) -> None:
    """By default (no setting) a Task creator cannot make taskop POST to its own loopback, by
    address or by a name that resolves there; the status says so in one sentence that does not
    tell what listens there."""
    proc = operator.start(kick_task_duration=600)
    with callback_receiver([200]) as receiver:
        url = receiver.url.replace("127.0.0.1", host)
        tasks.create(task_manifest("inside", spec={"completionCallbackUrl": url}))
        error = wait_until(
            lambda: (tasks.status("inside").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the refusal to be recorded",
        )
        assert error == REFUSED_DESTINATION
        assert tasks.status("inside")["callback"]["attempts"] == 1
        assert tasks.status("inside")["state"] == "Resolving"
        time.sleep(1)
    assert receiver.requests == []
    assert "callback refused by the destination policy" in proc.logs()


# --- which callbacks present taskop's client certificate --------------------------------------


def test_only_the_task_the_bbs_api_desired_presents_taskops_client_certificate(
    operator: OperatorFactory, tasks: Tasks, namespace: str, tmp_path: Path
) -> None:
    """Cloud Controller's receiver requires taskop's client certificate. The Task desired through
    the BBS API gets there; a Task created with kubectl does not, not even with the BBS API's
    label: anyone who may create a Task sets its labels, and its callback URL."""
    certs = make_certs(tmp_path / "certs")
    port = free_port()
    proc = operator.start(
        bbs_enabled="true",
        bbs_listen_port=port,
        bbs_namespace=namespace,
        bbs_external_domains="cells",
        callback_tls_cert_file=certs.client_cert,
        callback_tls_key_file=certs.client_key,
        callback_tls_ca_file=certs.ca,
        callback_timeout=2,
        kick_task_duration=600,
        **LOOPBACK,
    )
    wait_for_ping(port)
    with callback_receiver([200], tls=certs) as receiver:
        forged = task_manifest("forged", spec={"completionCallbackUrl": receiver.url})
        forged["metadata"]["labels"] = {"taskop.dev/api": "bbs"}
        tasks.create(forged)

        definition = models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
            completion_callback_url=receiver.url,
        )
        guid = "desired-by-cc"
        name = task_name(guid)
        desire = models.DesireTaskRequest(
            task_guid=guid, domain="cells", task_definition=definition
        )
        assert post(port, "/v1/tasks/desire.r2", desire).status == 200
        # The BBS API recorded that it desired the Task where only taskop writes: in status.
        assert tasks.status(name)["api"] == "bbs"
        start = models.StartTaskRequest(task_guid=guid, cell_id="cell-a")
        complete = models.CompleteTaskRequest(task_guid=guid, cell_id="cell-a", result=b"done")
        assert post(port, "/v1/tasks/start", start).status == 200
        assert post(port, "/v1/tasks/complete", complete).status == 200
        wait_until(lambda: tasks.get(name) is None, timeout=30, what="the BBS task's callback")

        error = wait_until(
            lambda: (tasks.status("forged").get("callback") or {}).get("lastError"),
            timeout=60,
            what="the kubectl task's failed delivery",
        )
    assert error == UNREACHABLE
    assert "api" not in tasks.status("forged")
    ((_, body),) = receiver.requests  # the BBS task's callback only
    assert json.loads(body)["task_guid"] == guid
    logs = proc.logs()
    assert refused_handshake(logs), logs[-3000:]
