"""A Task's egress rules (BBS security groups) as its own NetworkPolicy, on the local cluster."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks, task_manifest

pytestmark = pytest.mark.cluster

DNS = [
    {"protocol": "tcp", "destinations": ["0.0.0.0/0"], "ports": [53]},
    {"protocol": "udp", "destinations": ["0.0.0.0/0"], "ports": [53]},
]
PRIVATE = {"protocol": "all", "destinations": ["10.0.0.0-10.255.255.255"]}


def test_a_tasks_pod_runs_under_its_own_egress_policy_which_goes_with_the_task(
    k8s: client.ApiClient, namespace: str, operator: OperatorFactory
) -> None:
    tasks = Tasks(k8s, namespace)
    networking, core = client.NetworkingV1Api(k8s), client.CoreV1Api(k8s)
    operator.start()
    task = tasks.create(task_manifest("sg", spec={"egressRules": [PRIVATE, *DNS]}))

    status = tasks.wait_state("sg", "Completed")
    assert status["failed"] is False
    policy = networking.read_namespaced_network_policy("sg", namespace)
    assert [(o.kind, o.uid, o.controller) for o in policy.metadata.owner_references] == [
        ("Task", task["metadata"]["uid"], True)
    ]
    assert policy.spec.policy_types == ["Egress"]
    assert [[b.ip_block.cidr for b in rule.to] for rule in policy.spec.egress] == [
        ["10.0.0.0/8"],
        ["0.0.0.0/0"],
        ["0.0.0.0/0"],
    ]
    assert [[(p.protocol, p.port) for p in rule.ports or []] for rule in policy.spec.egress] == [
        [],
        [("TCP", 53)],
        [("UDP", 53)],
    ]
    # It selects exactly the Task's pod.
    selector = ",".join(f"{k}={v}" for k, v in policy.spec.pod_selector.match_labels.items())
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    assert [p.metadata.name for p in pods] == [status["podName"]]

    tasks.custom.delete_namespaced_custom_object("taskop.dev", "v1alpha1", namespace, "tasks", "sg")
    wait_until(
        lambda: not networking.list_namespaced_network_policy(namespace).items,
        timeout=60,
        what="the garbage collector to delete the Task's NetworkPolicy",
    )


def test_an_icmp_rule_fails_the_task_naming_it_and_nothing_runs(
    k8s: client.ApiClient, namespace: str, operator: OperatorFactory
) -> None:
    tasks = Tasks(k8s, namespace)
    operator.start()
    icmp = {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}}
    tasks.create(task_manifest("ping", spec={"egressRules": [*DNS, icmp]}))

    status = tasks.wait_state("ping", "Completed")

    assert status["failed"] is True
    assert (
        "spec.egressRules[2]: icmp type 8 code 0 has no Kubernetes NetworkPolicy form"
        in (status["failureReason"])
    )
    assert not client.BatchV1Api(k8s).list_namespaced_job(namespace).items
    assert not client.NetworkingV1Api(k8s).list_namespaced_network_policy(namespace).items
