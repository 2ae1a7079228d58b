"""One LIST + WATCH of Tasks per process, shared by everything that reads them.

The reconciler and the doors' views (BBS, Glance, taskstore) each kept their own Task watch: every
Task event was sent, decoded and held two or three times. The feed watches once (with
`taskop.kube.informer`) and hands each LIST and event to the reconciler and to every view of a
namespace it covers; a view of another namespace (an operator scoped to one namespace serving BBS
tasks of another) keeps its own watch (`watch_tasks`).

Invariant kept here: **every subscriber sees every LIST and event of its scope, from the first
LIST on.** The feed lists only once every expected subscriber is attached (``expect``), so no view
misses the first list; a subscriber that was not expected is refused, not silently left stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field

from aiohttp import web

from taskop.kube.client import Kube, Obj
from taskop.kube.informer import Key, Stream, inform
from taskop.kube.watch import PagedView, keep_current
from taskop.settings import Settings

log = logging.getLogger("taskop.feed")

FEED: web.AppKey[TaskFeed | None] = web.AppKey("task-feed")
"""Where a door's app keeps the feed its views subscribe to (None: a watch of their own)."""

Replace = Callable[[AsyncIterator[Obj]], Awaitable[tuple[str, set[Key]]]]
OnEvent = Callable[[str, Obj], None]


def doors(settings: Settings) -> list[str]:
    """The doors ``settings`` enable: "bbs", "glance", "taskstore"."""
    return [
        door
        for door, enabled in (
            ("bbs", settings.bbs_enabled),
            ("glance", settings.glance_enabled),
            ("taskstore", settings.taskstore_enabled and settings.profiles.taskstore_domain()),
        )
        if enabled
    ]


@dataclass
class _Subscriber:
    name: str
    namespace: str
    label: str | None  # a label key the view's Tasks carry (None: every Task of the namespace)
    view: PagedView

    def wants(self, body: Obj) -> bool:
        meta = body.get("metadata") or {}
        return meta.get("namespace") == self.namespace and (
            self.label is None or self.label in (meta.get("labels") or {})
        )


@dataclass
class TaskFeed:
    """The process's one Task watch: ``namespace`` None watches all namespaces."""

    namespace: str | None
    expect: Collection[str] = ()
    """Names of the subscribers the first LIST waits for ("reconciler", "bbs", …)."""
    _reconciler: tuple[Replace, OnEvent] | None = None
    _held: Callable[[Key], Obj | None] | None = None
    _views: list[_Subscriber] = field(default_factory=list)
    _attached: set[str] = field(default_factory=set)
    _all_attached: asyncio.Event = field(default_factory=asyncio.Event)
    _started: bool = False

    @classmethod
    def for_settings(cls, settings: Settings, *, reconciler: bool) -> TaskFeed:
        """The feed of a process: all of ``settings.namespace`` (all namespaces when empty) with
        the reconciler, else the doors' namespace; it waits for the doors it covers."""
        namespace = (settings.namespace or None) if reconciler else settings.bbs_namespace
        feed = cls(namespace)
        feed.expect = {"reconciler"} if reconciler else set()
        if feed.covers(settings.bbs_namespace):
            feed.expect |= set(doors(settings))
        return feed

    def covers(self, namespace: str) -> bool:
        return self.namespace is None or self.namespace == namespace

    def attach_reconciler(
        self, replace: Replace, on_event: OnEvent, held: Callable[[Key], Obj | None]
    ) -> None:
        """The reconciler: its cache takes every LIST and event first, and is the one copy of
        each Task the views read (`store_for`)."""
        self._reconciler = (replace, on_event)
        self._held = held
        self._attached_as("reconciler")

    def store_for(self, namespace: str) -> Callable[[str], Obj | None] | None:
        """A view's way to the Tasks the reconciler holds, when this feed has one (else None:
        the view keeps its own copy)."""
        if "reconciler" not in self.expect or not self.covers(namespace):
            return None

        def held(name: str) -> Obj | None:
            return self._held((namespace, name)) if self._held is not None else None

        return held

    def subscribe(self, name: str, namespace: str, label: str | None, view: PagedView) -> None:
        if not self.covers(namespace):
            raise ValueError(f"the Task feed of {self.namespace!r} does not cover {namespace!r}")
        self._views.append(_Subscriber(name, namespace, label, view))
        self._attached_as(name)

    def unsubscribe(self, view: PagedView) -> None:
        self._views = [s for s in self._views if s.view is not view]

    def _attached_as(self, name: str) -> None:
        if self._started:
            raise RuntimeError(
                f"{name} subscribed to the Task feed after its first LIST; add it to `expect`"
            )
        self._attached.add(name)
        if self._attached >= set(self.expect):
            self._all_attached.set()

    # --- the stream
    async def _replace(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        """A LIST, a page at a time to every subscriber: 100,000 Tasks are never all decoded at
        once (memory: the chart's 512 Mi holds them)."""
        listed: dict[int, set[str]] = {id(s): set() for s in self._views}
        views = list(self._views)

        async def tee() -> AsyncIterator[Obj]:
            async for page in pages:
                for body in page.get("items") or ():
                    for sub in views:
                        if sub.wants(body):
                            sub.view.list_item(body)
                            listed[id(sub)].add(body["metadata"]["name"])
                yield page

        result: tuple[str, set[Key]] = ("", set())
        if self._reconciler is not None:
            result = await self._reconciler[0](tee())
        else:
            async for page in tee():
                result = (result[0] or str(page["metadata"]["resourceVersion"]), set())
        for sub in views:
            sub.view.list_end(listed[id(sub)])
        return result

    def _event(self, type_: str, body: Obj) -> None:
        if self._reconciler is not None:
            self._reconciler[1](type_, body)
        for sub in self._views:
            if sub.wants(body):
                sub.view.apply(type_, body)
            elif (
                type_ == "MODIFIED"
                and (body.get("metadata") or {}).get("namespace") == sub.namespace
            ):
                # No longer matching its selector: gone from its view, as a server-side
                # selector's watch says (DELETED).
                sub.view.apply("DELETED", body)

    def _broken(self) -> None:
        for sub in self._views:
            sub.view.ready = False  # stale until the next LIST: readiness and Ping say so

    async def run(self, kube: Kube) -> None:
        """Until cancelled: wait for the expected subscribers, then LIST + WATCH."""
        if self.expect:
            await self._all_attached.wait()
        self._started = True
        log.info(
            "watching Tasks",
            extra={
                "namespace": self.namespace or "(all)",
                "for": sorted(self._attached),
            },
        )
        await inform(
            kube,
            self.namespace,
            Stream("tasks", None, None, self._replace, self._event, self._broken),
        )


async def watch_tasks(
    kube: Kube,
    feed: TaskFeed | None,
    name: str,
    namespace: str,
    view: PagedView,
    label: str | None = None,
) -> None:
    """Keep ``view`` equal to the Tasks of ``namespace`` (carrying label key ``label``) until
    cancelled: from ``feed`` when it covers the namespace, else with a watch of its own."""
    if feed is None or not feed.covers(namespace):
        await keep_current(kube, namespace, view, "tasks", label_selector=label)
        return
    feed.subscribe(name, namespace, label, view)
    try:
        await asyncio.Future()  # fed by the feed until cancelled
    finally:
        with contextlib.suppress(Exception):
            feed.unsubscribe(view)
