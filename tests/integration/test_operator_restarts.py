"""Killing the operator at random moments and restarting it loses no Task, runs none twice."""

from __future__ import annotations

import random
import time

import pytest
from kubernetes import client

from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

TASKS = 30
KILLS = 6


def test_sigkill_at_random_points_loses_nothing_and_creates_one_job_per_task(
    operator: OperatorFactory, k8s: client.ApiClient, namespace: str
) -> None:
    tasks = Tasks(k8s, namespace)
    rng = random.Random(20261123)
    for i in range(TASKS):
        duration = f"{rng.choice([0, 0.5, 1, 2, 3])}s"
        tasks.create(
            task_manifest(f"t{i:02}", kwok={"duration": duration, "message": f"result {i}"})
        )

    job_uids: dict[str, str] = {}
    pods_seen: dict[str, set[str]] = {}

    def record_jobs_and_pods() -> None:
        for job in tasks.jobs():
            first = job_uids.setdefault(job.metadata.name, job.metadata.uid)
            assert first == job.metadata.uid, f"Job {job.metadata.name} was created a second time"
        for pod in tasks.core.list_namespaced_pod(namespace).items:
            pods_seen.setdefault(pod.metadata.labels["job-name"], set()).add(pod.metadata.name)

    def completed() -> int:
        items = tasks.custom.list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", namespace, "tasks"
        )["items"]
        return sum((t.get("status") or {}).get("state") == "Completed" for t in items)

    completed_at_kill = []
    for _ in range(KILLS):
        proc = operator.start()
        deadline = time.monotonic() + rng.uniform(0.3, 2.5)
        while time.monotonic() < deadline:
            record_jobs_and_pods()
            time.sleep(0.1)
        proc.kill()
        completed_at_kill.append(completed())
    operator.start()

    def all_completed() -> bool:
        record_jobs_and_pods()
        items = tasks.custom.list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", namespace, "tasks"
        )["items"]
        return len(items) == TASKS and all(
            (t.get("status") or {}).get("state") == "Completed" for t in items
        )

    wait_until(
        all_completed, timeout=120, what=f"all {TASKS} tasks to complete across {KILLS} kills"
    )

    items = tasks.custom.list_namespaced_custom_object(
        "taskop.dev", "v1alpha1", namespace, "tasks"
    )["items"]
    for task in items:
        name, status = task["metadata"]["name"], task["status"]
        assert (status["failed"], status["result"]) == (False, f"result {int(name[1:])}"), name
    assert any(n < TASKS for n in completed_at_kill), (
        f"every kill came after all work was done: {completed_at_kill}"
    )
    assert len(job_uids) == TASKS
    assert {name: len(pods) for name, pods in pods_seen.items()} == {name: 1 for name in job_uids}
