"""`kubectl task` (the kubectl-task entry point) against the local cluster, exit codes included,
run as kubectl runs plugins: ``kubectl task …`` with the plugin on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent  # kubectl (PyPI) and kubectl-task (this package) live here


def kubectl_task(kubeconfig: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubectl"), "task", f"--kubeconfig={kubeconfig}", "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KUBECONFIG": kubeconfig},
    )


def test_result_wait_cancel_describe_and_errors(
    kubeconfig: str, namespace: str, operator: OperatorFactory, k8s: Any
) -> None:
    operator.start()
    tasks = Tasks(k8s, namespace)
    tasks.create(task_manifest("ok", kwok={"message": "42\n", "duration": "2s"}))
    tasks.create(task_manifest("bad", kwok={"exit-code": "3", "duration": "2s"}))
    tasks.create(task_manifest("long", kwok={"complete": "never"}))

    waited = kubectl_task(kubeconfig, namespace, "wait", "ok")
    assert (waited.returncode, waited.stdout) == (0, "task.taskop.dev/ok succeeded\n")
    result = kubectl_task(kubeconfig, namespace, "result", "ok")
    assert (result.returncode, result.stdout) == (0, "42\n")  # verbatim

    failed = kubectl_task(kubeconfig, namespace, "wait", "bad")
    assert failed.returncode == 1
    assert failed.stderr.startswith('task "bad" failed: ') and "3" in failed.stderr
    no_result = kubectl_task(kubeconfig, namespace, "result", "bad")
    assert no_result.returncode == 1 and no_result.stderr.startswith('error: task "bad" failed')

    tasks.wait_state("long", "Running")
    running = kubectl_task(kubeconfig, namespace, "result", "long")
    assert (running.returncode, running.stderr) == (
        1,
        'error: task "long" is Running: no result yet\n',
    )
    timed_out = kubectl_task(kubeconfig, namespace, "wait", "long", "--timeout=2")
    assert timed_out.returncode == 2 and "timed out" in timed_out.stderr
    cancelled = kubectl_task(kubeconfig, namespace, "cancel", "long")
    assert (cancelled.returncode, cancelled.stdout) == (0, "task.taskop.dev/long cancelled\n")
    after = kubectl_task(kubeconfig, namespace, "wait", "long")
    assert (after.returncode, after.stderr) == (1, 'task "long" failed: task was cancelled\n')

    described = kubectl_task(kubeconfig, namespace, "describe", "ok")
    assert described.returncode == 0
    lines = described.stdout.splitlines()
    assert "State:     Completed" in lines and "Failed:    false" in lines
    assert any(line.startswith("Pod:       ok-") for line in lines)
    assert "Conditions:" in lines
    assert any(line.split()[:3] == ["Succeeded", "True", "Succeeded"] for line in lines)

    missing = kubectl_task(kubeconfig, namespace, "result", "nope")
    assert (missing.returncode, missing.stderr) == (
        1,
        'Error from server (NotFound): tasks.taskop.dev "nope" not found\n',
    )


def test_describe_shows_a_callback_url_without_its_credentials_or_query(
    kubeconfig: str, namespace: str, operator: OperatorFactory, k8s: Any
) -> None:
    # Issue 23, hole 4: one redaction rule wherever a URL is printed.
    operator.start()
    tasks = Tasks(k8s, namespace)
    url = "https://user:pa55word@127.0.0.1:1/cb?token=s3cret"
    tasks.create(task_manifest("cb", kwok={"message": "ok"}, spec={"completionCallbackUrl": url}))
    wait_until(lambda: (tasks.status("cb").get("callback") or {}).get("lastError"), timeout=60,
               what="the refused callback's lastError")  # fmt: skip

    described = kubectl_task(kubeconfig, namespace, "describe", "cb")

    assert described.returncode == 0
    assert "Callback:  https://127.0.0.1:1/cb" in described.stdout.splitlines()
    assert "Last error:" in described.stdout
    assert "pa55word" not in described.stdout and "s3cret" not in described.stdout


@pytest.mark.realnode
def test_logs_of_a_real_container(
    kubeconfig: str,
    namespace: str,
    operator: OperatorFactory,
    k8s: Any,
    real_node: str,
    operator_image: str,
) -> None:
    operator.start()
    tasks = Tasks(k8s, namespace)
    spec = {
        "action": {
            "run": {"path": "sh", "args": ["-c", "echo one; echo two >&2; echo ok > /tmp/result"]}
        },
        "podTemplate": {"nodeSelector": REAL_NODE_SELECTOR, "tolerations": [REAL_NODE_TOLERATION]},
    }
    tasks.create(task_manifest("talks", spec=spec))
    assert kubectl_task(kubeconfig, namespace, "wait", "talks").returncode == 0
    logs = kubectl_task(kubeconfig, namespace, "logs", "talks")
    assert logs.returncode == 0
    assert {"one", "two"} <= set(logs.stdout.splitlines())
    followed = kubectl_task(kubeconfig, namespace, "logs", "talks", "-f")
    assert (followed.returncode, followed.stdout) == (0, logs.stdout)
