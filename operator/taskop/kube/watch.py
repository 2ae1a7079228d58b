"""Keeps an in-memory view current: LIST, then WATCH from the list's resourceVersion, for ever.

The BBS API's `TaskView`, the Glance door's view of its Tasks and its TaskTypes are each fed so.

A 410 Gone (resourceVersion too old) lists again at once; other failures (API server down, broken
connections) list again after an exponential backoff (0.5 s doubling to 30 s). Meanwhile the view
is not ready (Ping false, readiness failing, reads refused): it may be stale.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from taskop.kube.client import Gone, Kube

log = logging.getLogger("taskop.watch")

WATCH_TIMEOUT_SECONDS = 300
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class View(Protocol):
    ready: bool

    def replace_all(self, items: list[dict[str, Any]]) -> None: ...

    def apply(self, type_: str, obj: dict[str, Any]) -> None: ...


class PagedView(View, Protocol):
    """A view that takes a LIST page by page (`taskop.kube.feed`): never all of it at once."""

    def list_item(self, obj: dict[str, Any]) -> None: ...

    def list_end(self, names: set[str]) -> None: ...


def replace_paged(view: PagedView, items: list[dict[str, Any]]) -> None:
    """A whole LIST into a `PagedView`, as the feed hands one over page by page."""
    for item in items:
        view.list_item(item)
    view.list_end({item["metadata"]["name"] for item in items})


async def keep_current(
    kube: Kube,
    namespace: str,
    view: View,
    kind: str = "tasks",
    label_selector: str | None = None,
) -> None:
    """Keep ``view`` equal to the ``kind`` objects of ``namespace`` (matching ``label_selector``)
    until cancelled."""
    backoff = BACKOFF_START
    while True:
        try:
            listed = await kube.list_objects(kind, namespace, label_selector)
            view.replace_all(listed.get("items") or [])
            rv = str(listed["metadata"]["resourceVersion"])
            log.debug("listed %s", kind, extra={"namespace": namespace})
            backoff = BACKOFF_START
            while True:
                async for type_, obj in kube.watch(
                    kind, namespace, rv, WATCH_TIMEOUT_SECONDS, label_selector=label_selector
                ):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if type_ in ("ADDED", "MODIFIED", "DELETED"):
                        view.apply(type_, obj)
        except Gone:
            view.ready = False  # until the next LIST: Ping and readiness say so
            log.info(
                "%s watch expired (410 Gone); listing again", kind, extra={"namespace": namespace}
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            view.ready = False  # stale while the watch is broken: Ping and readiness say so
            log.warning(
                "%s watch failed; listing again in %.1fs: %s",
                kind,
                backoff,
                e,
                extra={"namespace": namespace, "error": str(e)},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
