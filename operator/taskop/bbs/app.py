"""The BBS compatible Tasks API: ``create_app(settings, kube)`` and `serve`.

The app owns its view of the Tasks (kept current by a LIST+WATCH of ``settings.bbs_namespace``'s
Tasks, and of its Secrets holding external tasks' definitions, label-selected), the event hub and
the write service; ``kube`` is the caller's, opened and closed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from taskop.bbs import routes_domains, routes_events, routes_tasks
from taskop.bbs.convert import DEFINITION_SECRET_SELECTOR
from taskop.bbs.hub import EventHub
from taskop.bbs.keys import HUB, KUBE, SERVICE, SETTINGS, VIEW
from taskop.bbs.middleware import active_only, bbs_errors
from taskop.bbs.service import TaskService
from taskop.bbs.tls import server_context
from taskop.bbs.view import TaskView
from taskop.kube.client import Kube
from taskop.kube.feed import FEED, TaskFeed, watch_tasks
from taskop.kube.watch import keep_current
from taskop.metrics import bbs_request_metrics
from taskop.readiness import READINESS
from taskop.serving import serve_app
from taskop.settings import Settings

log = logging.getLogger("taskop.bbs")

VIEW_NOT_SYNCED = "bbs: the view of the Tasks is not synced (listing, or its watch is broken)"
READY_TIMEOUT = 30.0
"""How long start-up waits for the first LIST before serving anyway (Ping says unavailable)."""


def create_app(settings: Settings, kube: Kube, feed: TaskFeed | None = None) -> web.Application:
    # Bodies are read by `http.read_body` with settings.bbs_max_body_bytes; this only bounds
    # aiohttp's own helpers, which taskop does not use.
    app = web.Application(
        middlewares=[bbs_request_metrics, bbs_errors, active_only],
        client_max_size=settings.bbs_max_body_bytes,
    )
    app[SETTINGS] = settings
    app[KUBE] = kube
    app[FEED] = feed
    app.add_routes(routes_tasks.routes)
    app.add_routes(routes_events.routes)
    app.add_routes(routes_domains.routes)
    app.cleanup_ctx.append(_tasks_view)
    app.on_shutdown.append(_end_streams)
    return app


async def _tasks_view(app: web.Application) -> AsyncIterator[None]:
    settings, kube = app[SETTINGS], app[KUBE]
    hub = EventHub()
    feed = app[FEED]
    view = TaskView(
        hub,
        watch_definitions=True,
        max_task_bytes=settings.max_task_bytes,
        store=feed.store_for(settings.bbs_namespace) if feed is not None else None,
    )
    app[HUB], app[VIEW] = hub, view
    app[SERVICE] = TaskService(kube, settings, view)
    watcher = asyncio.create_task(
        watch_tasks(kube, feed, "bbs", settings.bbs_namespace, view), name="taskop-bbs-watch"
    )
    definitions = asyncio.create_task(
        keep_current(
            kube,
            settings.bbs_namespace,
            view.definition_feed,
            kind="secrets",
            label_selector=DEFINITION_SECRET_SELECTOR,
        ),
        name="taskop-bbs-definitions-watch",
    )
    READINESS.add(
        "bbs: the view of the Tasks is not synced (listing, or its watch is broken)",
        lambda: view.ready,
    )
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while not view.ready and not watcher.done() and not definitions.done():
        if asyncio.get_running_loop().time() > deadline:
            log.warning("serving before the first list of tasks finished; Ping says unavailable")
            break
        await asyncio.sleep(0.05)
    yield
    READINESS.remove(VIEW_NOT_SYNCED)
    hub.close()
    for task in (watcher, definitions):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _end_streams(app: web.Application) -> None:
    app[HUB].close()


async def serve(settings: Settings, kube: Kube, feed: TaskFeed | None = None) -> None:
    """Serve the API until cancelled."""
    await serve_app(
        create_app(settings, kube, feed),
        "BBS API",
        settings.bbs_listen_address,
        settings.bbs_listen_port,
        server_context(settings),
        namespace=settings.bbs_namespace,
    )
