"""How the API server's refusals are classified: what passes is retried, the rest fails a Task."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from taskop.kube.client import AdmissionUnavailable, Forbidden, Invalid, _raise


def status_body(message: str, causes: list[dict[str, str]] | None = None) -> str:
    return json.dumps(
        {"kind": "Status", "message": message, "reason": "Forbidden", "details": {"causes": causes}}
    )


@pytest.mark.parametrize(
    ("message", "permanent"),
    [
        ('jobs.batch "t" is forbidden: exceeded quota: q, requested: count/jobs.batch=1', True),
        ('admission webhook "deny.example.com" denied the request: no', True),
        (
            'jobs.batch "t" is forbidden: ValidatingAdmissionPolicy "p" with binding "b" denied'
            " request: no",
            True,
        ),
        ('pods "t" is forbidden: violates PodSecurity "restricted:latest"', True),
        (
            'jobs.batch is forbidden: User "system:serviceaccount:x:taskop" cannot create'
            ' resource "jobs" in API group "batch" in the namespace "n"',
            False,
        ),
        (
            'jobs.batch "t" is forbidden: unable to create new content in namespace n because it'
            " is being terminated",
            False,
        ),
    ],
)
def test_a_403_is_permanent_unless_it_passes(message: str, permanent: bool) -> None:
    with pytest.raises(Forbidden) as refused:
        _raise(403, status_body(message), "Forbidden")
    assert refused.value.permanent is permanent
    assert message in str(refused.value)


def test_a_namespace_terminating_cause_passes() -> None:
    body = status_body("forbidden", [{"reason": "NamespaceTerminating", "message": "x"}])
    with pytest.raises(Forbidden) as refused:
        _raise(403, body, "Forbidden")
    assert not refused.value.permanent


def test_a_422_is_invalid() -> None:
    with pytest.raises(Invalid):
        _raise(422, status_body("spec.template: Invalid value"), "Unprocessable Entity")


def test_an_unreachable_webhook_is_admission_unavailable_with_the_api_servers_message() -> None:
    """Kueue's webhooks fail closed: while its manager is down a labelled Job's create is a 500
    naming the webhook. Nothing was made; the same create may pass later."""
    message = (
        'Internal error occurred: failed calling webhook "mjob.kb.io": failed to call webhook:'
        ' Post "https://127.0.0.1:9443/mutate-batch-v1-job?timeout=10s":'
        " connect: connection refused"
    )
    with pytest.raises(AdmissionUnavailable) as refused:
        _raise(500, status_body(message), "Internal Server Error")
    assert str(refused.value) == message


def test_any_other_5xx_stays_a_plain_api_error() -> None:
    with pytest.raises(ApiException) as failed:
        _raise(500, status_body("etcdserver: request timed out"), "Internal Server Error")
    assert not isinstance(failed.value, AdmissionUnavailable)
