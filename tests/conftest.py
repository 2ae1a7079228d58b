"""Fixtures shared by every test tier: the local cluster and a namespace per test."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvloop

from tests.fileserver import FILES, FileServer
from tests.kubeutil import wait_until

if TYPE_CHECKING:
    from tests.operatorproc import OperatorFactory

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_TOOL = ROOT / "hack" / "cluster"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def private_cluster_ports() -> dict[str, str]:
    """Free loopback ports for a second, private hack/cluster: etcd (and its peer port, one
    above), the API server and kwok.

    Chosen below Linux's ephemeral range (32768-60999): a port there can be taken at any moment
    by an outgoing connection of a test running alongside, which once made etcd's port answer with
    something else.
    """
    start = 21000 + (os.getpid() % 500) * 20
    free = [p for p in range(start, 32000) if port_free(p)]
    etcd = next(p for p in free if p + 1 in free)
    apiserver, kwok = [p for p in free if p not in (etcd, etcd + 1)][:2]
    return {
        "TASKOP_ETCD_PORT": str(etcd),
        "TASKOP_APISERVER_PORT": str(apiserver),
        "TASKOP_KWOK_PORT": str(kwok),
    }


def cluster_tool(*args: str, env: dict[str, str] | None = None) -> str:
    """Run hack/cluster with this interpreter (so the venv's kubectl is on its PATH)."""
    proc = subprocess.run(
        [sys.executable, str(CLUSTER_TOOL), *args],
        env={
            **os.environ,
            **(env or {}),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test runs on the operator's own event loop: uvloop (``taskop.cli.main``)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The local cluster's kubeconfig: starts the cluster, or reuses one that is already up.

    Set TASKOP_TEST_KUBECONFIG to run the cluster tests against another cluster instead.
    """
    if explicit := os.environ.get("TASKOP_TEST_KUBECONFIG"):
        return explicit
    try:
        cluster_tool("up", "--no-build")  # hack/bootstrap built it; a fixture builds nothing
    except RuntimeError as e:
        pytest.fail(str(e)[-2000:], pytrace=False)
    return cluster_tool("kubeconfig").strip()


@pytest.fixture(scope="session")
def k8s(kubeconfig: str) -> object:
    """A synchronous kubernetes ApiClient for test set-up and assertions."""
    from kubernetes import config

    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture
def namespace(k8s: object, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, with its default ServiceAccount ready; deleted afterwards."""
    from kubernetes import client

    from tests.kubeutil import wait_until

    core = client.CoreV1Api(k8s)
    base = request.node.name.lower().replace("_", "-")
    slug = "".join(c for c in base if c.isalnum() or c == "-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"taskop.dev/test": "true"})
        )
    )
    wait_until(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        ),
        timeout=60,
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as e:
        if e.status != 404:  # a test may have deleted it already
            raise


@pytest.fixture(scope="session")
def crds(k8s: object, kubeconfig: str) -> None:
    """taskop's CRDs and admission policy from crds/, applied server-side, Established and in
    force."""
    from kubernetes import client

    from tests.kubeutil import kubectl, wait_until
    from tests.tasks import task_manifest

    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    ext = client.ApiextensionsV1Api(k8s)

    def established() -> bool:
        return all(
            any(
                c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(name).status.conditions or []
            )
            for name in ("tasks.taskop.dev", "tasktypes.taskop.dev")
        )

    wait_until(established, timeout=30, what="taskop's CRDs to be established")

    # The admission policy keeping a Task's spec immutable is in force once the API server's
    # policy informer has it: until a dry-run change of a probe Task's image is refused.
    custom = client.CustomObjectsApi(k8s)
    # (external: no operator a test runs cluster-wide makes it a Job)
    probe = task_manifest(f"crds-probe-{uuid.uuid4().hex[:8]}", spec={"external": True})
    custom.create_namespaced_custom_object("taskop.dev", "v1alpha1", "default", "tasks", probe)
    name = probe["metadata"]["name"]

    def immutable() -> bool:
        try:
            custom.patch_namespaced_custom_object(
                "taskop.dev", "v1alpha1", "default", "tasks", name,
                {"spec": {"image": "changed"}}, dry_run="All",
            )  # fmt: skip
        except client.ApiException as e:
            return e.status == 422 and "spec.image is immutable" in str(e.body)
        return False

    try:
        wait_until(immutable, timeout=30, what="the Task spec's admission policy to be in force")
    finally:
        custom.delete_namespaced_custom_object("taskop.dev", "v1alpha1", "default", "tasks", name)


@pytest.fixture
def operator(
    kubeconfig: str, namespace: str, crds: None, tmp_path: Path
) -> Iterator[OperatorFactory]:
    """Starts `taskop run` as a real process watching the test's namespace; stops it afterwards."""
    from tests.operatorproc import OperatorFactory

    factory = OperatorFactory(kubeconfig, namespace, tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def operator_image(real_node: str) -> str:
    """The operator image, built from this checkout by hack/bootstrap (hack/build-image: the
    operator and the in-pod executor from executor/), imported into the real node's containerd
    once per session. An image built from other sources fails, naming hack/bootstrap.

    Task pods copy the executor from it (Settings.executor_image's default names this tag), so
    real-node tests always run the executor built from the sources under test: no drift.
    """
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    address = cluster_tool("node", "containerd-address").strip()
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-image"), "--import-only", "--containerd-address", address],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"hack/build-image --import-only failed:\n{proc.stderr[-3000:]}")
    return f"localhost/taskop:{version}"


@pytest.fixture
def files(k8s: object, namespace: str, real_node: str) -> Iterator[FileServer]:
    """busybox httpd on the real node, serving `FILES`."""
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "files"},
            "binaryData": {k: base64.b64encode(v).decode() for k, v in FILES.items()},
        },
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "files"},
            "spec": {
                "nodeSelector": REAL_NODE_SELECTOR,
                "tolerations": [REAL_NODE_TOLERATION],
                "containers": [
                    {
                        "name": "httpd",
                        "image": "busybox",
                        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
                        "readinessProbe": {
                            "tcpSocket": {"port": 8080},
                            "periodSeconds": 1,
                        },
                    }
                ],
                "volumes": [{"name": "www", "configMap": {"name": "files"}}],
            },
        },
    )

    def ready() -> str | None:
        pod = core.read_namespaced_pod("files", namespace)
        conditions = pod.status.conditions or []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            return str(pod.status.pod_ip)
        return None

    yield FileServer(wait_until(ready, timeout=60, what="the file server pod to be ready"))


REAL_NODE_SELECTOR = {"taskop.dev/real-node": "true"}
REAL_NODE_TOLERATION = {"key": "taskop.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="session")
def real_node(k8s: object) -> str:
    """The real node's name: a kubelet with containerd and runc that really runs containers.

    Started (or found running) by `hack/cluster node up`; it stays up, like the cluster.
    When it cannot start here, every test using it is skipped with the precise reason — the last
    lines of `hack/cluster node up`'s error. With TASKOP_TEST_KUBECONFIG, a Ready node labelled
    taskop.dev/real-node=true must already be there. Pods opt in with REAL_NODE_SELECTOR and
    REAL_NODE_TOLERATION (the node is tainted, so kwok-driven tests never land on it).
    """
    from kubernetes import client

    def ready_real_node() -> str | None:
        for node in (
            client.CoreV1Api(k8s).list_node(label_selector="taskop.dev/real-node=true").items
        ):
            if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
                return str(node.metadata.name)
        return None

    if os.environ.get("TASKOP_TEST_KUBECONFIG"):
        if name := ready_real_node():
            return name
        pytest.skip(
            "real node: TASKOP_TEST_KUBECONFIG's cluster has no Ready node labelled "
            "taskop.dev/real-node=true"
        )
    # Always through `node up` (idempotent, ~1 s when it runs): a Node object can still say Ready
    # after its kubelet died, e.g. when the machine's processes were killed since the last run.
    # It builds nothing (hack/bootstrap did): a node that is not built is an error, not a skip.
    try:
        cluster_tool("node", "up", "--no-build")
    except RuntimeError as e:
        lines = [line for line in str(e).splitlines() if line.strip()]
        if any("run hack/bootstrap" in line for line in lines):
            pytest.fail(" | ".join(lines[-3:]), pytrace=False)
        pytest.skip("real node cannot start on this machine: " + " | ".join(lines[-6:]))
    name = ready_real_node()
    if not name:
        pytest.skip("real node: `hack/cluster node up` succeeded but no Ready real node is listed")
    return name


def built_tool(script: str, *args: str) -> str:
    """The path `hack/<script> --path` prints: a tool hack/bootstrap built. Fixtures never build
    anything slow; a tool that is not built fails the test with the command that builds it."""
    proc = subprocess.run(
        [str(ROOT / "hack" / script), *args, "--path"], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        pytest.fail(f"hack/{script}: {proc.stderr.strip()[-2000:]}", pytrace=False)
    return proc.stdout.strip()


@pytest.fixture(scope="session")
def helm() -> str:
    return built_tool("build-helm")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return Path(built_tool("build-promtool"))


@pytest.fixture(scope="session")
def kueue(kubeconfig: str) -> None:
    """Kueue in the local cluster: its CRDs, its manager and its webhooks (scoped to Jobs labelled
    kueue.x-k8s.io/queue-name and Kueue's own kinds), by `hack/cluster kueue up --no-build`
    (idempotent). hack/bootstrap built it; a kueue that is not built fails, naming hack/bootstrap.
    With TASKOP_TEST_KUBECONFIG, Kueue must already run in that cluster.

    Tests that use it join `@pytest.mark.xdist_group("kueue")`; one that stops the manager is also
    `exclusive` (a fresh-machine run once had a queue test meet the stopped manager's webhooks).
    """
    if os.environ.get("TASKOP_TEST_KUBECONFIG"):
        return
    try:
        cluster_tool("kueue", "up", "--no-build")
    except RuntimeError as e:
        pytest.fail(str(e)[-3000:], pytrace=False)
