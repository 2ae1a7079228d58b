"""Keeps a `TaskView` current: LIST, then WATCH from the list's resourceVersion, for ever.

A 410 Gone (resourceVersion too old) lists again at once; other failures (API server down, broken
connections) list again after an exponential backoff (0.5 s doubling to 30 s). Meanwhile the view
is not ready (Ping false, readiness failing, reads refused): it may be stale.
"""

from __future__ import annotations

import asyncio
import logging

from taskop.bbs.view import TaskView
from taskop.kube.client import Gone, Kube

log = logging.getLogger("taskop.bbs")

WATCH_TIMEOUT_SECONDS = 300
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


async def keep_current(kube: Kube, namespace: str, view: TaskView) -> None:
    """Run until cancelled."""
    backoff = BACKOFF_START
    while True:
        try:
            listed = await kube.list_tasks(namespace)
            view.replace_all(listed.get("items") or [])
            rv = str(listed["metadata"]["resourceVersion"])
            log.debug("listed tasks", extra={"namespace": namespace, "tasks": len(view)})
            backoff = BACKOFF_START
            while True:
                async for type_, obj in kube.watch_tasks(namespace, rv, WATCH_TIMEOUT_SECONDS):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if type_ in ("ADDED", "MODIFIED", "DELETED"):
                        view.apply(type_, obj)
        except Gone:
            view.ready = False  # until the next LIST: Ping and readiness say so
            log.info("task watch expired (410 Gone); listing again", extra={"namespace": namespace})
        except asyncio.CancelledError:
            raise
        except Exception as e:
            view.ready = False  # stale while the watch is broken: Ping and readiness say so
            log.warning(
                "task watch failed; listing again in %.1fs: %s",
                backoff,
                e,
                extra={"namespace": namespace, "error": str(e)},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
