"""The reconcile core's promises on the real cluster, each scenario triggered as a user would.

At most once (a deleted Job is never re-created), ownership (a Job taskop does not own is never
touched), pods that cannot be created fail fast (Pod Security, ResourceQuota), Pod Security
``restricted`` met by non-root tasks, and namespaces with Tasks that delete cleanly.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


def job_uids(tasks: Tasks) -> set[str]:
    return {j.metadata.uid for j in tasks.jobs()}


def test_kubectl_delete_job_of_a_running_task_fails_it_and_never_runs_it_again(
    operator: OperatorFactory, tasks: Tasks, kubeconfig: str, namespace: str
) -> None:
    operator.start()
    tasks.create(task_manifest("once", kwok={"complete": "never"}))
    tasks.wait_state("once", "Running")
    (first,) = job_uids(tasks)

    kubectl(kubeconfig, "-n", namespace, "delete", "job", "once", "--wait=false")
    status = tasks.wait_state("once", "Completed")

    assert status["failed"] is True
    assert status["failureReason"].startswith("Job once was deleted before the task finished")
    seen: set[str] = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a second Job would appear within a few passes
        seen |= job_uids(tasks)
        time.sleep(0.2)
    assert seen <= {first}, "taskop created a second Job"


def test_a_same_named_job_it_does_not_own_fails_the_task_and_is_never_touched(
    operator: OperatorFactory, tasks: Tasks, namespace: str
) -> None:
    theirs = tasks.batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "clash", "labels": {"app.kubernetes.io/managed-by": "taskop"}},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}],
                    }
                },
            },
        },
    )
    operator.start()
    tasks.create(task_manifest("clash"))

    status = tasks.wait_state("clash", "Completed", timeout=30)
    assert status["failed"] is True
    assert "Job clash exists and is not owned by this Task" in status["failureReason"]

    tasks.patch("clash", {"spec": {"cancelled": True}})  # cancel …
    tasks.custom.delete_namespaced_custom_object(  # … and delete the Task
        "taskop.dev", "v1alpha1", namespace, "tasks", "clash"
    )
    tasks.wait_gone("clash")
    time.sleep(2)
    assert job_uids(tasks) == {theirs.metadata.uid}, "taskop touched a Job it does not own"


def restrict(k8s: client.ApiClient, namespace: str) -> None:
    client.CoreV1Api(k8s).patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )


def as_user(name: str, user: str) -> dict[str, object]:
    manifest = task_manifest(name, kwok={"message": f"ran as {user}"})
    manifest["spec"]["action"]["run"]["user"] = user  # type: ignore[index]
    return manifest


def test_in_a_restricted_namespace_a_non_root_task_succeeds_and_a_root_task_fails_fast(
    operator: OperatorFactory, tasks: Tasks, k8s: client.ApiClient, namespace: str
) -> None:
    restrict(k8s, namespace)
    operator.start()
    tasks.create(as_user("nonroot", "1000"))
    tasks.create(as_user("root", "root"))

    nonroot = tasks.wait_state("nonroot", "Completed", timeout=30)
    assert (nonroot["failed"], nonroot["result"]) == (False, "ran as 1000")
    started = time.monotonic()
    root = tasks.wait_state("root", "Completed", timeout=30)
    assert root["failed"] is True
    assert root["failureReason"].startswith("pod could not be created: ")
    assert 'violates PodSecurity "restricted' in root["failureReason"]
    reasons = {c["type"]: c["reason"] for c in root["conditions"]}
    assert reasons["Failed"] == "PodCreateFailed"
    assert time.monotonic() - started < 30
    wait_until(lambda: len(tasks.jobs()) == 1, timeout=30, what="the refused Task's Job deleted")


def test_a_pod_refused_by_a_resource_quota_fails_the_task_after_the_grace(
    operator: OperatorFactory, tasks: Tasks, k8s: client.ApiClient, namespace: str
) -> None:
    client.CoreV1Api(k8s).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    operator.start(pod_create_grace_period=2)
    tasks.create(task_manifest("quota"))

    status = tasks.wait_state("quota", "Completed", timeout=60)

    assert status["failed"] is True
    assert status["failureReason"].startswith("pod could not be created: ")
    assert "exceeded quota: no-pods" in status["failureReason"]


@pytest.mark.parametrize(
    "watching",
    [
        "one namespace",
        # A cluster-wide operator would reconcile every other test's Tasks too.
        pytest.param("all namespaces", marks=pytest.mark.exclusive),
        "stopped, then started again",
    ],
)
def test_deleting_a_namespace_with_running_and_completed_tasks_finishes(
    operator: OperatorFactory,
    tasks: Tasks,
    k8s: client.ApiClient,
    namespace: str,
    watching: str,
) -> None:
    proc = operator.start(clusterwide=watching == "all namespaces")
    tasks.create(task_manifest("done", kwok={"message": "ok"}))
    for i in range(2):
        tasks.create(task_manifest(f"running-{i}", kwok={"complete": "never"}))
    tasks.wait_state("done", "Completed")
    for i in range(2):
        tasks.wait_state(f"running-{i}", "Running")
    stopped = watching == "stopped, then started again"
    if stopped:
        proc.stop()

    core = client.CoreV1Api(k8s)
    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except client.ApiException as e:
            return e.status == 404
        return False

    if stopped:
        # The running Tasks' Jobs keep the witness finalizer while taskop is down (as pods keep
        # the Job controller's while it is down): the namespace waits, and finishes once taskop
        # is back, though no Task is left in it (docs/install.md#uninstalling).
        jobs = client.BatchV1Api(k8s)
        wait_until(
            lambda: all(
                j.metadata.deletion_timestamp for j in jobs.list_namespaced_job(namespace).items
            )
            and all(tasks.get(n) is None for n in ("done", "running-0", "running-1")),
            timeout=60,
            what="the namespace's Tasks gone and its Jobs being deleted",
        )
        held = {j.metadata.name for j in jobs.list_namespaced_job(namespace).items}
        assert held == {"running-0", "running-1"}
        operator.start()
    wait_until(gone, timeout=90, what=f"namespace {namespace} to finish deleting")


@pytest.mark.parametrize("succeeded_events", [False, True], ids=["default", "succeeded events"])
def test_a_failed_task_has_one_warning_and_a_success_an_event_only_when_asked(
    operator: OperatorFactory,
    tasks: Tasks,
    k8s: client.ApiClient,
    namespace: str,
    succeeded_events: bool,
) -> None:
    operator.start(succeeded_events=str(succeeded_events).lower())
    tasks.create(task_manifest("told", kwok={"message": "ok"}))
    tasks.create(task_manifest("fails", kwok={"exit-code": "2"}))
    tasks.wait_state("told", "Completed")
    tasks.wait_state("fails", "Completed")

    def events(name: str) -> list[tuple[str, str, str]]:
        items = (
            client.CoreV1Api(k8s)
            .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
            .items
        )
        return [(e.type, e.reason, e.message) for e in items if e.involved_object.kind == "Task"]

    wait_until(lambda: events("fails"), timeout=10, what="the failed Task's event")
    assert events("fails") == [("Warning", "Failed", "exit status 2")]
    if succeeded_events:
        wait_until(lambda: events("told"), timeout=10, what="the succeeded Task's event")
        assert events("told") == [("Normal", "Succeeded", "task succeeded")]
    else:
        time.sleep(2)  # the failed Task's Event came; the succeeded one's pass was before it
        assert events("told") == []
