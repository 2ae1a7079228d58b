"""The Helm chart against the local cluster: it renders into objects the API server accepts; once
installed, taskop runs a Task end to end with nothing but the chart's ServiceAccount (a TokenRequest
token), which may not read Secrets or write what taskop does not write; `kubectl apply -k deploy/`
makes the same objects; `helm uninstall` leaves nothing behind but the CRDs."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.glance import GlanceClient, create_task_type, service_account_token, wait_for_glance
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorProcess
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "taskop"
CLUSTER_CA = Path.home() / ".cache" / "taskop" / "cluster" / "pki" / "ca.crt"


def run_helm(helm: str, kubeconfig: str, *args: str) -> str:
    proc = subprocess.run(
        [helm, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_url(kubeconfig: str) -> str:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    return str(config["clusters"][0]["cluster"]["server"])


def token_kubeconfig(kubeconfig: str, namespace: str, sa: str, path: Path) -> Path:
    """A kubeconfig that is nothing but a TokenRequest token of ``sa`` and the cluster's CA."""
    token = kubectl(
        kubeconfig, "create", "token", sa, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {
                            "server": server_url(kubeconfig),
                            "certificate-authority": str(CLUSTER_CA),
                        },
                    }
                ],
                "users": [{"name": sa, "user": {"token": token}}],
                "contexts": [{"name": sa, "context": {"cluster": "local", "user": sa}}],
                "current-context": sa,
            }
        )
    )
    return path


def can_i(kubeconfig: str, subject: str, verb: str, resource: str, namespace: str | None) -> bool:
    """``resource`` may name a subresource as ``pods:log`` (kubectl reads pods/log as a name)."""
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    kind, _, sub = resource.partition(":")
    subresource = [f"--subresource={sub}"] if sub else []
    proc = kubectl(
        kubeconfig,
        "auth",
        "can-i",
        verb,
        kind,
        *subresource,
        f"--as={subject}",
        *where,
        check=False,
    )
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


def release_objects(kubeconfig: str, release: str, namespaces: list[str]) -> list[str]:
    """Every object labelled with the release, cluster-scoped or in ``namespaces``."""
    selector = f"app.kubernetes.io/instance={release}"
    kinds = "serviceaccounts,services,deployments,jobs,roles,rolebindings,kopfpeerings"
    found: list[str] = []
    for ns in namespaces:
        found += kubectl(
            kubeconfig, "get", kinds, "-n", ns, "-l", selector, "-o", "name"
        ).stdout.split()
    found += kubectl(
        kubeconfig,
        "get",
        "clusterroles,clusterrolebindings,clusterkopfpeerings",
        "-l",
        selector,
        "-o",
        "name",
    ).stdout.split()
    return found


def test_chart_renders_into_objects_the_api_server_accepts(
    helm: str, kubeconfig: str, namespace: str, chart_crds: None
) -> None:
    """`helm lint`, `helm template` and a server-side dry run, in every mode the chart has."""
    for sets in (
        [TLS],
        [TLS, f"watchNamespace={namespace}"],
        ["bbs.insecure=true", "replicaCount=2"],
        [TLS, "replicaCount=2", f"watchNamespace={namespace}"],
        ["bbs.enabled=false"],
    ):
        flags = [f"--set={s}" for s in sets]
        run_helm(helm, kubeconfig, "lint", "--strict", str(CHART), *flags)
        rendered = run_helm(
            helm,
            kubeconfig,
            "template",
            f"dry-{uuid.uuid4().hex[:6]}",
            str(CHART),
            "-n",
            namespace,
            *flags,
        )
        proc = kubectl(
            kubeconfig, "apply", "--dry-run=server", "-f", "-", input_=rendered, check=False
        )
        assert proc.returncode == 0, f"{sets}: {proc.stderr}"
        kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
        bbs = {"Service", "Job"} if "bbs.enabled=false" not in sets else set()  # Job: helm test
        assert {"Deployment", "ServiceAccount", *bbs} <= kinds


TLS = "bbs.tls.secretName=taskop-bbs-tls"
"""The BBS API's TLS Secret: the chart requires one (or bbs.insecure=true)."""


def test_an_insecure_bbs_api_is_said_loudly_at_install(helm: str, kubeconfig: str) -> None:
    notes = run_helm(
        helm, kubeconfig, "install", "x", str(CHART), "--dry-run", "--set=bbs.insecure=true"
    )
    assert "WARNING: bbs.insecure=true: the BBS API is served over plain HTTP" in notes
    assert "WARNING" not in run_helm(
        helm, kubeconfig, "install", "x", str(CHART), "--dry-run", f"--set={TLS}"
    )


@pytest.fixture
def release(helm: str, kubeconfig: str, namespace: str) -> Iterator[str]:
    name = f"taskop-{uuid.uuid4().hex[:6]}"
    yield name
    subprocess.run(
        [
            helm,
            f"--kubeconfig={kubeconfig}",
            "uninstall",
            name,
            "-n",
            namespace,
            "--ignore-not-found",
        ],
        capture_output=True,
    )


@pytest.mark.parametrize("mode", ["all-namespaces", "one-namespace"])
def test_installed_chart_service_account_runs_a_task_and_nothing_more(
    mode: str,
    helm: str,
    kubeconfig: str,
    namespace: str,
    chart_crds: None,
    k8s: client.ApiClient,
    release: str,
    tmp_path: Path,
) -> None:
    flags = [f"--set=watchNamespace={namespace}"] if mode == "one-namespace" else []
    run_helm(
        helm, kubeconfig, "install", release, str(CHART), "-n", namespace, f"--set={TLS}", *flags
    )
    sa = release  # the full name: the release name contains "taskop"
    subject = f"system:serviceaccount:{namespace}:{sa}"

    # The operator as a process, logged in with nothing but the chart's ServiceAccount. It serves
    # the BBS API too (the chart's default), which lists and watches the Tasks of its namespace.
    sa_kubeconfig = token_kubeconfig(kubeconfig, namespace, sa, tmp_path / "sa.kubeconfig")
    bbs_port, glance_port = free_port(), free_port()
    create_task_type(k8s, namespace, "hello", {"image": "busybox", "command": ["true"]})
    proc = OperatorProcess(
        str(sa_kubeconfig),
        namespace,
        tmp_path / "operator.log",
        {
            "bbs_enabled": "true",
            "bbs_listen_port": str(bbs_port),
            "bbs_namespace": namespace,
            "glance_enabled": "true",  # and the Glance API, with its reviews and TaskTypes
            "glance_listen_port": str(glance_port),
        },
    )
    try:
        token = service_account_token(k8s, namespace, "user", ["create", "get", "list"])
        wait_for_glance(glance_port, token)
        glance = GlanceClient(glance_port, token)
        glance.wait_status(glance.create("hello", {})["id"], "success", timeout=90)

        tasks = Tasks(k8s, namespace)
        tasks.create(task_manifest("hello", kwok={"message": "hello from the chart"}))
        status = tasks.wait_state("hello", "Completed", timeout=90)
        assert (status["failed"], status["result"]) == (False, "hello from the chart")

        def pinged() -> bool:
            req = urllib.request.Request(f"http://127.0.0.1:{bbs_port}/v1/ping", data=b"")
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until(pinged, timeout=30, what="the BBS API to answer Ping")

        # Deleting the Task: no finalizer holds it; the garbage collector deletes its Job.
        client.CustomObjectsApi(k8s).delete_namespaced_custom_object(
            "taskop.dev", "v1alpha1", namespace, "tasks", "hello"
        )
        tasks.wait_gone("hello", timeout=60)
    finally:
        proc.stop()
    lines = proc.logs().splitlines()
    if mode == "all-namespaces":
        # The test runs this operator with --namespace (never over other tests' namespaces), which
        # makes kopf list namespaces; deployed, it watches the whole cluster and never does.
        lines = [
            line
            for line in lines
            if not ('"namespaces' in line.replace("\\", "") and "orbidden" in line)
            and "permissions to list namespaces" not in line
            and "permissions to watch for namespaces" not in line
        ]
    logs = "\n".join(lines)
    for sign in ("Forbidden", "forbidden", "Not enough permissions", "Traceback"):
        assert sign not in logs, logs[-5000:]

    # What it may do, and what it may not: the chart grants exactly taskop's calls.
    allowed = [
        ("get", "tasks.taskop.dev"),
        ("watch", "tasks.taskop.dev"),
        ("patch", "tasks.taskop.dev"),
        ("delete", "tasks.taskop.dev"),
        ("patch", "tasks.taskop.dev:status"),  # the BBS door's and the callbacks' writes
        ("update", "tasks.taskop.dev:status"),  # the reconciler's: the whole status replaced
        ("create", "tasks.taskop.dev"),  # the BBS API's namespace
        ("create", "jobs.batch"),
        ("patch", "jobs.batch"),  # only to remove its witness finalizer
        ("delete", "jobs.batch"),
        ("list", "pods"),
        ("create", "events"),
        ("watch", "events"),  # the Job controller's FailedCreate
        ("get", "pods:log"),  # the result sidecar's log
        ("create", "networkpolicies.networking.k8s.io"),  # a Task's egress rules
        ("create", "configmaps"),  # the BBS domains' ConfigMap (get/update: that name only)
        ("create", "secrets"),  # a BBS task's image pull and definition Secrets, a Glance input
        # The BBS API's and the Glance API's label-selected watches of the Secrets they made (an
        # external task's definition, a Glance task's input): RBAC cannot narrow a list by label,
        # so in the BBS namespace taskop may list and watch its Secrets, and nowhere else.
        ("list", "secrets"),
        ("watch", "secrets"),
        ("list", "tasktypes.taskop.dev"),  # the Glance API's task types
        ("create", "tokenreviews.authentication.k8s.io"),  # who a Glance request is
        ("create", "subjectaccessreviews.authorization.k8s.io"),  # may they do it
    ]
    denied = [
        ("get", "secrets"),
        ("get", "configmaps"),
        ("update", "configmaps"),
        ("create", "pods"),
        ("delete", "pods"),
        ("get", "pods"),
        ("update", "jobs.batch"),
        ("update", "tasks.taskop.dev"),
        ("create", "deployments.apps"),
        ("create", "serviceaccounts/token"),
        ("create", "rolebindings.rbac.authorization.k8s.io"),
        ("patch", "events"),
        ("delete", "events"),
        ("create", "pods:exec"),
        ("create", "tasktypes.taskop.dev"),  # the admin's; taskop only reads them
    ]
    for verb, resource in allowed:
        assert can_i(kubeconfig, subject, verb, resource, namespace), f"cannot {verb} {resource}"
    for verb, resource in denied:
        assert not can_i(kubeconfig, subject, verb, resource, namespace), f"may {verb} {resource}"
    for verb, resource in [
        ("get", "secrets"),
        ("patch", "nodes"),
        ("delete", "nodes"),
        ("create", "namespaces"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
    ]:
        assert not can_i(kubeconfig, subject, verb, resource, None), f"may {verb} {resource}"
    assert can_i(kubeconfig, subject, "watch", "nodes", None)  # a lost cell
    assert not can_i(kubeconfig, subject, "get", "nodes", None)
    other = "default"  # Tasks elsewhere: only with cluster-wide rights, and never created there
    assert not can_i(kubeconfig, subject, "create", "tasks.taskop.dev", other)
    assert can_i(kubeconfig, subject, "list", "tasks.taskop.dev", other) == (
        mode == "all-namespaces"
    )

    # The same, asked by the ServiceAccount itself (SelfSubjectAccessReview with its token).
    def self_can_i(*args: str) -> str:
        return kubectl(
            str(sa_kubeconfig), "auth", "can-i", *args, "-n", namespace, check=False
        ).stdout.strip()

    assert self_can_i("list", "secrets") == "yes"  # the BBS namespace's (see `allowed`)
    assert self_can_i("list", "secrets", "--all-namespaces") == "no"
    assert self_can_i("create", "jobs.batch") == "yes"

    # `helm test` runs its hook Job (on kwok's fake nodes the pod's success is faked; on a real
    # node it pings the BBS Service from inside the cluster).
    out = run_helm(helm, kubeconfig, "test", release, "-n", namespace, "--timeout=60s")
    assert "Phase:          Succeeded" in out, out

    # helm uninstall: no operator object is left; the CRDs stay, as Helm does.
    assert release_objects(kubeconfig, release, [namespace])
    run_helm(helm, kubeconfig, "uninstall", release, "-n", namespace, "--wait")
    assert release_objects(kubeconfig, release, [namespace]) == []
    crds = kubectl(kubeconfig, "get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/tasks.taskop.dev" in crds


def test_replicas_share_one_active_operator_through_kopf_peering(
    helm: str,
    kubeconfig: str,
    namespace: str,
    chart_crds: None,
    k8s: client.ApiClient,
    release: str,
    tmp_path: Path,
) -> None:
    """replicaCount=2: two operators with `--peering`, as the chart runs them: one runs Tasks,
    the other takes over when it stops."""
    run_helm(
        helm,
        kubeconfig,
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set=replicaCount=2",
        f"--set=watchNamespace={namespace}",
        f"--set={TLS}",
    )
    sa_kubeconfig = token_kubeconfig(kubeconfig, namespace, release, tmp_path / "sa.kubeconfig")
    metrics_ports = [free_port(), free_port()]
    procs = [
        OperatorProcess(
            str(sa_kubeconfig),
            namespace,
            tmp_path / f"peer{i}.log",
            {"metrics_port": str(metrics_ports[i])},
            extra_args=[f"--peering={release}", "--log-format=plain"],
        )
        for i in range(2)
    ]

    def readyz(proc: OperatorProcess) -> tuple[int, str]:
        """The replica's readiness probe: only the active replica is ready."""
        url = f"http://127.0.0.1:{metrics_ports[procs.index(proc)]}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        peering = client.CustomObjectsApi(k8s)

        def both_registered() -> bool:
            obj: dict[str, Any] = peering.get_namespaced_custom_object(
                "kopf.dev", "v1", namespace, "kopfpeerings", release
            )
            return len(obj.get("status") or {}) == 2

        wait_until(both_registered, timeout=60, what="both replicas in the KopfPeering")

        def role(proc: OperatorProcess) -> str:
            """The replica's latest word on peering (reconciler/peering.py)."""
            said = [
                line
                for line in proc.logs().splitlines()
                if "this replica is the active one" in line or "standing by:" in line
            ]
            return "active" if said and "active one" in said[-1] else "standby"

        # Mandatory peering starts paused; only the highest priority replica reconciles (kopf's
        # watches and taskop's own reconciler alike), the other stands by.
        wait_until(
            lambda: sorted(role(p) for p in procs) == ["active", "standby"],
            timeout=60,
            what="one active replica and one standby",
        )
        tasks = Tasks(k8s, namespace)
        tasks.create(task_manifest("peered", kwok={"message": "one of two"}))
        status = tasks.wait_state("peered", "Completed", timeout=90)
        assert status["result"] == "one of two"
        (active,) = [p for p in procs if role(p) == "active"]
        (standby,) = [p for p in procs if role(p) == "standby"]
        assert readyz(active) == (200, "ready\n")
        code, text = readyz(standby)
        assert (code, text) == (503, "not ready: standby: another replica is the active one\n")

        # Hot standby: the active one stops (leaving the peering); the other takes over.
        active.stop()
        wait_until(lambda: role(standby) == "active", timeout=90, what="the standby to take over")
        assert readyz(standby) == (200, "ready\n")
        tasks.create(task_manifest("failover", kwok={"message": "the standby ran it"}))
        status = tasks.wait_state("failover", "Completed", timeout=90)
        assert status["result"] == "the standby ran it"
    finally:
        for p in procs:
            p.stop()
    logs = "".join(p.logs() for p in procs)
    for sign in ("Forbidden", "forbidden", "Traceback"):
        assert sign not in logs, logs[-5000:]
    assert "Pausing all operators" not in logs, "the replicas had the same priority"


def test_kustomize_deploy_creates_the_chart_defaults(
    helm: str, kubeconfig: str, chart_crds: None
) -> None:
    """`kubectl apply -k deploy/` makes exactly the objects `helm install` makes with defaults."""
    rendered = run_helm(
        helm,
        kubeconfig,
        "template",
        "taskop",
        str(CHART),
        "-n",
        "taskop-system",
        "--include-crds",
        "--skip-tests",
        f"--set={TLS}",  # as hack/gen-manifests renders deploy/
    )

    def key(d: dict[str, Any]) -> str:
        ns = d["metadata"].get("namespace")
        return f"{d['kind']}/{ns + '/' if ns else ''}{d['metadata']['name']}"

    expected = {key(d) for d in yaml.safe_load_all(rendered) if d} | {"Namespace/taskop-system"}
    built = kubectl(kubeconfig, "kustomize", str(ROOT / "deploy")).stdout
    assert {key(d) for d in yaml.safe_load_all(built) if d} == expected

    try:
        out = kubectl(kubeconfig, "apply", "-k", str(ROOT / "deploy"), "-o", "json").stdout
        applied = json.loads(out)
        items = applied["items"] if applied.get("kind") == "List" else [applied]
        assert {key(d) for d in items} == expected
        for d in items:  # each really exists now
            meta = d["metadata"]
            ns = ["-n", meta["namespace"]] if meta.get("namespace") else []
            kubectl(kubeconfig, "get", f"{d['kind']}/{meta['name']}", *ns, "-o", "name")
    finally:
        # Everything but the CRDs (other tests' Tasks live in them).
        kubectl(
            kubeconfig,
            "delete",
            "--ignore-not-found",
            "--wait=false",
            "-f",
            str(ROOT / "deploy" / "taskop.yaml"),
            "-f",
            str(ROOT / "deploy" / "namespace.yaml"),
            check=False,
        )
