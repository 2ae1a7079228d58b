"""The one Task watch (`taskop.kube.feed`): the reconciler and every door's view get each LIST,
page by page, and each event of their scope; the feed lists only once all expected subscribers
are attached; a broken watch makes the views not ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskop.kube import informer
from taskop.kube.feed import TaskFeed, doors
from taskop.settings import Settings

Obj = dict[str, Any]


def task(name: str, ns: str = "ns", rv: int = 1, **labels: str) -> Obj:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": labels,
        },
        "spec": {},
    }


class Recorder:
    """A view that records what it was given."""

    def __init__(self) -> None:
        self.ready = False
        self.items: list[str] = []
        self.ends: list[set[str]] = []
        self.events: list[tuple[str, str]] = []
        self.pages_seen_before_end = 0

    def replace_all(self, items: list[Obj]) -> None:  # pragma: no cover - not the feed's path
        raise AssertionError("the feed hands LISTs over page by page")

    def list_item(self, obj: Obj) -> None:
        self.items.append(obj["metadata"]["name"])

    def list_end(self, names: set[str]) -> None:
        self.ends.append(names)
        self.ready = True

    def apply(self, type_: str, obj: Obj) -> None:
        self.events.append((type_, obj["metadata"]["name"]))


class Kube:
    """Two pages, then one watch that delivers ``events`` and fails."""

    def __init__(self, pages: list[list[Obj]], events: list[tuple[str, Obj]]) -> None:
        self.pages, self.events = pages, events
        self.lists = 0
        self.pages_read = 0
        self.watched = asyncio.Event()

    async def list_pages(self, kind: str, *args: Any) -> AsyncIterator[Obj]:
        assert kind == "tasks"
        self.lists += 1
        for i, items in enumerate(self.pages):
            self.pages_read += 1
            yield {"metadata": {"resourceVersion": "10", "continue": str(i)}, "items": items}

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, Obj]]:
        for event in self.events:
            yield event
        self.events = []
        self.watched.set()
        raise ConnectionError("watch broken")


async def run_until_watched(feed: TaskFeed, kube: Kube) -> None:
    runner = asyncio.create_task(feed.run(kube))  # type: ignore[arg-type]
    await asyncio.wait_for(kube.watched.wait(), 5)
    await asyncio.sleep(0)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_one_list_feeds_the_reconciler_and_each_view_its_own_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(informer, "BACKOFF_START", 60)  # one watch failure, then quiet
    pages = [
        [task("a"), task("g1", **{"taskop.dev/glance-type": "import"})],
        [task("other", ns="elsewhere"), task("g2", **{"taskop.dev/glance-type": "import"})],
    ]
    events = [
        ("MODIFIED", task("a", rv=11)),
        ("ADDED", task("g3", rv=12, **{"taskop.dev/glance-type": "import"})),
        ("MODIFIED", task("g1", rv=13)),  # its label gone: out of the Glance view
    ]
    kube = Kube(pages, events)
    feed = TaskFeed(None, expect={"reconciler", "bbs", "glance"})
    reconciler_pages: list[list[str]] = []
    reconciler_events: list[tuple[str, str]] = []

    async def replace(pages: AsyncIterator[Obj]) -> tuple[str, set[Any]]:
        async for page in pages:
            reconciler_pages.append([t["metadata"]["name"] for t in page["items"]])
        return "10", set()

    bbs, glance = Recorder(), Recorder()
    feed.subscribe("bbs", "ns", None, bbs)
    feed.subscribe("glance", "ns", "taskop.dev/glance-type", glance)
    feed.attach_reconciler(
        replace, lambda t, o: reconciler_events.append((t, o["metadata"]["name"])), lambda k: None
    )

    await run_until_watched(feed, kube)

    assert kube.lists == 1
    assert reconciler_pages == [["a", "g1"], ["other", "g2"]]  # every namespace of its scope
    assert bbs.items == ["a", "g1", "g2"] and bbs.ends == [{"a", "g1", "g2"}]
    assert glance.items == ["g1", "g2"] and glance.ends == [{"g1", "g2"}]
    assert reconciler_events == [("MODIFIED", "a"), ("ADDED", "g3"), ("MODIFIED", "g1")]
    assert bbs.events == [("MODIFIED", "a"), ("ADDED", "g3"), ("MODIFIED", "g1")]
    assert glance.events == [("DELETED", "a"), ("ADDED", "g3"), ("DELETED", "g1")]
    # the watch broke: what the views hold may be stale until the next LIST
    assert not bbs.ready and not glance.ready


async def test_the_first_list_waits_for_every_expected_subscriber() -> None:
    kube = Kube([[task("a")]], [])
    feed = TaskFeed("ns", expect={"reconciler", "bbs"})

    async def replace(pages: AsyncIterator[Obj]) -> tuple[str, set[Any]]:
        async for _ in pages:
            pass
        return "10", set()

    feed.attach_reconciler(replace, lambda t, o: None, lambda k: None)
    runner = asyncio.create_task(feed.run(kube))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert kube.lists == 0  # the BBS view is not attached yet: it would miss the LIST
    view = Recorder()
    feed.subscribe("bbs", "ns", None, view)
    await asyncio.wait_for(kube.watched.wait(), 5)
    assert view.ends == [{"a"}]
    with pytest.raises(RuntimeError, match="after its first LIST"):
        feed.subscribe("glance", "ns", None, Recorder())
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


def test_a_feed_covers_only_its_namespace() -> None:
    scoped = TaskFeed.for_settings(Settings(namespace="a", bbs_namespace="b"), reconciler=True)
    assert not scoped.covers("b") and scoped.expect == {"reconciler"}  # the doors watch their own
    with pytest.raises(ValueError, match="does not cover"):
        scoped.subscribe("bbs", "b", None, Recorder())
    everywhere = TaskFeed.for_settings(Settings(bbs_namespace="b"), reconciler=True)
    assert everywhere.covers("b") and everywhere.expect == {"reconciler", *doors(Settings())}
