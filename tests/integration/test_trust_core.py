"""The reconcile core's holes of "trust, round two", each closed on the real cluster:

- a create refused for good by admission (a quota's 403) fails the Task with the API server's
  words, instead of retrying for ever with an empty status (hole 9);
- a Job left with taskop's witness finalizer by a crash, whose Task was deleted while taskop was
  down, is released even when no Task is left in scope (hole 12);
- a Job someone else made, owned by the Task but not its Job, never stands in for it (hole 13);
- a Task whose pod started while taskop was down, now past the pending expiry, is not expired as
  "not started" by a restarted operator (hole 7);
- a Task larger than the operator holds fails saying why, and costs the operator a stub (hole 6).
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from taskop.domain.decide import TASK_NAME_ANNOTATION, WITNESS_FINALIZER
from taskop.domain.jobs import MANAGED_BY
from taskop.domain.names import job_name
from tests.apiproxy import ApiProxy, a_list
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorFactory
from tests.standby import KOPF_CRDS, PEERING
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


@pytest.mark.parametrize(
    ("refused", "quota", "spec"),
    [
        ("Job", "count/jobs.batch", {}),
        (
            "NetworkPolicy",
            "count/networkpolicies.networking.k8s.io",
            {"egressRules": [{"protocol": "tcp", "destinations": ["10.0.0.0/8"], "ports": [443]}]},
        ),
    ],
)
def test_a_create_a_quota_refuses_fails_the_task_with_the_api_servers_message(
    operator: OperatorFactory, tasks: Tasks, namespace: str, refused: str, quota: str, spec: Any
) -> None:
    tasks.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "none"}, "spec": {"hard": {quota: "0"}}}
    )
    wait_until(  # quota admission needs the quota's status first
        lambda: tasks.core.read_namespaced_resource_quota("none", namespace).status.hard,
        timeout=30,
        what="the quota's status",
    )
    operator.start()
    tasks.create(task_manifest("quota", spec=spec))

    status = tasks.wait_state("quota", "Completed", timeout=60)

    assert status["failed"] is True
    assert status["failureReason"].startswith(f"Kubernetes refused its {refused}: ")
    assert "exceeded quota: none" in status["failureReason"]
    completed = next(c for c in status["conditions"] if c["type"] == "Completed")
    assert completed["reason"] == "CreateRefused"
    assert not tasks.jobs()


def test_a_crashed_creates_job_is_released_when_its_task_went_while_taskop_was_down(
    operator: OperatorFactory, tasks: Tasks, namespace: str
) -> None:
    """What a crash between the Job's create and its witness leaves, then the Task deleted while
    no operator ran: a Job kept by taskop's finalizer, and no Task left in the namespace."""
    task = tasks.create(task_manifest("gone"))
    tasks.batch.create_namespaced_job(
        namespace,
        {
            "metadata": {
                "name": job_name("gone"),
                "labels": dict(MANAGED_BY),
                "finalizers": [WITNESS_FINALIZER],
                "ownerReferences": [
                    {
                        "apiVersion": "taskop.dev/v1alpha1",
                        "kind": "Task",
                        "name": "gone",
                        "uid": task["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "task", "image": "busybox"}],
                    }
                },
            },
        },
    )
    tasks.custom.delete_namespaced_custom_object(
        "taskop.dev", "v1alpha1", namespace, "tasks", "gone"
    )
    tasks.wait_gone("gone")
    wait_until(  # the garbage collector marks the Job deleted; the finalizer keeps it
        lambda: (
            tasks.batch.read_namespaced_job(job_name("gone"), namespace).metadata.deletion_timestamp
        ),
        timeout=60,
        what="the garbage collector to delete the orphaned Job",
    )

    operator.start()

    wait_until(
        lambda: not tasks.jobs(),
        timeout=60,
        what="taskop to release the finalizer of a Job whose Task is gone",
    )


def test_a_job_someone_else_made_for_the_task_never_stands_in_for_its_job(
    operator: OperatorFactory, tasks: Tasks, namespace: str
) -> None:
    operator.start()
    task = tasks.create(task_manifest("real", kwok={"complete": "never"}))
    tasks.wait_state("real", "Running")
    forged = json.dumps({"taskop": "executor/v1", "failed": False, "result": "forged"})
    tasks.batch.create_namespaced_job(
        namespace,
        {
            "metadata": {
                "name": "forged",
                "labels": dict(MANAGED_BY),
                "ownerReferences": [
                    {
                        "apiVersion": "taskop.dev/v1alpha1",
                        "kind": "Task",
                        "name": "real",
                        "uid": task["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "template": {
                    "metadata": {
                        "labels": dict(MANAGED_BY),
                        "annotations": {
                            TASK_NAME_ANNOTATION: "real",
                            "kwok.taskop.dev/message": forged,
                        },
                    },
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "task", "image": "busybox"}],
                    },
                }
            },
        },
    )
    wait_until(
        lambda: (tasks.batch.read_namespaced_job("forged", namespace).status.succeeded or 0) > 0,
        timeout=60,
        what="the forged Job to succeed",
    )
    time.sleep(5)  # passes enough for the forged Job's events to have been seen

    status = tasks.status("real")
    assert status["state"] == "Running", status
    assert status.get("result", "") != "forged"


def test_a_pod_that_started_while_taskop_was_down_is_not_expired_as_not_started(
    operator: OperatorFactory,
    tasks: Tasks,
    namespace: str,
    kubeconfig: str,
    tmp_path: Path,
) -> None:
    first = operator.start(expire_pending_task_duration=20)
    created = time.monotonic()
    tasks.create(task_manifest("late", kwok={"start-delay": "6s", "complete": "never"}))
    wait_until(lambda: tasks.jobs(), timeout=30, what="the Job")
    first.kill()
    assert tasks.status("late").get("state") in (None, "Pending")  # nothing to say yet

    def pod_running() -> bool:
        pods = tasks.core.list_namespaced_pod(namespace, label_selector="job-name=late").items
        return any(p.status.phase == "Running" for p in pods)

    wait_until(pod_running, timeout=60, what="the pod to start while taskop is down")
    time.sleep(max(0.0, 22 - (time.monotonic() - created)))  # past the pending expiry
    job_uid = tasks.batch.read_namespaced_job("late", namespace).metadata.uid

    # The restarted operator's first LIST of Jobs and of pods arrives 8 s late, its Tasks at
    # once: a pass that ran before those caches were filled would see a Pending Task past its
    # expiry with no pod, and expire the running Job as "not started". (Without the proxy this
    # order is a race that the coalescing delay usually hides.)
    proxy = ApiProxy(kubeconfig, tmp_path / "proxy").start()
    try:
        for path in (
            f"/apis/batch/v1/namespaces/{namespace}/jobs",
            f"/api/v1/namespaces/{namespace}/pods",
        ):
            proxy.add("GET", a_list(path), delay=8, times=1)
        operator.start(expire_pending_task_duration=20, kubeconfig=proxy.kubeconfig())

        status = tasks.wait_state("late", "Running", timeout=60)
        assert not status.get("failed")
        assert tasks.batch.read_namespaced_job("late", namespace).metadata.uid == job_uid
        assert all(rule.hits == 1 for rule in proxy.rules)  # both lists were held
    finally:
        operator.stop_all()
        proxy.stop()


def test_a_standby_that_becomes_active_never_acts_on_what_it_saw_before_its_peer_worked(
    operator: OperatorFactory,
    tasks: Tasks,
    namespace: str,
    kubeconfig: str,
    k8s: client.ApiClient,
    tmp_path: Path,
) -> None:
    """Hole 8. Replica A sees the Task before its Job exists, then stands by while another
    replica runs it: the Job is made, witnessed, deleted by a user, and the Task fails saying
    so. When A becomes active again, what it saw is stale: it must list the Tasks anew before
    any pass, or it makes a second Job for a Task whose first one may have run."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(KOPF_CRDS))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    peerings = client.CustomObjectsApi(k8s)
    peerings.create_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
    )  # fmt: skip
    proxy = ApiProxy(kubeconfig, tmp_path / "proxy").start()
    try:
        # A can make no Job yet: it holds the Task as it first saw it, unwitnessed.
        refused = proxy.add("POST", f"^/apis/batch/v1/namespaces/{namespace}/jobs", status=503)
        a = operator.start(kubeconfig=proxy.kubeconfig(), extra_args=[f"--peering={PEERING}"])
        tasks.create(task_manifest("once", kwok={"start-delay": "1s", "complete": "never"}))
        wait_until(lambda: refused.hits >= 1, timeout=60, what="replica A to try the Job")

        # A peer of a higher priority appears: A stands by.
        now = datetime.datetime.now(datetime.UTC).isoformat()
        peer = {"the-other-replica": {"priority": 2**31, "lifetime": 3600, "lastseen": now}}
        peerings.patch_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", PEERING, {"status": peer}
        )
        wait_until(lambda: "standing by" in a.logs(), timeout=30, what="replica A to stand by")

        # The other replica (B, on its own) runs the Task; a user deletes its Job.
        b = operator.start()
        wait_until(lambda: tasks.status("once").get("jobName"), timeout=60, what="B's witness")
        tasks.batch.delete_namespaced_job("once", namespace, propagation_policy="Background")
        failed = tasks.wait_state("once", "Completed", timeout=60)
        assert failed["failed"] is True
        b.stop()
        wait_until(lambda: not tasks.jobs(), timeout=60, what="the deleted Job to be gone")

        # A becomes active; its new list of Tasks arrives 8 s late. No pass may act before it.
        proxy.clear()
        tasks_path = f"/apis/taskop.dev/v1alpha1/namespaces/{namespace}/tasks"
        relist = proxy.add("GET", a_list(tasks_path), delay=8, times=2)  # kopf's and its own
        creates = proxy.add("POST", f"^/apis/batch/v1/namespaces/{namespace}/jobs")  # counted
        peerings.patch_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", PEERING,
            {"status": {"the-other-replica": None}},
        )  # fmt: skip
        wait_until(lambda: relist.hits >= 1, timeout=30, what="replica A to list its Tasks anew")
        time.sleep(15)  # the late list, then A's passes

        # (A second Job would be stopped once A sees the Task failed: count the creates.)
        assert creates.hits == 0, "replica A made a second Job from what it saw before"
        assert tasks.jobs() == []
        assert tasks.status("once") == failed
    finally:
        operator.stop_all()
        proxy.stop()


def test_a_task_larger_than_the_operator_holds_fails_saying_why(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(max_task_bytes=16384)
    args = ["-c", "echo hello world > /tmp/result", *(["x" * 8000] * 4)]
    tasks.create(task_manifest("big", spec={"action": {"run": {"path": "sh", "args": args}}}))
    tasks.create(task_manifest("small"))

    big = tasks.wait_state("big", "Completed")
    assert big["failed"] is True
    assert big["failureReason"].startswith("invalid spec: the Task takes ")
    assert "more than the 16,384 the operator holds per Task" in big["failureReason"]
    assert tasks.wait_state("small", "Completed")["failed"] is False
    assert [j.metadata.name for j in tasks.jobs()] == ["small"]
