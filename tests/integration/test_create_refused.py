"""When Kubernetes refuses a Task's Job for good, or a NetworkPolicy of its name is someone
else's, the Task fails at once saying why: no retrying for ever, nothing of theirs touched."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster


def test_a_job_the_api_server_refuses_fails_the_task_with_its_message(
    operator: OperatorFactory, k8s: Any, namespace: str
) -> None:
    operator.start()
    tasks = Tasks(k8s, namespace)
    required = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    spec = {"podTemplate": {"affinity": {"nodeAffinity": required}}}
    tasks.create(task_manifest("refused", spec=spec))
    status = tasks.wait_state("refused", "Completed")
    assert status["failed"] is True
    assert status["failureReason"].startswith("invalid spec: Kubernetes refused its Job: ")
    assert "nodeSelectorTerms" in status["failureReason"]
    assert not client.BatchV1Api(k8s).list_namespaced_job(namespace).items


def test_a_foreign_network_policy_of_the_tasks_name_fails_it_untouched(
    operator: OperatorFactory, k8s: Any, namespace: str
) -> None:
    networking = client.NetworkingV1Api(k8s)
    foreign = networking.create_namespaced_network_policy(
        namespace,
        {
            "metadata": {"name": "sg"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        },
    )
    operator.start()
    tasks = Tasks(k8s, namespace)
    rule = {"protocol": "tcp", "destinations": ["10.0.0.1"], "ports": [443]}
    tasks.create(task_manifest("sg", spec={"egressRules": [rule]}))
    status = tasks.wait_state("sg", "Completed")
    assert status["failed"] is True
    assert status["failureReason"].startswith("NetworkPolicy sg exists and is not owned by this")
    assert not client.BatchV1Api(k8s).list_namespaced_job(namespace).items
    kept = networking.read_namespaced_network_policy("sg", namespace)
    assert kept.metadata.resource_version == foreign.metadata.resource_version
