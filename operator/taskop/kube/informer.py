"""Lean informers: LIST, then WATCH from the list's resourceVersion, forever.

Tasks (`taskop.kube.feed`), Jobs, pods and the Job controller's FailedCreate Events change many
times per Task; kopf's per-event machinery (memories, cause detection, handler invocation) is more
than a cache needs, so these streams are watched here, with server-side selectors, and fed straight
into the controller (and, for Tasks, the doors' views). Nodes too: a node deleted while no watch
ran is found missing from the next list (kopf's re-list reports nothing that went). kopf stays the
operator's framework: login, startup and cleanup, peering, probes.

A re-list (at start, after 410 Gone, after any failure) replaces what the controller holds for that
kind, as an informer's Replace does: objects that vanished meanwhile are dropped, not kept forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from taskop import metrics
from taskop.kube.client import Gone, Kube, Obj

Key = tuple[str, str]

log = logging.getLogger("taskop.informer")

WATCH_TIMEOUT_SECONDS = 300
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class Stream:
    kind: str  # jobs, pods, events
    label_selector: str | None
    field_selector: str | None
    replace: Callable[[AsyncIterator[Obj]], Awaitable[tuple[str, set[Key]]]]
    """Takes the pages of a LIST as the whole truth for this kind; returns its resourceVersion."""
    on_event: Callable[[str, Obj], None]  # ADDED, MODIFIED, DELETED
    on_broken: Callable[[], None] = lambda: None
    """The watch failed or expired: what was fed may be stale until the next LIST."""


SYNCED: dict[str, bool] = {}
"""Kind → listed and watching (False before the first LIST and while a watch is broken)."""


async def inform(kube: Kube, namespace: str | None, stream: Stream) -> None:
    """Run until cancelled."""
    backoff = BACKOFF_START
    where = {"kind": stream.kind, "namespace": namespace or "(all)"}
    SYNCED[stream.kind] = False
    while True:
        try:
            rv, _ = await stream.replace(
                kube.list_pages(
                    stream.kind, namespace, stream.label_selector, stream.field_selector
                )
            )
            SYNCED[stream.kind] = True
            backoff = BACKOFF_START
            while True:
                async for type_, obj in kube.watch(
                    stream.kind,
                    namespace,
                    rv,
                    WATCH_TIMEOUT_SECONDS,
                    label_selector=stream.label_selector,
                    field_selector=stream.field_selector,
                ):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if type_ in ("ADDED", "MODIFIED", "DELETED"):
                        stream.on_event(type_, obj)
        except Gone:
            SYNCED[stream.kind] = False
            stream.on_broken()
            metrics.WATCH_RESTARTS.labels(stream.kind).inc()
            log.info("watch expired (410 Gone); listing again", extra=where)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            SYNCED[stream.kind] = False
            stream.on_broken()
            metrics.WATCH_RESTARTS.labels(stream.kind).inc()
            log.warning(
                "watch failed; listing again in %.1fs", backoff, extra={**where, "error": str(e)}
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
