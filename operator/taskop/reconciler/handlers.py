"""kopf handlers: thin. kopf is the operator's framework (login, startup and cleanup, peering,
probes). Tasks, Jobs, pods, nodes and FailedCreate Events come through taskop's own lean
informers (`taskop.kube.informer`; Tasks through the one `taskop.kube.feed` the doors' views
share), where kopf's per-event machinery would cost more CPU and memory per Task than the rest of
the reconciler (see docs/design.md), and where a re-list replaces what was held (kopf's re-list
reports no object that went meanwhile: a node deleted then would never be seen lost).

No resource handler is registered, so kopf watches none of taskop's objects: it keeps no
progress annotations on them and adds no finalizer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

import kopf

from taskop.kube.client import Kube, load_api_client
from taskop.readiness import READINESS
from taskop.reconciler import peering
from taskop.reconciler.controller import Controller
from taskop.settings import Settings

registry = kopf.OperatorRegistry()
log = logging.getLogger("taskop.handlers")


@kopf.on.login(registry=registry)
def on_operator_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: its service account; elsewhere: $KUBECONFIG or ~/.kube/config.

    kopf's service-account login always dials https://kubernetes.default.svc (kopf
    _core/intents/piggybacking.py); like client-go's in-cluster config (and kubernetes_asyncio,
    which the rest of taskop uses), the API server is KUBERNETES_SERVICE_HOST:PORT when set.
    """
    info = kopf.login_with_service_account(**kwargs)
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if info is not None and host and port:
        host = f"[{host}]" if ":" in host else host
        info = dataclasses.replace(info, server=f"https://{host}:{port}")
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
async def on_operator_startup(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> None:
    taskop_settings: Settings = memo["settings"]
    settings.posting.enabled = False  # taskop records its own few Events (Kube.create_event)
    settings.watching.server_timeout = 300
    settings.networking.connect_timeout = 10
    settings.peering.lifetime = taskop_settings.peering_lifetime
    memo["kube"] = Kube(await load_api_client(memo.get("kubeconfig")))
    controller = Controller(memo["kube"], taskop_settings, memo["kube"].create_event)
    if peering_ := memo.get("peering"):
        # kopf pauses only its own watches: the reconciler follows the same peering (peering.py).
        def set_active(active: bool) -> None:
            controller.set_active(active)
            READINESS.active = active  # the BBS API and readiness follow the same verdict

        set_active(False)
        memo["peering_task"] = asyncio.create_task(
            peering.follow(
                memo["kube"],
                name=peering_["name"],
                namespace=taskop_settings.namespace or None,
                identity=peering_["identity"],
                priority=peering_["priority"],
                set_active=set_active,
            ),
            name="taskop-peering",
        )
    controller.start(memo["kube"], memo.get("feed"))
    memo["controller"] = controller
    log.info("taskop reconciler started")


@kopf.on.cleanup(registry=registry)
async def on_operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "peering_task" in memo:
        memo["peering_task"].cancel()
    if "controller" in memo:
        await memo["controller"].stop()
        await memo["kube"].close()
