"""Ping and the readiness probe say the truth: false while the BBS API's watch of the Tasks is
broken (its view may be stale), true again once it has listed them afresh.

The API server is killed for real, on a second, private cluster (other ports and state
directory), so the shared session cluster is not disturbed.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from taskop.bbs import models
from tests.bbsclient import free_port, post, wait_for_ping
from tests.conftest import ROOT, cluster_tool, private_cluster_ports
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorProcess

pytestmark = pytest.mark.cluster


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def available(port: int) -> bool:
    return bool(post(port, "/v1/ping", timeout=5).decode(models.PingResponse).available)


def test_ping_and_readiness_are_false_while_the_task_watch_is_broken(tmp_path: Path) -> None:
    env = {
        **private_cluster_ports(),
        "TASKOP_FAKE_NODES": "1",
        "TASKOP_CLUSTER_DIR": str(tmp_path / "cluster"),
    }
    cluster_tool("up", "--no-build", env=env)
    proc = None
    try:
        kubeconfig = cluster_tool("kubeconfig", env=env).strip()
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(ROOT / "crds"))
        # Right after the apply the CRD may have no conditions at all, which `kubectl wait`
        # reports as an error rather than waiting: ask again until it is Established.
        wait_until(
            lambda: (
                kubectl(
                    kubeconfig,
                    *(
                        "wait",
                        "--for=condition=Established",
                        "--timeout=10s",
                        "crd/tasks.taskop.dev",
                    ),
                    check=False,
                ).returncode
                == 0
            ),
            timeout=60,
            what="the CRD to be established",
        )
        bbs_port, metrics_port = free_port(), free_port()
        proc = OperatorProcess(
            kubeconfig,
            "default",
            tmp_path / "operator.log",
            {
                "bbs_enabled": "true",
                "bbs_listen_port": str(bbs_port),
                "bbs_namespace": "default",
                "metrics_port": str(metrics_port),
            },
        )
        wait_for_ping(bbs_port)
        assert readyz(metrics_port) == (200, "ready\n")

        pid = int((tmp_path / "cluster" / "run" / "kube-apiserver.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not available(bbs_port), timeout=60, what="Ping to turn false")
        code, text = readyz(metrics_port)
        assert code == 503 and "the view of the Tasks is not synced" in text, (code, text)
        response = post(
            bbs_port, "/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid="g")
        ).decode(models.TaskResponse)
        assert response.error.type == models.Error.UnknownError
        assert "not synced with Kubernetes" in response.error.message

        cluster_tool("up", "--no-build", env=env)  # the API server again, same state
        wait_until(lambda: available(bbs_port), timeout=90, what="Ping to turn true again")
        assert readyz(metrics_port) == (200, "ready\n")
    finally:
        if proc is not None:
            proc.stop()
            assert "Traceback" not in proc.logs(), proc.logs()[-4000:]
        cluster_tool("down", env=env)
