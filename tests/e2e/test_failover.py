"""Two replicas with kopf peering (the chart's replicaCount: 2): the active one is killed (SIGKILL,
as a force-deleted pod) while 100 Tasks run. The standby takes over once the dead one's peering
lease lapses (kopf's 60 s lifetime), no Task is lost or run twice, and the BBS API answers from
the new active replica, reads following writes.

Run as processes: two operator pods on the local cluster's one real node would share its host
network and ports (hack/local-values.yaml), so the chart's two-replica Deployment cannot run
there.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from taskop.bbs import models
from taskop.domain.names import task_name
from tests.bbsclient import free_port, post
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorProcess
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

TAKEOVER_LIMIT = 120.0
"""Seconds: kopf's peering lifetime (60 s) for the dead replica's lease, plus its own checks."""


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def test_the_standby_takes_over_when_the_active_replica_is_killed_during_100_tasks(
    kubeconfig: str, namespace: str, chart_crds: None, k8s: Any, tmp_path: Path
) -> None:
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "taskop"}},
    )
    ports = [(free_port(), free_port()) for _ in range(2)]  # (BBS, metrics) of each replica
    procs = [
        OperatorProcess(
            kubeconfig,
            namespace,
            tmp_path / f"replica{i}.log",
            {
                "bbs_enabled": "true",
                "bbs_listen_port": str(bbs),
                "bbs_namespace": namespace,
                "metrics_port": str(metrics),
            },
            extra_args=["--peering=taskop", "--log-format=plain"],
        )
        for i, (bbs, metrics) in enumerate(ports)
    ]
    try:

        def the_active() -> int | None:
            ready = [i for i, (_, metrics) in enumerate(ports) if readyz(metrics) == 200]
            return ready[0] if len(ready) == 1 else None

        active = (
            wait_until(
                lambda: (i := the_active()) is not None and (i + 1),
                timeout=90,
                what="one ready replica",
            )
            - 1
        )
        standby = 1 - active
        tasks = Tasks(k8s, namespace)
        names = [f"t{i:03}" for i in range(100)]
        for name in names:
            tasks.create(task_manifest(name, kwok={"duration": "15s", "message": f"ran {name}"}))
        wait_until(
            lambda: sum(tasks.status(n).get("state") == "Running" for n in names) >= 30,
            timeout=120,
            what="Tasks in flight",
        )

        procs[active].kill()
        killed = time.monotonic()
        wait_until(
            lambda: readyz(ports[standby][1]) == 200,
            timeout=TAKEOVER_LIMIT,
            what="the standby to take over",
        )
        takeover = time.monotonic() - killed
        print(f"\ntakeover after the active replica was killed: {takeover:.1f}s")

        # The BBS API answers from the new active replica, and a read follows a write there.
        bbs = ports[standby][0]
        guid = "after-failover"
        definition = models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
        )
        desired = post(
            bbs,
            "/v1/tasks/desire.r2",
            models.DesireTaskRequest(task_guid=guid, domain="d", task_definition=definition),
        ).decode(models.TaskLifecycleResponse)
        assert not desired.HasField("error"), desired.error
        read = post(
            bbs, "/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid=guid)
        ).decode(models.TaskResponse)
        assert not read.HasField("error") and read.task.task_guid == guid
        assert tasks.get(task_name(guid)) is not None

        tasks.each_ran_once(names, result=lambda name: f"ran {name}")
    finally:
        for proc in procs:
            proc.stop()
    assert "Traceback" not in "".join(p.logs() for p in procs)
