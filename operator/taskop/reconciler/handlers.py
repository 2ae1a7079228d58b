"""kopf handlers: thin. Each watch event enqueues the Task it concerns; the engine does the rest.

Only ``on.event`` handlers are used, so kopf keeps no progress annotations on our objects and adds
no finalizer of its own (taskop manages ``taskop.dev/cleanup`` itself).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from taskop.domain.jobs import MANAGED_BY
from taskop.kube.client import GROUP, PLURAL, VERSION, Kube, load_api_client
from taskop.reconciler.engine import Engine
from taskop.reconciler.reconcile import TASK_NAME_ANNOTATION
from taskop.settings import Settings

registry = kopf.OperatorRegistry()
log = logging.getLogger("taskop.handlers")


def _post_event(task: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(task, type=type_, reason=reason, message=message[:1024])  # type: ignore[arg-type]


@kopf.on.login(registry=registry)
def on_operator_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: its service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
async def on_operator_startup(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    taskop_settings: Settings = memo["settings"]
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.networking.connect_timeout = 10
    memo["kube"] = Kube(await load_api_client(memo.get("kubeconfig")))
    memo["engine"] = Engine(memo["kube"], taskop_settings, _post_event)
    log.info("taskop reconciler started")


@kopf.on.cleanup(registry=registry)
async def on_operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "engine" in memo:
        await memo["engine"].close()
        await memo["kube"].close()


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_task_event(**kwargs: Any) -> None:
    if kwargs["type"] != "DELETED":
        kwargs["memo"]["engine"].enqueue(kwargs["namespace"], kwargs["name"])


def _owner_task(body: kopf.Body) -> str | None:
    for ref in body.metadata.get("ownerReferences", []):
        if ref.get("kind") == "Task" and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["name"])
    return None


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY, registry=registry)
async def on_job_event(**kwargs: Any) -> None:
    if task := _owner_task(kwargs["body"]):
        kwargs["memo"]["engine"].job_event(
            kwargs["namespace"], task, kwargs["type"], kwargs["body"]
        )


@kopf.on.event(
    "", "v1", "pods", annotations={TASK_NAME_ANNOTATION: kopf.PRESENT}, registry=registry
)
async def on_pod_event(**kwargs: Any) -> None:
    task = kwargs["annotations"][TASK_NAME_ANNOTATION]
    kwargs["memo"]["engine"].pod_event(kwargs["namespace"], task, kwargs["type"], kwargs["body"])


@kopf.on.event("", "v1", "nodes", registry=registry)
async def on_node_event(**kwargs: Any) -> None:
    if kwargs["type"] == "DELETED":
        kwargs["memo"]["engine"].node_deleted(kwargs["name"])
