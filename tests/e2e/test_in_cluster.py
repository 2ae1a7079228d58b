"""`helm install` as the README shows (plus hack/local-values.yaml) runs the operator as a pod of
its Deployment on the real node, from the image hack/build-image built; Tasks run in real
containers; the Go BBS client talks to it over mutual TLS; /metrics passes promtool; `helm
uninstall` leaves nothing but the CRDs.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.bbscerts import Certs, make_certs
from tests.conftest import ROOT
from tests.e2e.conftest import CHART
from tests.e2e.test_helm_chart import run_helm
from tests.kubeutil import kubectl, wait_until
from tests.tasks import Tasks, task_manifest

# The installed operator watches every namespace (and uses the host's ports): these tests have
# the cluster to themselves.
pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.exclusive]

LOCAL_VALUES = ROOT / "hack" / "local-values.yaml"
BBS_PORT, METRICS_PORT = 18889, 19102  # hack/local-values.yaml: the pod is on the host network


def tls_secret(kubeconfig: str, namespace: str, tmp_path: Path) -> Certs:
    """The BBS API's TLS Secret, as the README has the admin create it."""
    certs = make_certs(tmp_path / "certs")
    kubectl(
        kubeconfig,
        *("-n", namespace, "create", "secret", "generic", "taskop-bbs-tls"),
        f"--from-file=tls.crt={certs.server_cert}",
        f"--from-file=tls.key={certs.server_key}",
        f"--from-file=ca.crt={certs.ca}",
    )
    return certs


def test_helm_install_runs_the_operator_as_a_pod_on_the_real_node(
    helm: str,
    kubeconfig: str,
    namespace: str,
    chart_crds: None,
    k8s: client.ApiClient,
    real_node: str,
    operator_image: str,
    bbsconformance: Path,
    promtool: Path,
    tmp_path: Path,
) -> None:
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    release = f"taskop-{uuid.uuid4().hex[:6]}"
    operator_pods = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"

    # Without a TLS Secret (and without bbs.insecure) the install fails, saying what to set.
    refused = subprocess.run(
        [helm, f"--kubeconfig={kubeconfig}", "install", release, str(CHART), "-n", namespace],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "the BBS API needs mutual TLS: set bbs.tls.secretName" in refused.stderr

    certs = tls_secret(kubeconfig, namespace, tmp_path)
    kubectl(  # the client certificate `helm test` presents
        kubeconfig,
        *("-n", namespace, "create", "secret", "tls", "taskop-bbs-client"),
        f"--cert={certs.client_cert}",
        f"--key={certs.client_key}",
    )
    run_helm(
        helm,
        kubeconfig,
        *("install", release, str(CHART), "-n", namespace),
        "--set=bbs.tls.secretName=taskop-bbs-tls",
        "--set=tests.tlsSecretName=taskop-bbs-client",
        f"-f={LOCAL_VALUES}",
    )
    try:
        kubectl(
            kubeconfig,
            *("-n", namespace, "rollout", "status", f"deployment/{release}", "--timeout=180s"),
        )
        (pod,) = core.list_namespaced_pod(namespace, label_selector=operator_pods).items
        assert pod.spec.node_name == real_node
        assert pod.spec.containers[0].image == operator_image
        assert all(c.ready for c in pod.status.container_statuses)

        # kubectl apply of the example: its result comes from a real container on the real node.
        kubectl(
            kubeconfig, "-n", namespace, "apply", "-f", str(ROOT / "examples" / "hello-task.yaml")
        )
        status = Tasks(k8s, namespace).wait_state("hello", "Completed", timeout=180)
        assert (status["failed"], status["result"]) == (False, "hello world\n"), status
        ran_on = core.read_namespaced_pod(status["podName"], namespace).spec.node_name
        assert ran_on == real_node

        # The real Go BBS client over mutual TLS desires a task, reads it and sees it run.
        result = subprocess.run(
            [
                str(bbsconformance),
                *("-url", f"https://127.0.0.1:{BBS_PORT}", "-ca", str(certs.ca)),
                *("-cert", str(certs.client_cert), "-key", str(certs.client_key)),
                *("-domain", "taskop", "-scenario", "run-to-completion"),
                *("-expect-result", "hello", "-timeout", "150s"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "GOTOOLCHAIN": "local"},
        )
        logs = kubectl(kubeconfig, "-n", namespace, "logs", f"deployment/{release}").stdout
        assert result.returncode == 0, result.stdout + result.stderr + logs[-4000:]

        # The running pod's /metrics passes promtool.
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as r:
            text = r.read().decode()
        check = subprocess.run(
            [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert 'taskop_tasks{state="Completed"}' in text

        # `helm test` passes while the BBS API answers available=true, and fails when it is gone.
        run_helm(helm, kubeconfig, "test", release, "-n", namespace, "--timeout=120s")
        kubectl(kubeconfig, "-n", namespace, "scale", f"deployment/{release}", "--replicas=0")
        wait_until(
            lambda: (
                not core.list_namespaced_pod(
                    namespace, label_selector=f"app.kubernetes.io/instance={release}"
                ).items
            ),
            timeout=60,
            what="the operator pod to go",
        )
        failed = subprocess.run(
            [
                helm,
                f"--kubeconfig={kubeconfig}",
                "test",
                release,
                "-n",
                namespace,
                "--timeout=180s",
            ],
            capture_output=True,
            text=True,
        )
        assert failed.returncode != 0, failed.stdout + failed.stderr
    finally:
        run_helm(helm, kubeconfig, "uninstall", release, "-n", namespace, "--wait")

    # Nothing of the release is left but the CRDs (and what the admin made: the TLS Secret).
    selector = f"app.kubernetes.io/instance={release}"
    rbac = client.RbacAuthorizationV1Api(k8s)
    left = [
        *apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        *apps.list_namespaced_replica_set(namespace, label_selector=selector).items,
        *core.list_namespaced_service(namespace, label_selector=selector).items,
        *core.list_namespaced_config_map(namespace, label_selector=selector).items,
        *core.list_namespaced_service_account(namespace, label_selector=selector).items,
        *rbac.list_cluster_role(label_selector=selector).items,
        *rbac.list_cluster_role_binding(label_selector=selector).items,
        *rbac.list_namespaced_role(namespace, label_selector=selector).items,
        *rbac.list_namespaced_role_binding(namespace, label_selector=selector).items,
    ]
    assert [f"{type(o).__name__}/{o.metadata.name}" for o in left] == []
    wait_until(
        lambda: not core.list_namespaced_pod(namespace, label_selector=operator_pods).items,
        timeout=60,
        what="the operator pod to go",
    )
    assert client.ApiextensionsV1Api(k8s).read_custom_resource_definition("tasks.taskop.dev")


def test_helm_upgrade_rolls_the_operator_while_50_tasks_run_none_lost_none_run_twice(
    helm: str,
    kubeconfig: str,
    namespace: str,
    chart_crds: None,
    k8s: client.ApiClient,
    real_node: str,
    operator_image: str,
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(k8s)
    release = f"taskop-{uuid.uuid4().hex[:6]}"
    operator_pods = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    tls_secret(kubeconfig, namespace, tmp_path)
    install = ("-n", namespace, "--set=bbs.tls.secretName=taskop-bbs-tls", f"-f={LOCAL_VALUES}")
    run_helm(helm, kubeconfig, "install", release, str(CHART), *install)
    try:
        kubectl(kubeconfig, "-n", namespace, "rollout", "status", f"deployment/{release}")
        (before,) = core.list_namespaced_pod(namespace, label_selector=operator_pods).items
        tasks = Tasks(k8s, namespace)
        names = [f"t{i:02}" for i in range(50)]
        for name in names:  # on kwok nodes (their domain has no profile), 20 s each
            manifest = task_manifest(name, kwok={"duration": "20s", "message": f"ran {name}"})
            manifest["spec"]["domain"] = "kwok-tasks"
            tasks.create(manifest)
        wait_until(
            lambda: sum(tasks.status(n).get("state") == "Running" for n in names) >= 25,
            timeout=120,
            what="half of the Tasks to run",
        )

        # A changed value rolls the operator's pod while the Tasks are in flight.
        run_helm(
            helm, kubeconfig, "upgrade", release, str(CHART), *install, "--set=config.workers=16"
        )
        kubectl(kubeconfig, "-n", namespace, "rollout", "status", f"deployment/{release}")
        (after,) = core.list_namespaced_pod(namespace, label_selector=operator_pods).items
        assert after.metadata.uid != before.metadata.uid

        tasks.each_ran_once(names, result=lambda name: f"ran {name}")
    finally:
        run_helm(helm, kubeconfig, "uninstall", release, "-n", namespace, "--wait")
