"""A standby replica's BBS door, on the real cluster: under kopf peering the replica that is not
the active one answers every BBS request with the BBS error saying so (event streams: 503),
Ping says unavailable, and it writes nothing: a Task already there stays as it was, none is
made (issue 23, hole 11; the unit test drives a fake API server, this one the real one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskop.bbs import models
from tests.bbsclient import free_port, post
from tests.kubeutil import wait_until
from tests.standby import start_standby
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

GUID = "already-there"
DEFINITION = models.TaskDefinition(
    root_fs="docker:///busybox",
    action=models.Action(run_action=models.RunAction(path="true", user="root")),
)
ROUTES: list[tuple[str, Any, type]] = [
    ("/v1/tasks/desire.r2",
     models.DesireTaskRequest(task_guid="new-guid", domain="d", task_definition=DEFINITION),
     models.TaskLifecycleResponse),
    ("/v1/tasks/list.r3", models.TasksRequest(), models.TasksResponse),
    ("/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid=GUID),
     models.TaskResponse),
    ("/v1/tasks/start", models.StartTaskRequest(task_guid=GUID, cell_id="c"),
     models.StartTaskResponse),
    ("/v1/tasks/complete", models.CompleteTaskRequest(task_guid=GUID, cell_id="c"),
     models.TaskLifecycleResponse),
    ("/v1/tasks/fail", models.FailTaskRequest(task_guid=GUID, failure_reason=b"x"),
     models.TaskLifecycleResponse),
    ("/v1/tasks/cancel", models.TaskGuidRequest(task_guid=GUID), models.TaskLifecycleResponse),
    ("/v1/tasks/resolving", models.TaskGuidRequest(task_guid=GUID), models.TaskLifecycleResponse),
    ("/v1/tasks/delete", models.TaskGuidRequest(task_guid=GUID), models.TaskLifecycleResponse),
    ("/v1/domains/upsert", models.UpsertDomainRequest(domain="d", ttl=60),
     models.UpsertDomainResponse),
]  # fmt: skip


def test_a_standby_refuses_every_bbs_request_and_writes_nothing(
    kubeconfig: str, k8s: Any, namespace: str, crds: None, tmp_path: Path
) -> None:
    tasks = Tasks(k8s, namespace)
    before = tasks.create(task_manifest(GUID))
    port = free_port()
    proc = start_standby(
        kubeconfig,
        k8s,
        namespace,
        tmp_path / "standby.log",
        {"bbs_enabled": "true", "bbs_listen_port": port, "bbs_namespace": namespace},
        metrics_port=free_port(),
    )
    try:

        def ping() -> bool | None:
            try:
                return bool(post(port, "/v1/ping", timeout=5).decode(models.PingResponse).available)
            except OSError:
                return None  # not listening yet

        assert wait_until(lambda: ping() is not None, timeout=30, what="the BBS listener")
        assert ping() is False
        for path, message, response_type in ROUTES:
            answer = post(port, path, message).decode(response_type)
            assert answer.error.message.startswith("this taskop replica is a standby"), (
                path,
                answer,
            )
        assert post(port, "/v1/events/tasks.r1").status == 503

        after = tasks.custom.list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", namespace, "tasks"
        )["items"]
        assert [t["metadata"]["name"] for t in after] == [GUID]
        assert after[0]["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert tasks.jobs() == []
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()[-5000:]
