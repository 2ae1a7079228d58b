"""Helpers for tests that create Tasks and watch them through their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from tests.kubeutil import wait_until

GROUP, VERSION, PLURAL = "taskop.dev", "v1alpha1", "tasks"


def task_manifest(
    name: str,
    *,
    kwok: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Task running ``sh -c 'echo ...'``; its fake kwok pod behaves as ``kwok`` says."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {
            "name": name,
            "annotations": {f"kwok.taskop.dev/{k}": v for k, v in (kwok or {}).items()},
        },
        "spec": {
            "image": "busybox",
            "action": {"run": {"path": "sh", "args": ["-c", "echo hello world > /tmp/result"]}},
            "resultFile": "/tmp/result",
            **(spec or {}),
        },
    }


class Tasks:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return result

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise
        return result

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        task = self.get(name)
        return (task or {}).get("status") or {}

    def wait_state(self, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
        status: dict[str, Any] = wait_until(
            lambda: (s := self.status(name)).get("state") == state and s,
            timeout=timeout,
            what=f"task {name} to be {state}",
        )
        return status

    def wait_gone(self, name: str, timeout: float = 60) -> None:
        wait_until(
            lambda: self.get(name) is None, timeout=timeout, what=f"task {name} to be deleted"
        )

    def jobs(self) -> list[client.V1Job]:
        return list(self.batch.list_namespaced_job(self.namespace).items)

    def each_ran_once(self, names: list[str], result: Callable[[str], str]) -> None:
        """Each Task completes, succeeded, with its own result, from exactly one pod."""
        for name in names:
            status = self.wait_state(name, "Completed", timeout=180)
            assert (status["failed"], status["result"]) == (False, result(name)), (name, status)
            selector = f"taskop.dev/task={name}"
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
            assert len(pods.items) == 1, (name, [p.metadata.name for p in pods.items])
