"""Fuzzing the BBS API with Hypothesis: real request bodies of every route (Cloud Controller's app
tasks among them), mutated field by field or byte by byte, and raw bytes, against the real
operator and API server.

Required of every body: no crash (the operator keeps serving, no traceback), no 5xx, an answer
that parses as the route's response. After them all, no partial writes: every Task, Secret and
NetworkPolicy in the namespace belongs to a desire that was answered without error.

``TASKOP_FUZZ_EXAMPLES`` sets the number of bodies (default 2,000 in `hack/test`; the issue's
100,000-body run is ``TASKOP_FUZZ_EXAMPLES=100000 pytest tests/integration/test_bbs_fuzz.py``).
"""

from __future__ import annotations

import collections
import http.client
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import client

from taskop.domain.names import (
    definition_secret_name,
    files_secret_name,
    registry_secret_name,
    task_name,
)
from tests.bbsclient import PROTOBUF, free_port, wait_for_ping
from tests.bbsfuzz import Body, bodies, desired_guid
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("TASKOP_FUZZ_EXAMPLES", "2000"))
PROFILES = """
domains:
  cf-tasks:
    stacks: {cflinuxfs4: busybox}
    podPidsLimit: 1024
    trustedCertificates: {configMap: cf-system-certificates}
  lenient: {unenforceable: warn, podPidsLimit: 1024}
"""


class Connection:
    """One keep-alive connection to the BBS API, as Cloud Controller keeps one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, data: bytes) -> tuple[int, str, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=data, headers={"Content-Type": PROTOBUF})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                return resp.status, resp.getheader("Content-Type", ""), body
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()  # the server may close a connection after an error answer
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.mark.timeout(120 + EXAMPLES // 20)  # ~6 ms a body here; room for a slower machine
def test_fuzzed_bodies_never_crash_never_5xx_never_leave_partial_writes(
    operator: OperatorFactory, k8s: Any, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cf-system-certificates"}, "data": {"ca.crt": "x"}}
    )
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    port = free_port()
    proc = operator.start(
        bbs_enabled="true",
        bbs_listen_port=port,
        bbs_namespace=namespace,
        bbs_external_domains="cells",
        domain_profiles_file=profiles,
        callback_attempts=1,
        callback_timeout=1,
    )
    wait_for_ping(port)
    conn = Connection(port)
    stats: collections.Counter[str] = collections.Counter()
    accepted: set[str] = set()
    started = time.monotonic()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies())
    def one(body: Body) -> None:
        status, content_type, data = conn.post(body.route.path, body.data)
        stats["bodies"] += 1
        stats[f"{body.how} {status}"] += 1
        assert status < 500, (body, status, data[:300])
        if status != 200:
            return
        assert content_type == PROTOBUF, (body, content_type)
        response = body.route.response.FromString(data)  # it parses, or this raises
        has_error = "error" in response.DESCRIPTOR.fields_by_name and response.HasField("error")
        if body.route.path == "/v1/tasks/desire.r2":
            if not has_error:
                guid = desired_guid(body)
                assert guid is not None
                accepted.add(guid)
                stats["desires accepted"] += 1
            else:
                stats["desires refused"] += 1

    try:
        one()
    finally:
        conn.conn.close()
    elapsed = time.monotonic() - started

    assert proc.proc.poll() is None, "the operator exited:\n" + proc.logs()[-5000:]
    assert "Traceback" not in proc.logs(), proc.logs()[-5000:]
    # No partial writes: nothing of a refused desire is left (Secrets are created right after
    # their Task; NetworkPolicies by the reconciler, for Tasks that exist).
    ours = {task_name(g) for g in accepted}
    tasks = Tasks(k8s, namespace).custom.list_namespaced_custom_object(
        "taskop.dev", "v1alpha1", namespace, "tasks"
    )["items"]
    assert {t["metadata"]["name"] for t in tasks} <= ours
    allowed = {
        make(n)
        for n in ours
        for make in (registry_secret_name, files_secret_name, definition_secret_name)
    }

    def strays() -> set[str]:
        return {s.metadata.name for s in core.list_namespaced_secret(namespace).items} - allowed

    # A desire refused after its Task and a first Secret were made deletes the Task; the garbage
    # collector then deletes what the Task owned (at its own pace, slower on a busy cluster).
    wait_until(lambda: not strays(), timeout=60, what="no Secret of a refused desire left")

    def stray_policies() -> set[str]:
        # The reconciler may make a Task's NetworkPolicy before the desire is refused and its
        # Task deleted: the garbage collector deletes it too, at its own pace.
        policies = client.NetworkingV1Api(k8s).list_namespaced_network_policy(namespace).items
        return {p.metadata.name for p in policies} - ours

    wait_until(lambda: not stray_policies(), timeout=60, what="no policy of a refused desire")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
    print(f"\nBBS fuzz: {summary}; {elapsed:.0f}s; {len(tasks)} Tasks left, all accepted ones")
    assert stats["bodies"] >= EXAMPLES
