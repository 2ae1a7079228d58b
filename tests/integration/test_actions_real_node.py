"""BBS action trees run by the in-pod executor, with real containers on the real node.

Files are served from a pod on the real node (busybox httpd, a ConfigMap as its document root) and
fetched pod to pod. Task pods copy the executor from the operator image that `operator_image`
builds from this checkout and imports into the node's containerd.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from tests.fileserver import FileServer, sha256
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import GROUP, Tasks

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

LIMIT = 51_200  # Diego rep's MAX_RESULT_SIZE


@pytest.fixture
def run(
    k8s: client.ApiClient,
    namespace: str,
    real_node: str,
    operator_image: str,
    operator: OperatorFactory,
) -> Tasks:
    operator.start()
    return Tasks(k8s, namespace)


def on_real_node(name: str, action: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {
            "image": "busybox",
            "action": action,
            "podTemplate": {
                "nodeSelector": REAL_NODE_SELECTOR,
                "tolerations": [REAL_NODE_TOLERATION],
            },
            **spec,
        },
    }


def sh(script: str) -> dict[str, Any]:
    return {"run": {"path": "sh", "args": ["-c", script]}}


def task_log(k8s: client.ApiClient, namespace: str, status: dict[str, Any]) -> str:
    """What `kubectl logs` shows for the task's container."""
    return str(
        client.CoreV1Api(k8s).read_namespaced_pod_log(
            status["podName"], namespace, container="task"
        )
    )


def completed(tasks: Tasks, name: str, timeout: float = 120) -> dict[str, Any]:
    return tasks.wait_state(name, "Completed", timeout=timeout)


def test_serial_download_then_run_uses_the_downloaded_script(
    run: Tasks, files: FileServer, k8s: client.ApiClient, namespace: str
) -> None:
    download = {
        "artifact": "app",
        "from": files.url("app.tgz"),
        "to": "/tmp/app",
        "checksumAlgorithm": "sha256",
        "checksumValue": sha256("app.tgz"),
    }
    hello = {"run": {"path": "/tmp/app/bin/hello.sh", "args": ["serial"]}}
    run.create(
        on_real_node(
            "serial",
            {"serial": {"actions": [{"download": download}, hello]}},
            resultFile="/tmp/result",
        )
    )

    status = completed(run, "serial")

    assert (status["failed"], status["result"]) == (False, "from the tarball: serial\n")
    log = task_log(k8s, namespace, status)
    assert "Downloading app..." in log and "Downloaded app (" in log


def test_parallel_downloads_and_a_cached_dependency_all_arrive(
    run: Tasks, files: FileServer
) -> None:
    fetch_both = {
        "parallel": {
            "actions": [
                {"download": {"from": files.url("app.tgz"), "to": "/tmp/app"}},
                {"download": {"from": files.url("notes.zip"), "to": "/tmp/zip"}},
            ]
        }
    }
    show = sh(
        "/tmp/app/bin/hello.sh p; cat /tmp/zip/notes/a.txt /tmp/deps/greeting.txt >> /tmp/result"
    )
    run.create(
        on_real_node(
            "parallel",
            {"serial": {"actions": [fetch_both, show]}},
            downloads=[{"name": "greeting", "from": files.url("greeting.tgz"), "to": "/tmp/deps"}],
            resultFile="/tmp/result",
        )
    )

    status = completed(run, "parallel")

    assert status["result"] == (
        "from the tarball: p\nfrom the zip\nhello from a cached dependency\n"
    )


def test_a_checksum_mismatch_fails_the_task_naming_the_artifact(
    run: Tasks, files: FileServer
) -> None:
    download = {
        "artifact": "droplet",
        "from": files.url("app.tgz"),
        "to": "/tmp/app",
        "checksumAlgorithm": "sha256",
        "checksumValue": "0" * 64,
    }
    run.create(
        on_real_node("mismatch", {"serial": {"actions": [{"download": download}, sh("true")]}})
    )

    status = completed(run, "mismatch")

    assert status["failed"] is True
    assert "droplet" in status["failureReason"]
    assert "checksum" in status["failureReason"].lower()
    assert sha256("app.tgz") in status["failureReason"]


def test_a_cached_dependency_that_cannot_be_fetched_fails_before_the_action(
    run: Tasks, files: FileServer
) -> None:
    run.create(
        on_real_node(
            "nodep",
            sh("echo ran > /tmp/result"),
            downloads=[{"name": "lifecycle", "from": files.url("missing.tgz"), "to": "/tmp/l"}],
            resultFile="/tmp/result",
        )
    )

    status = completed(run, "nodep")

    assert status["failed"] is True
    assert "lifecycle" in status["failureReason"]
    assert status.get("result", "") == ""


@pytest.mark.parametrize(
    ("archive", "escaped_to"),
    [("escape-absolute.tgz", "/tmp/pwned"), ("escape-chain.tgz", "/tmp/app/pwned")],
)
def test_an_archive_that_writes_through_a_link_out_of_its_destination_is_refused(
    run: Tasks, files: FileServer, archive: str, escaped_to: str
) -> None:
    # Issue 23, hole 2: `a -> /tmp` then `a/pwned`; or `y -> .`, `x -> y/..` then `x/pwned`.
    download = {"download": {"artifact": "app", "from": files.url(archive), "to": "/tmp/app/dest"}}
    look = sh(f"if [ -e {escaped_to} ]; then echo present; else echo absent; fi > /tmp/result")
    run.create(on_real_node("refused", {"serial": {"actions": [download, sh("true")]}}))
    run.create(
        on_real_node(
            "looked",
            {"serial": {"actions": [{"try": {"action": download}}, look]}},
            resultFile="/tmp/result",
        )
    )

    refused, looked = completed(run, "refused"), completed(run, "looked")

    assert refused["failed"] is True
    assert "app" in refused["failureReason"]
    assert "outside the destination" in refused["failureReason"]
    assert (looked["failed"], looked["result"]) == (False, "absent\n")


def test_codependent_stops_its_sibling_when_one_exits(run: Tasks) -> None:
    sleeper = sh("sleep 600")
    quick = sh("exit 0")
    run.create(on_real_node("codep", {"codependent": {"actions": [sleeper, quick]}}))

    status = completed(run, "codep", timeout=60)  # long before the sleeper's 600 s

    # Diego's codependent step fails whenever one of its actions exits.
    assert (status["failed"], status["failureReason"]) == (True, "Codependent step exited")


def test_a_run_actions_secret_variable_reaches_its_own_process_only(
    run: Tasks, k8s: client.ApiClient, namespace: str
) -> None:
    # How a BBS task's VCAP_SERVICES reaches its process: the run action's env takes it from a
    # Secret (valueFrom), the container holds it under taskop's own name, the executor hands it
    # to that process alone; the other process sees neither name.
    client.CoreV1Api(k8s).create_namespaced_secret(
        namespace, {"metadata": {"name": "services"}, "stringData": {"vcap": '{"db":"s3cret"}'}}
    )
    show = 'echo "${VCAP_SERVICES-unset} ${TASKOP_ACTION_ENV_0-unset}" >> /tmp/result'
    ref = {"secretKeyRef": {"name": "services", "key": "vcap"}}
    own = {
        "run": {
            "path": "sh",
            "args": ["-c", show],
            "env": [{"name": "VCAP_SERVICES", "valueFrom": ref}],
        }
    }
    run.create(
        on_real_node(
            "action-env", {"serial": {"actions": [own, sh(show)]}}, resultFile="/tmp/result"
        )
    )

    status = completed(run, "action-env")

    assert (status["failed"], status["result"]) == (False, '{"db":"s3cret"} unset\nunset unset\n')


def test_try_turns_a_failure_into_success(run: Tasks) -> None:
    # The result file is a plain file: writing it elsewhere and moving it in works.
    write = sh("echo ok > /tmp/r.new && mv /tmp/r.new /tmp/r")
    action = {"serial": {"actions": [{"try": {"action": sh("exit 3")}}, write]}}
    run.create(on_real_node("try", action, resultFile="/tmp/r"))

    status = completed(run, "try")

    assert (status["failed"], status["result"]) == (False, "ok\n")


def test_a_timeout_action_fires(run: Tasks) -> None:
    run.create(on_real_node("timeout", {"timeout": {"timeoutMs": 1000, "action": sh("sleep 600")}}))

    status = completed(run, "timeout", timeout=60)

    assert status["failed"] is True
    assert "exceeded 1s timeout" in status["failureReason"]


def test_emit_progress_messages_appear_in_the_task_log(
    run: Tasks, k8s: client.ApiClient, namespace: str
) -> None:
    action = {
        "emitProgress": {
            "startMessage": "Staging your app",
            "successMessage": "Staging complete",
            "failureMessagePrefix": "Staging failed",
            "action": sh("echo building"),
        }
    }
    run.create(on_real_node("progress", action))

    status = completed(run, "progress")

    assert status["failed"] is False
    assert task_log(k8s, namespace, status).splitlines() == [
        "Staging your app",
        "building",
        "Exit status 0",  # Diego's run step says so too
        "Staging complete",
    ]


def test_the_log_rate_limit_drops_lines_with_diegos_notice(
    run: Tasks, k8s: client.ApiClient, namespace: str
) -> None:
    run.create(on_real_node("noisy", sh("seq 1 5000"), logRateLimit=100))

    status = completed(run, "noisy")

    lines = task_log(k8s, namespace, status).splitlines()
    assert "app instance exceeded log rate limit (100 bytes/sec)" in lines
    assert len(lines) < 5000 and lines[0] == "1"


def test_nofile_is_the_open_files_limit_inside(run: Tasks) -> None:
    action = {
        "run": {
            "path": "sh",
            "args": ["-c", "ulimit -n > /tmp/r"],
            "resourceLimits": {"nofile": 1234},
        }
    }
    run.create(on_real_node("nofile", action, resultFile="/tmp/r"))

    assert completed(run, "nofile")["result"] == "1234\n"


def numbers(size: int) -> str:
    """``seq 1 20000 | head -c size``: a result whose every byte can be checked."""
    return "".join(f"{i}\n" for i in range(1, 20001))[:size]


def test_a_result_of_50_kib_arrives_byte_exact(run: Tasks) -> None:
    run.create(
        on_real_node("big", sh(f"seq 1 20000 | head -c {LIMIT} > /tmp/r"), resultFile="/tmp/r")
    )

    status = completed(run, "big")

    assert status["failed"] is False
    assert status["result"] == numbers(LIMIT)


def test_a_result_over_50_kib_fails_with_its_size(run: Tasks) -> None:
    run.create(
        on_real_node("huge", sh("seq 1 20000 | head -c 61440 > /tmp/r"), resultFile="/tmp/r")
    )

    status = completed(run, "huge")

    assert status["failed"] is True
    assert status["failureReason"] == "result file is 61440 bytes, over the limit of 51200 bytes"


def test_a_missing_result_file_fails_as_on_diego(run: Tasks) -> None:
    run.create(on_real_node("noresult", sh("true"), resultFile="/tmp/never-written"))

    status = completed(run, "noresult")

    assert (status["failed"], status["failureReason"]) == (True, "failed to fetch result")


def test_a_big_result_survives_an_operator_restart_between_pod_end_and_read(
    k8s: client.ApiClient,
    namespace: str,
    real_node: str,
    operator_image: str,
    operator: OperatorFactory,
) -> None:
    tasks = Tasks(k8s, namespace)
    first = operator.start()
    script = f"sleep 3; seq 1 20000 | head -c {LIMIT} > /tmp/r"
    tasks.create(on_real_node("restart", sh(script), resultFile="/tmp/r"))
    tasks.wait_state("restart", "Running", timeout=90)
    first.stop()

    job = str(tasks.status("restart")["jobName"])
    batch = client.BatchV1Api(k8s)
    wait_until(
        lambda: any(
            c.type == "Complete" and c.status == "True"
            for c in batch.read_namespaced_job(job, namespace).status.conditions or []
        ),
        timeout=90,
        what="the Job to complete while no operator runs",
    )
    assert tasks.status("restart")["state"] == "Running"  # nobody has read the result yet
    operator.start()

    status = tasks.wait_state("restart", "Completed", timeout=60)
    assert (status["failed"], status["result"]) == (False, numbers(LIMIT))
