"""Pods that really run: Jobs on the real node (kubelet, containerd, runc: `hack/cluster node up`).

The real node's promises: a result travels in the termination message, an exit code is the
container's own, a container over its memory limit is OOM-killed, an image that is not built locally
fails to pull, and a Task run by the operator ends with its real result. Skipped, with the reason,
when the real node cannot start on this machine (fixture `real_node`).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

# the first test's setup may build the kubelet (~2 min with the control plane's Go build cache)
pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.timeout(1200)]


def job_manifest(
    name: str, script: str, *, image: str = "busybox", memory: str = "64Mi", result: str = ""
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": ["sh", "-c", script],
        "resources": {"limits": {"memory": memory, "cpu": "500m"}},
    }
    if result:
        container["terminationMessagePath"] = result
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": REAL_NODE_SELECTOR,
                    "tolerations": [REAL_NODE_TOLERATION],
                    "containers": [container],
                }
            },
        },
    }


class Jobs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> None:
        self.batch.create_namespaced_job(self.namespace, body)

    def pod(self, job: str) -> client.V1Pod | None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items
        return pods[0] if pods else None

    def terminated(self, job: str, timeout: float = 60) -> tuple[client.V1Pod, Any]:
        """The job's pod and its container's `terminated` state, once there is one."""

        def check() -> tuple[client.V1Pod, Any] | None:
            pod = self.pod(job)
            for status in (pod.status.container_statuses or []) if pod else []:
                if status.state.terminated:
                    return pod, status.state.terminated
            return None

        result: tuple[client.V1Pod, Any] = wait_until(
            check, timeout=timeout, what=f"the container of job {job} to terminate"
        )
        return result

    def condition(self, job: str, type_: str, timeout: float = 30) -> None:
        wait_until(
            lambda: any(
                c.type == type_ and c.status == "True"
                for c in self.batch.read_namespaced_job_status(
                    job, self.namespace
                ).status.conditions
                or []
            ),
            timeout=timeout,
            what=f"job {job} to be {type_}",
        )


@pytest.fixture
def jobs(k8s: client.ApiClient, namespace: str, real_node: str) -> Jobs:
    return Jobs(k8s, namespace)


def test_a_job_leaves_its_result_in_the_termination_message(jobs: Jobs, real_node: str) -> None:
    started = time.monotonic()
    jobs.create(job_manifest("hello", "echo hello world > /tmp/result", result="/tmp/result"))

    pod, terminated = jobs.terminated("hello")
    latency = time.monotonic() - started

    assert pod.spec.node_name == real_node
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert terminated.message == "hello world\n"
    jobs.condition("hello", "Complete")
    assert latency < 30, f"job created → container terminated took {latency:.1f}s"


def test_a_job_that_exits_7_fails_with_exit_code_7(jobs: Jobs) -> None:
    jobs.create(job_manifest("exit7", "echo bye; exit 7"))

    _, terminated = jobs.terminated("exit7")

    assert (terminated.exit_code, terminated.reason) == (7, "Error")
    jobs.condition("exit7", "Failed")


def test_a_job_over_its_memory_limit_is_oom_killed(jobs: Jobs) -> None:
    # tail buffers all of /dev/zero's single 200 MiB "line" in memory: far over the 32 MiB limit
    jobs.create(job_manifest("oom", "head -c 200m /dev/zero | tail > /dev/null", memory="32Mi"))

    _, terminated = jobs.terminated("oom")

    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")
    jobs.condition("oom", "Failed")


def test_an_image_that_is_not_built_locally_fails_to_pull(jobs: Jobs) -> None:
    jobs.create(job_manifest("noimage", "true", image="example.com/no/such-image:1"))

    def waiting() -> Any:
        pod = jobs.pod("noimage")
        for status in (pod.status.container_statuses or []) if pod else []:
            w = status.state.waiting
            if w and w.reason in ("ErrImagePull", "ImagePullBackOff"):
                return w
        return None

    w = wait_until(waiting, timeout=60, what="the image pull to fail")
    assert "example.com/no/such-image:1" in w.message
    assert "not found" in w.message


def test_a_task_runs_on_the_real_node_and_reports_its_real_result(
    k8s: client.ApiClient,
    namespace: str,
    real_node: str,
    operator_image: str,
    operator: OperatorFactory,
) -> None:
    tasks = Tasks(k8s, namespace)
    operator.start()
    tasks.create(
        task_manifest(
            "real",
            spec={
                "action": {
                    "run": {
                        "path": "sh",
                        "args": ["-c", "echo hello $(echo world) > result-file.txt"],
                        "dir": "/tmp",
                    }
                },
                "resultFile": "/tmp/result-file.txt",
                "podTemplate": {
                    "nodeSelector": REAL_NODE_SELECTOR,
                    "tolerations": [REAL_NODE_TOLERATION],
                },
            },
        )
    )

    status = tasks.wait_state("real", "Completed", timeout=90)

    # the file's content, verbatim (as BBS: the executor does not trim), so with echo's newline
    assert (status["failed"], status["result"]) == (False, "hello world\n")
    (pod,) = (
        client.CoreV1Api(k8s)
        .list_namespaced_pod(namespace, label_selector=f"job-name={status['jobName']}")
        .items
    )
    assert pod.spec.node_name == real_node


def test_a_non_root_task_runs_for_real_in_a_pod_security_restricted_namespace(
    k8s: client.ApiClient,
    namespace: str,
    real_node: str,
    operator_image: str,
    operator: OperatorFactory,
) -> None:
    """Seccomp RuntimeDefault, no capabilities, no privilege escalation: still runs under runc."""
    client.CoreV1Api(k8s).patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    tasks = Tasks(k8s, namespace)
    operator.start()
    tasks.create(
        task_manifest(
            "restricted",
            spec={
                "action": {
                    "run": {
                        "path": "sh",
                        "args": [
                            "-c",
                            "id -u > /tmp/result; grep CapEff /proc/self/status >> /tmp/result",
                        ],
                        "user": "1000:1000",
                    }
                },
                "podTemplate": {
                    "nodeSelector": REAL_NODE_SELECTOR,
                    "tolerations": [REAL_NODE_TOLERATION],
                },
            },
        )
    )

    status = tasks.wait_state("restricted", "Completed", timeout=90)

    assert (status["failed"], status["failureReason"]) == (False, "")
    assert status["result"] == "1000\nCapEff:\t0000000000000000\n"
