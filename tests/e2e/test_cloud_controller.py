"""Cloud Controller's tasks run unchanged: the Go BBS client sends, over mutual TLS, the exact
TaskDefinitions CC sends for a Docker and a buildpack app task (tests/bbsconformance scenario
``cloud-controller``), and they run in real containers on the real node.

The domain profile of ``cf-tasks`` is the one the README shows: the node the tasks run on,
``preloaded:cflinuxfs4`` as busybox, the nodes' podPidsLimit (hack/node/kubelet.yaml), the CA
bundle for trusted_system_certificates_path and where downloads come from. The completion
callbacks go to a receiver that requires a client certificate, as CC's internal endpoint does.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.bbscerts import make_certs
from tests.callbacks import callback_receiver
from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from tests.e2e.test_bbs_conformance import start_bbs_with_mutual_tls
from tests.fileserver import FileServer, sha256
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

DOMAIN = "cf-tasks"
PUBLIC_NETWORKS = [
    ["0.0.0.0/5", "8.0.0.0/7"],
    [
        "11.0.0.0/8",
        "12.0.0.0/6",
        "16.0.0.0/4",
        "32.0.0.0/3",
        "64.0.0.0/2",
        "128.0.0.0/3",
        "160.0.0.0/5",
        "168.0.0.0/8",
        "169.0.0.0/9",
        "169.128.0.0/10",
        "169.192.0.0/11",
        "169.224.0.0/12",
        "169.240.0.0/13",
        "169.248.0.0/14",
        "169.252.0.0/15",
    ],
    ["169.255.0.0/16", "170.0.0.0/7", "172.0.0.0/12"],
    [
        "172.32.0.0/11",
        "172.64.0.0/10",
        "172.128.0.0/9",
        "173.0.0.0/8",
        "174.0.0.0/7",
        "176.0.0.0/4",
        "192.0.0.0/9",
        "192.128.0.0/11",
        "192.160.0.0/13",
    ],
    [
        "192.169.0.0/16",
        "192.170.0.0/15",
        "192.172.0.0/14",
        "192.176.0.0/12",
        "192.192.0.0/10",
        "193.0.0.0/8",
        "194.0.0.0/7",
        "196.0.0.0/6",
        "200.0.0.0/5",
        "208.0.0.0/4",
        "224.0.0.0/3",
    ],
]


def profiles(files: FileServer) -> dict[str, Any]:
    return {
        "domains": {
            DOMAIN: {
                "podTemplate": {
                    "nodeSelector": REAL_NODE_SELECTOR,
                    "tolerations": [REAL_NODE_TOLERATION],
                },
                "stacks": {"cflinuxfs4": "busybox"},
                "podPidsLimit": 1024,
                "trustedCertificates": {"configMap": "cf-system-certificates"},
                "allowEgressTo": [files.ip],
            }
        }
    }


def the_task(tasks: client.CustomObjectsApi, namespace: str, prefix: str) -> dict[str, Any]:
    for task in tasks.list_namespaced_custom_object("taskop.dev", "v1alpha1", namespace, "tasks")[
        "items"
    ]:
        if task["spec"]["guid"].startswith(prefix):
            return task  # type: ignore[no-any-return]
    return {}


def test_cloud_controllers_docker_and_buildpack_app_tasks_run_on_the_real_node(
    operator: OperatorFactory,
    bbsconformance: Path,
    tmp_path: Path,
    files: FileServer,
    operator_image: str,
    k8s: client.ApiClient,
    namespace: str,
) -> None:
    core, networking = client.CoreV1Api(k8s), client.NetworkingV1Api(k8s)
    custom = client.CustomObjectsApi(k8s)
    certs = make_certs(tmp_path / "certs")
    core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "cf-system-certificates"}, "data": {"ca.crt": certs.ca.read_text()}},
    )
    profile_file = tmp_path / "profiles.yaml"
    profile_file.write_text(yaml.safe_dump(profiles(files)))
    cancel_file = tmp_path / "cancel"

    with callback_receiver([200], tls=certs) as receiver:
        proc, tls = start_bbs_with_mutual_tls(
            operator,
            certs,
            callback_tls_cert_file=certs.client_cert,
            callback_tls_key_file=certs.client_key,
            callback_tls_ca_file=certs.ca,
            domain_profiles_file=profile_file,
        )
        program = subprocess.Popen(
            [
                str(bbsconformance),
                *tls,
                *("-domain", DOMAIN, "-scenario", "cloud-controller"),
                *("-rootfs", "docker:///busybox"),
                *("-download-url", files.url("droplet.tgz")),
                *("-download-sha256", sha256("droplet.tgz")),
                *("-dependency-url", files.url("lifecycle.tgz")),
                *("-callback-url", receiver.url.removesuffix("/callback")),
                *("-cancel-when", str(cancel_file), "-timeout", "150s"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GOTOOLCHAIN": "local"},
        )
        try:
            # While the long task runs: its Secrets, its NetworkPolicy, and no secret in the Task.
            def running() -> dict[str, Any]:
                task = the_task(custom, namespace, "conf-cloud-controller-cc-cancel")
                return task if (task.get("status") or {}).get("state") == "Running" else {}

            task = wait_until(running, timeout=150, what="the long CC task to run")
            name, uid = task["metadata"]["name"], task["metadata"]["uid"]
            secrets = {
                s.type: s
                for s in core.list_namespaced_secret(namespace).items
                if any(o.uid == uid for o in s.metadata.owner_references or [])
            }
            assert set(secrets) == {"kubernetes.io/dockerconfigjson", "Opaque"}
            for secret in secrets.values():
                assert [
                    (o.kind, o.name, o.controller) for o in secret.metadata.owner_references
                ] == [("Task", name, True)]
            as_json = json.dumps(task)
            assert "registry-s3cret" not in as_json and "db-s3cret" not in as_json
            check_network_policy(networking.read_namespaced_network_policy(name, namespace), files)
        finally:
            cancel_file.touch()
            stdout, stderr = program.communicate(timeout=300)
        lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        failed = [line for line in lines if not line.get("ok")]
        assert program.returncode == 0 and lines and not failed, (
            f"stdout:\n{stdout}\nstderr:\n{stderr}\noperator log:\n{proc.logs()[-4000:]}"
        )
    assert [str(line["check"]).removeprefix("cloud-controller/") for line in lines] == [
        "desire-docker-app-task",
        "desire-buildpack-app-task",
        "desire-long-docker-app-task",
        "list-r2-by-domain",
        "get-by-task-guid-r2",
        "docker-app-task-ran-and-is-gone",
        "buildpack-app-task-ran-and-is-gone",
        "long-task-runs",
        "cancel-the-long-task",
        "cancelled-task-is-gone-after-its-callback",
        "upsert-domain-cf-tasks",
    ]
    print(stdout)

    # Each callback carries what CC reads (failed, failure_reason), over mutual TLS.
    outcomes = {}
    for headers, body in receiver.requests:
        callback = json.loads(body)
        label = next(
            k for k in ("cc-docker", "cc-buildpack", "cc-cancel") if k in callback["task_guid"]
        )
        outcomes[label] = (callback["failed"], callback["failure_reason"])
        assert headers["content-type"] == "application/json"
    assert outcomes == {
        "cc-docker": (False, ""),
        "cc-buildpack": (False, ""),
        "cc-cancel": (True, "task was cancelled"),
    }
    wait_until(
        lambda: (
            not [
                s
                for s in core.list_namespaced_secret(namespace).items
                if s.type in ("kubernetes.io/dockerconfigjson", "Opaque")
            ]
        ),
        timeout=60,
        what="the garbage collector to delete the tasks' Secrets with them",
    )


def check_network_policy(policy: Any, files: FileServer) -> None:
    """CC's default security groups (public_networks, dns), field by field, after the profile's
    allowEgressTo (the file server the downloads come from)."""
    assert policy.spec.policy_types == ["Egress"]
    egress = [
        (
            [block.ip_block.cidr for block in rule.to],
            [(p.protocol, p.port, p.end_port) for p in rule.ports or []],
        )
        for rule in policy.spec.egress
    ]
    assert egress == [
        ([f"{files.ip}/32"], []),
        *[(cidrs, []) for cidrs in PUBLIC_NETWORKS],
        (["0.0.0.0/0"], [("TCP", 53, None)]),
        (["0.0.0.0/0"], [("UDP", 53, None)]),
    ]
