"""/metrics of a running operator after a known set of Tasks, checked by promtool."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskop.bbs import models
from tests.bbsclient import free_port, post, wait_for_ping
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        return str(resp.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_happened_and_pass_promtool(
    operator: OperatorFactory, k8s: Any, namespace: str, promtool: Path
) -> None:
    metrics_port, bbs_port = free_port(), free_port()
    operator.start(
        metrics_port=metrics_port,
        bbs_enabled="true",
        bbs_listen_port=bbs_port,
        bbs_namespace=namespace,
    )
    wait_for_ping(bbs_port)
    tasks = Tasks(k8s, namespace)
    # Each runs for 3 s, so that taskop sees it Running before it completes.
    tasks.create(task_manifest("ok-1", kwok={"message": "a", "duration": "3s"}))
    tasks.create(task_manifest("ok-2", kwok={"message": "b", "duration": "3s"}))
    tasks.create(task_manifest("exits-2", kwok={"exit-code": "2", "duration": "3s"}))
    tasks.create(task_manifest("runs", kwok={"complete": "never"}))
    for name in ("ok-1", "ok-2", "exits-2"):
        tasks.wait_state(name, "Completed")
    tasks.wait_state("runs", "Running")
    unknown = models.TaskByGuidRequest(task_guid="nobody")
    post(bbs_port, "/v1/tasks/get_by_task_guid.r3", unknown)

    def settled() -> dict[Any, float]:
        found = samples(scrape(metrics_port))
        states = {s: found.get(("taskop_tasks", (("state", s),))) for s in ("Completed", "Running")}
        return found if states == {"Completed": 3, "Running": 1} else {}

    found = wait_until(settled, timeout=30, what="the Tasks by state to show in /metrics")
    assert (
        found[("taskop_task_completions_total", (("failed", "false"), ("reason", "Succeeded")))]
        == 2
    )
    assert (
        found[("taskop_task_completions_total", (("failed", "true"), ("reason", "ExitCode")))] == 1
    )
    assert found[("taskop_task_pending_seconds_count", ())] == 4
    assert found[("taskop_task_running_seconds_count", ())] == 3
    assert found[("taskop_tasks", (("state", "Pending"),))] == 0
    assert found[("taskop_reconcile_passes_total", ())] >= 8
    ping = ("taskop_bbs_requests_total", (("error", "none"), ("route", "/v1/ping")))
    assert found[ping] >= 1
    not_found = ("error", "ResourceNotFound"), ("route", "/v1/tasks/get_by_task_guid.r3")
    assert found[("taskop_bbs_requests_total", not_found)] == 1

    text = scrape(metrics_port)
    check = subprocess.run(
        [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
