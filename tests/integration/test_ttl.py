"""spec.ttlSecondsAfterFinished and the operator's default: a finished Task goes, with its Job and
pod, that long after it completed; a Task without any TTL stays."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from taskop.domain.timefmt import parse_ns
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

SLACK = 15.0
"""Seconds past the TTL within which everything is gone: the deletion pass, then the garbage
collector (the Job, then its pod)."""


def gone_with_what_it_owns(k8s: Any, tasks: Tasks, namespace: str, name: str) -> float:
    """Waits until the Task, its Job and its pod are gone; returns when (time.time())."""
    batch, core = client.BatchV1Api(k8s), client.CoreV1Api(k8s)

    def gone() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=f"taskop.dev/task={name}")
        jobs = batch.list_namespaced_job(namespace, label_selector=f"taskop.dev/task={name}")
        return tasks.get(name) is None and not jobs.items and not pods.items

    wait_until(gone, timeout=120, what=f"{name}, its Job and its pod to be gone")
    return time.time()


def test_finished_tasks_go_after_their_ttl_and_without_one_stay(
    operator: OperatorFactory, k8s: Any, namespace: str
) -> None:
    tasks = Tasks(k8s, namespace)
    proc = operator.start()
    tasks.create(task_manifest("short", kwok={"message": "a"}, spec={"ttlSecondsAfterFinished": 3}))
    tasks.create(task_manifest("kept", kwok={"message": "b"}))
    completed = parse_ns(tasks.wait_state("short", "Completed")["firstCompletedAt"]) / 1e9
    tasks.wait_state("kept", "Completed")
    # The pod stays until the Task goes, so its logs stay readable.
    core = client.CoreV1Api(k8s)
    assert core.list_namespaced_pod(namespace, label_selector="taskop.dev/task=short").items

    gone_at = gone_with_what_it_owns(k8s, tasks, namespace, "short")
    assert completed + 3 <= gone_at <= completed + 3 + SLACK, gone_at - completed
    time.sleep(3)
    assert tasks.status("kept")["state"] == "Completed"  # no TTL: kept
    proc.stop()

    # The operator's default applies to Tasks without their own TTL.
    operator.start(ttl_seconds_after_finished=5)
    gone_with_what_it_owns(k8s, tasks, namespace, "kept")
