"""The BBS API against the real Go client (tests/bbsconformance), over plain HTTP and mutual TLS.

The operator runs with the BBS API for the test namespace; ``cells`` is an external domain (the
conformance program plays the cell), ``jobs`` is run by taskop as Kubernetes Jobs on kwok nodes.
Default Task annotations (``TASKOP_BBS_TASK_ANNOTATIONS``) tell the fake kwok pods what to do:
report "hello" as the termination message (the task result), or keep running until cancelled.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bbscerts import Certs, make_certs
from tests.bbsclient import free_port, wait_for_ping
from tests.callbacks import callback_receiver
from tests.fileserver import FileServer, sha256
from tests.operatorproc import OperatorFactory, OperatorProcess

pytestmark = pytest.mark.cluster

EXTERNAL_DOMAIN = "cells"
JOB_DOMAIN = "jobs"


def start_bbs(
    operator: OperatorFactory, context: ssl.SSLContext | None = None, **settings: object
) -> tuple[OperatorProcess, int]:
    port = free_port()
    settings.setdefault("callback_allowed_destinations", "127.0.0.1")  # the tests' receivers
    proc = operator.start(
        bbs_enabled="true",
        bbs_listen_port=port,
        bbs_namespace=operator.namespace,
        bbs_external_domains=EXTERNAL_DOMAIN,
        **settings,
    )
    try:
        wait_for_ping(port, context=context)
    except AssertionError:
        raise AssertionError(f"operator log:\n{proc.logs()[-5000:]}") from None
    return proc, port


def start_bbs_with_mutual_tls(
    operator: OperatorFactory, certs: Path | Certs, **settings: object
) -> tuple[OperatorProcess, list[str]]:
    """The operator serving BBS over mutual TLS (certificates made in ``certs`` when it is a
    directory), and the conformance program's flags to reach it."""
    if isinstance(certs, Path):
        certs = make_certs(certs)
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(certs.client_cert, certs.client_key)
    proc, port = start_bbs(
        operator,
        context,
        bbs_tls_cert_file=certs.server_cert,
        bbs_tls_key_file=certs.server_key,
        bbs_tls_ca_file=certs.ca,
        **settings,
    )
    flags = ["-url", f"https://127.0.0.1:{port}", "-ca", str(certs.ca)]
    return proc, [*flags, "-cert", str(certs.client_cert), "-key", str(certs.client_key)]


def run_conformance(binary: Path, proc: OperatorProcess, *args: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if not line.get("ok")]
    if result.returncode != 0 or failed or not lines:
        pytest.fail(
            f"bbsconformance {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
            f"operator log (tail):\n{proc.logs()[-4000:]}"
        )
    return lines


def test_all_scenarios_plain_http(operator: OperatorFactory, bbsconformance: Path) -> None:
    proc, port = start_bbs(operator)
    lines = run_conformance(
        bbsconformance,
        proc,
        "-url",
        f"http://127.0.0.1:{port}",
        "-domain",
        EXTERNAL_DOMAIN,
        "-scenario",
        "all",
    )
    checks = {str(line["check"]).split("/")[0] for line in lines}
    assert checks >= {"ping", "lifecycle-external", "events"}


def test_all_scenarios_mutual_tls(
    operator: OperatorFactory, bbsconformance: Path, tmp_path: Path
) -> None:
    proc, tls = start_bbs_with_mutual_tls(operator, tmp_path / "certs")
    run_conformance(
        bbsconformance,
        proc,
        *tls,
        "-domain",
        EXTERNAL_DOMAIN,
        "-scenario",
        "all",
    )


def test_run_to_completion_as_a_job(operator: OperatorFactory, bbsconformance: Path) -> None:
    proc, port = start_bbs(
        operator, bbs_task_annotations=json.dumps({"kwok.taskop.dev/message": "hello"})
    )
    run_conformance(
        bbsconformance,
        proc,
        "-url",
        f"http://127.0.0.1:{port}",
        "-domain",
        JOB_DOMAIN,
        "-scenario",
        "run-to-completion",
        "-expect-result",
        "hello",
        "-timeout",
        "120s",
    )


def test_cancel_running_job(operator: OperatorFactory, bbsconformance: Path) -> None:
    proc, port = start_bbs(
        operator, bbs_task_annotations=json.dumps({"kwok.taskop.dev/complete": "never"})
    )
    run_conformance(
        bbsconformance,
        proc,
        "-url",
        f"http://127.0.0.1:{port}",
        "-domain",
        JOB_DOMAIN,
        "-scenario",
        "cancel-running",
        "-timeout",
        "120s",
    )


@pytest.fixture
def real_node_for_bbs(k8s: object, real_node: str) -> Iterator[str]:
    """The real node, reachable by a BBS task's placement tag ``real-node``.

    A BBS task says where it runs only by placement tags (the admin's other way, a domain
    profile's pod template, is tests/e2e/test_cloud_controller.py's): for this test the node gets
    the label placement.taskop.dev/real-node and
    loses its NoSchedule taint, both restored afterwards. The test is `exclusive` (hack/test runs it
    alone), so no other test's pod can be scheduled there meanwhile.
    """
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    taints = core.read_node(real_node).spec.taints
    core.patch_node(
        real_node,
        {
            "metadata": {"labels": {"placement.taskop.dev/real-node": "true"}},
            "spec": {"taints": [t for t in taints or [] if t.key != "taskop.dev/real-node"]},
        },
    )
    try:
        yield real_node
    finally:
        core.patch_node(
            real_node,
            {
                "metadata": {"labels": {"placement.taskop.dev/real-node": None}},
                "spec": {"taints": taints},
            },
        )


@pytest.mark.realnode
@pytest.mark.exclusive  # the real node loses its taint meanwhile: any test's pod could land there
def test_cloud_controllers_serial_download_task_runs_on_the_real_node_over_mutual_tls(
    operator: OperatorFactory,
    bbsconformance: Path,
    tmp_path: Path,
    files: FileServer,
    operator_image: str,
    real_node_for_bbs: str,
) -> None:
    """Serial[Download droplet, Run] plus a cached dependency, desired by the Go BBS client, run
    by the executor in a real container; the result comes back by TaskByGuid and the callback."""
    expected = "from the tarball: from the Go BBS client\nhello from a cached dependency\n"
    with callback_receiver([200], delay=3.0) as receiver:  # a slow receiver: Resolving lasts
        proc, tls = start_bbs_with_mutual_tls(operator, tmp_path / "certs")
        run_conformance(
            bbsconformance,
            proc,
            *tls,
            "-domain",
            JOB_DOMAIN,
            "-scenario",
            "serial-download",
            "-download-url",
            files.url("app.tgz"),
            "-download-sha256",
            sha256("app.tgz"),
            "-dependency-url",
            files.url("greeting.tgz"),
            "-placement-tag",
            "real-node",
            "-callback-url",
            receiver.url,
            "-expect-result",
            expected,
            "-timeout",
            "120s",
        )
    (_, body), *_ = receiver.requests
    callback = json.loads(body)
    assert (callback["failed"], callback["result"]) == (False, expected)
