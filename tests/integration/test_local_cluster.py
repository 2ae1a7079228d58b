"""The local cluster is a real Kubernetes: API server, Job controller, scheduler and kwok nodes.

These tests prove the foundation every other test stands on, including that the kwok stages let a
test choose a pod's outcome (exit code, reason, termination message) through pod annotations.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.kubeutil import wait_until

pytestmark = pytest.mark.cluster


def test_api_server_answers_readyz(k8s: client.ApiClient) -> None:
    response = k8s.rest_client.request(
        "GET", f"{k8s.configuration.host}/readyz?verbose", headers={}
    )
    body = response.read().decode()
    assert response.status == 200
    assert "[+]etcd ok" in body
    assert body.rstrip().endswith("readyz check passed")


def test_a_crd_installs_and_its_custom_resource_reads_back(
    k8s: client.ApiClient, namespace: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.test.taskop.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(k8s)
    ext.create_custom_resource_definition(crd)
    try:
        wait_until(
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in (
                    ext.read_custom_resource_definition(f"widgets.{group}").status.conditions or []
                )
            ),
            timeout=30,
            what="the CRD to be established",
        )
        custom = client.CustomObjectsApi(k8s)
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        }
        wait_until(
            lambda: _try_create(custom, group, namespace, body),
            timeout=30,
            what="the widget to be created",
        )
        got = custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert got["spec"] == {"size": 3}
        assert got["metadata"]["uid"]
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def _try_create(custom: client.CustomObjectsApi, group: str, ns: str, body: dict[str, Any]) -> bool:
    try:
        custom.create_namespaced_custom_object(group, "v1", ns, "widgets", body)
    except client.ApiException as e:
        if e.status == 404:  # discovery of a just-established CRD can lag a moment
            return False
        raise
    return True


def _job(
    name: str, annotations: dict[str, str], termination_message_path: str | None = None
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox", "command": ["true"]}
    if termination_message_path:
        container["terminationMessagePath"] = termination_message_path
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def _finished(batch: client.BatchV1Api, ns: str, name: str) -> str | None:
    job = batch.read_namespaced_job_status(name, ns)
    for c in job.status.conditions or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return None


def _terminated(k8s: client.ApiClient, ns: str, job: str) -> client.V1ContainerStateTerminated:
    pods = client.CoreV1Api(k8s).list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    (status,) = pods[0].status.container_statuses
    assert status.state.terminated is not None, status.state
    return status.state.terminated


def test_a_job_whose_pod_is_told_to_succeed_completes(
    k8s: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(k8s)
    batch.create_namespaced_job(namespace, _job("ok", {"kwok.taskop.dev/duration": "1s"}))
    assert (
        wait_until(lambda: _finished(batch, namespace, "ok"), timeout=60, what="job ok")
        == "Complete"
    )
    assert _terminated(k8s, namespace, "ok").exit_code == 0


def test_a_job_whose_pod_is_told_to_fail_oomkilled_fails_with_that_exit_code_and_reason(
    k8s: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(k8s)
    annotations = {"kwok.taskop.dev/exit-code": "3", "kwok.taskop.dev/reason": "OOMKilled"}
    batch.create_namespaced_job(namespace, _job("oom", annotations))
    assert (
        wait_until(lambda: _finished(batch, namespace, "oom"), timeout=60, what="job oom")
        == "Failed"
    )
    terminated = _terminated(k8s, namespace, "oom")
    assert (terminated.exit_code, terminated.reason) == (3, "OOMKilled")


def test_a_termination_message_chosen_by_the_test_appears_in_the_pod_status(
    k8s: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(k8s)
    message = f"hello from {uuid.uuid4().hex}: quotes \" and 'colons: too'"
    job = _job("msg", {"kwok.taskop.dev/message": message}, termination_message_path="/tmp/result")
    batch.create_namespaced_job(namespace, job)
    assert (
        wait_until(lambda: _finished(batch, namespace, "msg"), timeout=60, what="job msg")
        == "Complete"
    )
    assert _terminated(k8s, namespace, "msg").message == message
