"""A Glance door for a test: an operator serving it, ServiceAccount tokens and a small client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from tests.kubeutil import wait_until

TASKTYPES = ("taskop.dev", "v1alpha1", "tasktypes")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else ""


class GlanceClient:
    def __init__(self, port: int, token: str | None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("X-Auth-Token", self.token)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, headers, text = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            status, headers, text = e.code, dict(e.headers), e.read()
        return Answer(status, headers, json.loads(text) if text else None)

    def create(self, type_: str, input_: dict[str, Any]) -> dict[str, Any]:
        answer = self.call("POST", "/v2/tasks", {"type": type_, "input": input_})
        assert answer.status == 201, answer
        return dict(answer.body)

    def get(self, task_id: str) -> Answer:
        return self.call("GET", f"/v2/tasks/{task_id}")

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 120) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            answer = self.get(task_id)
            return (
                answer.body if answer.status == 200 and answer.body["status"] in statuses else None
            )

        found: dict[str, Any] = wait_until(reached, timeout=timeout, what=f"{task_id} {statuses}")
        return found


def wait_for_glance(port: int, token: str, timeout: float = 30) -> None:
    """Until the door answers a listing (its views are synced)."""
    glance = GlanceClient(port, token)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if glance.call("GET", "/v2/tasks").status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Glance API on port {port} did not answer a listing")
        time.sleep(0.2)


def service_account_token(k8s: Any, namespace: str, name: str, verbs: list[str] | None) -> str:
    """A token of a new ServiceAccount ``name``, allowed ``verbs`` on tasks in ``namespace``
    (None: no Role at all)."""
    core, rbac = client.CoreV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if verbs:
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": name},
                "rules": [{"apiGroups": ["taskop.dev"], "resources": ["tasks"], "verbs": verbs}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    request = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    return str(request.status.token)


def create_task_type(k8s: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        *TASKTYPES[:2],
        namespace,
        TASKTYPES[2],
        {
            "apiVersion": f"{TASKTYPES[0]}/{TASKTYPES[1]}",
            "kind": "TaskType",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
