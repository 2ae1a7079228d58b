"""Tasks that take credentials, configuration and data, in real containers on the real node:
examples/secret-config-task.yaml and examples/pvc-tasks.yaml, as a user applies them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from tests.kubeutil import kubectl
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def on_the_real_node(
    operator: OperatorFactory, tmp_path: Path, real_node: str, operator_image: str
) -> None:
    """The operator, with a profile that puts kubectl's Tasks (domain taskop) on the real node."""
    profiles = tmp_path / "profiles.yaml"
    template = {"nodeSelector": REAL_NODE_SELECTOR, "tolerations": [REAL_NODE_TOLERATION]}
    profiles.write_text(yaml.safe_dump({"domains": {"taskop": {"podTemplate": template}}}))
    operator.start(domain_profiles_file=profiles)


def test_a_task_reads_a_secret_from_env_and_file_and_a_configmap_file(
    on_the_real_node: None, kubeconfig: str, namespace: str, k8s: Any
) -> None:
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", str(EXAMPLES / "secret-config-task.yaml"))
    status = Tasks(k8s, namespace).wait_state("report-with-secrets", "Completed", timeout=180)
    digest = hashlib.sha256(b"s3cret-password").hexdigest()
    assert (status["failed"], status["result"]) == (False, f"{digest}\nhello from the config")
    assert "s3cret-password" not in str(status)


def test_a_task_writes_to_a_claim_that_a_second_task_reads(
    on_the_real_node: None, kubeconfig: str, namespace: str, k8s: Any, tmp_path: Path
) -> None:
    claim, writer, reader = yaml.safe_load_all((EXAMPLES / "pvc-tasks.yaml").read_text())
    volume = f"pv-{namespace}"[:63]
    client.CoreV1Api(k8s).create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Mi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(tmp_path / "pv"), "type": "DirectoryOrCreate"},
                "claimRef": {"namespace": namespace, "name": claim["metadata"]["name"]},
                "persistentVolumeReclaimPolicy": "Delete",
            },
        }
    )
    try:
        tasks = Tasks(k8s, namespace)
        kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", input_=yaml.safe_dump(claim))
        tasks.create(writer)
        assert tasks.wait_state("write-data", "Completed", timeout=180)["failed"] is False
        tasks.create(reader)
        status = tasks.wait_state("read-data", "Completed", timeout=180)
        assert (status["failed"], status["result"]) == (False, "written by write-data\n")
    finally:
        client.CoreV1Api(k8s).delete_persistent_volume(volume)
