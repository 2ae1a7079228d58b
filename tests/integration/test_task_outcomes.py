"""A Task runs as a Job and ends with its result, or with a failure reason a user can act on.

kwok's stages play the pod: annotations on the Task (copied to the pod) choose its fate.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


def test_a_task_that_succeeds_ends_completed_with_its_result(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start()
    tasks.create(task_manifest("hello", kwok={"message": "hello world", "duration": "1s"}))

    status = tasks.wait_state("hello", "Completed")

    assert (status["failed"], status["failureReason"], status["result"]) == (
        False,
        "",
        "hello world",
    )
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Completed"] == ("True", "Succeeded")
    assert conditions["Succeeded"] == ("True", "Succeeded")
    (job,) = tasks.jobs()
    assert job.metadata.name == status["jobName"]
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("Task", "hello", True)
    assert job.spec.backoff_limit == 0  # BBS runs a task at most once


def test_a_task_is_running_on_its_node_while_its_pod_runs(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start()
    tasks.create(task_manifest("runs", kwok={"complete": "never"}))

    status = tasks.wait_state("runs", "Running")

    assert status["cellId"].startswith("kwok-node-")
    assert status["podName"].startswith("runs-")


@pytest.mark.parametrize(
    ("kwok", "spec", "reason"),
    [
        pytest.param({"exit-code": "3"}, {}, "exit status 3", id="exit-code"),
        pytest.param({"exit-code": "137", "reason": "OOMKilled"}, {}, "OOMKilled", id="oom-killed"),
        pytest.param(
            {"complete": "never"}, {"timeoutSeconds": 2}, "DeadlineExceeded", id="deadline"
        ),
        pytest.param({"evict": "true"}, {}, "evicted", id="evicted"),
        pytest.param(
            {"message": "x" * 5000}, {}, "result exceeds 4095 bytes", id="result-too-large"
        ),
    ],
)
def test_a_task_that_fails_ends_completed_with_a_reason_to_act_on(
    operator: OperatorFactory,
    tasks: Tasks,
    kwok: dict[str, str],
    spec: dict[str, object],
    reason: str,
) -> None:
    operator.start()
    tasks.create(task_manifest("fails", kwok=kwok, spec=spec))

    status = tasks.wait_state("fails", "Completed")

    assert status["failed"] is True
    assert status["failureReason"].startswith(reason), status["failureReason"]
    assert status["result"] == ""


def test_an_image_that_never_pulls_fails_the_task_after_the_grace_period(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(image_pull_grace_period=3)
    tasks.create(task_manifest("nopull", kwok={"start": "image-pull-failure"}))

    status = tasks.wait_state("nopull", "Completed")

    assert status["failed"] is True
    assert status["failureReason"].startswith("image pull failed"), status["failureReason"]
    assert "not found" in status["failureReason"]


def test_a_task_never_started_fails_after_the_pending_limit(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(expire_pending_task_duration=3)
    tasks.create(task_manifest("stuck", kwok={"start": "never"}))

    status = tasks.wait_state("stuck", "Completed")

    assert (status["failed"], status["failureReason"]) == (True, "not started within time limit")
    # The same pass deletes the Job, right after that status write.
    wait_until(
        lambda: all(j.metadata.deletion_timestamp for j in tasks.jobs()),
        timeout=10,
        what="the expired Task's Job to be deleted",
    )


def test_cancelling_a_running_task_deletes_its_job_and_fails_it(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start()
    tasks.create(task_manifest("cancel-me", kwok={"complete": "never"}))
    tasks.wait_state("cancel-me", "Running")

    tasks.patch("cancel-me", {"spec": {"cancelled": True}})
    status = tasks.wait_state("cancel-me", "Completed")

    assert (status["failed"], status["failureReason"]) == (True, "task was cancelled")
    conditions = {c["type"]: c["reason"] for c in status["conditions"]}
    assert conditions["Completed"] == "Cancelled"
    wait_until(
        lambda: tasks.jobs() == [], timeout=30, what="the cancelled Task's Job to be deleted"
    )


def test_deleting_a_task_deletes_its_job(operator: OperatorFactory, tasks: Tasks) -> None:
    operator.start()
    tasks.create(task_manifest("bye", kwok={"complete": "never"}))
    tasks.wait_state("bye", "Running")

    tasks.custom.delete_namespaced_custom_object(
        "taskop.dev", "v1alpha1", tasks.namespace, "tasks", "bye"
    )

    tasks.wait_gone("bye")
    wait_until(lambda: tasks.jobs() == [], timeout=30, what="the Job to be deleted")


def test_bbs_tasks_nobody_resolves_expire_but_kubectl_tasks_are_kept(
    operator: OperatorFactory, tasks: Tasks
) -> None:
    operator.start(expire_completed_task_duration=3)
    bbs_task = task_manifest("expires")
    bbs_task["metadata"]["labels"] = {"taskop.dev/api": "bbs"}
    tasks.create(bbs_task)
    tasks.create(task_manifest("kept"))
    tasks.wait_state("expires", "Completed")
    tasks.wait_state("kept", "Completed")

    tasks.wait_gone("expires", timeout=30)
    time.sleep(3)
    assert tasks.status("kept")["state"] == "Completed"


@pytest.mark.parametrize("taskop", ["running", "down"])
def test_a_task_whose_node_is_deleted_fails_as_cell_disappeared(
    operator: OperatorFactory, tasks: Tasks, namespace: str, taskop: str
) -> None:
    """Deleted while taskop runs, its watch reports it; deleted while taskop is down, no watch
    ever will: the node list taskop starts with does not name it, and the Task, Running there,
    is older than that list."""
    node = f"kwok-{namespace}"[:63]
    node_body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": node, "taskop.dev/test-node": node},
        },
        # Tainted, so that no other test's pod lands on this node (tests run side by side).
        "spec": {"taints": [{"key": "taskop.dev/test-node", "effect": "NoSchedule"}]},
    }
    tasks.core.create_node(node_body)
    try:
        proc = operator.start()
        spec = {
            "podTemplate": {
                "nodeSelector": {"taskop.dev/test-node": node},
                "tolerations": [
                    {"key": "taskop.dev/test-node", "operator": "Exists", "effect": "NoSchedule"}
                ],
            }
        }
        tasks.create(task_manifest("lost", kwok={"complete": "never"}, spec=spec))
        assert tasks.wait_state("lost", "Running")["cellId"] == node

        if taskop == "down":
            proc.kill()
        tasks.core.delete_node(node)
        if taskop == "down":
            operator.start()
        status = tasks.wait_state("lost", "Completed", timeout=30)
    finally:
        try:
            tasks.core.delete_node(node)
        except client.ApiException as e:
            assert e.status == 404

    assert (status["failed"], status["failureReason"]) == (
        True,
        "cell disappeared before completion",
    )
    assert status["cellId"] == node  # BBS keeps the cell id here
    conditions = {c["type"]: c["reason"] for c in status["conditions"]}
    assert conditions["Completed"] == "CellDisappeared"


UNSCHEDULABLE_PROFILES = """
domains:
  quick: {unschedulableGracePeriod: 3}
"""


@pytest.mark.parametrize(
    ("spec", "reason", "scheduler_says"),
    [
        pytest.param(
            {"podTemplate": {"nodeSelector": {"taskop.dev/no-such-node": "anywhere"}}},
            "found no compatible cell: ",
            "didn't match Pod's node affinity/selector",
            id="no-node-matches",
        ),
        pytest.param(
            {"memoryMb": 2_000_000},  # the kwok nodes have 1Ti, the real node less
            "insufficient resources: memory: ",
            "Insufficient memory",
            id="no-node-has-the-memory",
        ),
    ],
)
def test_a_task_no_node_can_take_fails_in_diegos_words_after_its_domains_grace(
    operator: OperatorFactory,
    tasks: Tasks,
    tmp_path: Path,
    spec: dict[str, object],
    reason: str,
    scheduler_says: str,
) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(UNSCHEDULABLE_PROFILES)
    operator.start(domain_profiles_file=profiles)
    tasks.create(task_manifest("waits", spec=spec))  # kubectl's default domain: no early failure
    tasks.create(task_manifest("quick", spec={**spec, "domain": "quick"}))

    status = tasks.wait_state("quick", "Completed", timeout=60)

    assert status["failed"] is True
    assert status["failureReason"].startswith(reason), status["failureReason"]
    said = status["failureReason"].removeprefix(reason)
    assert said.startswith("0/") and "nodes are available" in said and scheduler_says in said
    assert "preemption" not in said  # the verdict, not the post-filter plugins' notes
    conditions = {c["type"]: c["reason"] for c in status["conditions"]}
    assert conditions["Completed"] == "Unschedulable"
    wait_until(
        lambda: (
            [j.metadata.name for j in tasks.jobs() if not j.metadata.deletion_timestamp]
            == ["waits"]
        ),
        timeout=30,
        what="the failed Task's Job to be deleted",
    )

    def scheduler_words() -> str:
        conditions = {c["type"]: c for c in tasks.status("waits").get("conditions") or ()}
        return str(conditions.get("Running", {}).get("message") or "")

    wait_until(lambda: scheduler_says in scheduler_words(), timeout=30, what="the words")
    assert tasks.status("waits")["state"] == "Pending"  # kubectl's domain: it waits
