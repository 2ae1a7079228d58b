"""The taskstore HTTP JSON protocol, as its Go client (``entrogo.com/taskstore/service/client``
``HTTPClient``) speaks it, on its own listener (``TASKOP_TASKSTORE_*``):

    GET  /group                         the groups (names) holding tasks
    GET  /group/{name}?limit=N&owned=0|1 a group's tasks, oldest ``at`` first; without owned only
                                        the available ones (``at`` ≤ now)
    GET  /task/{id}                     one task (404 when the id is not a current one)
    GET  /tasks/{id},{id}               the tasks of those ids that are current, in that order
    POST /claim   {clientid, group, duration, depends}
    POST /update  {clientid, adds, updates, deletes, depends}
    GET  /stats                         per group: total, claimed, available, future (entroq's)
    GET  /time                          the server's clock, ns (entroq's guard against skew)

Claim and update answer HTTP 200 with ``{"tasks": [...], "error": null | {changes, deletes,
depends, owned, bugs}}``, task-store failures included, as the client expects. Times are ns
since the epoch; a TaskInfo's ``duration`` is its absolute ``at``. The protocol has no
authentication: the listener is loopback by default, and the chart keeps it off unless asked.
A standby replica answers every request 503 (the protocol's "unavailable", as while the view is
not synced): two replicas taking updates would break all-or-nothing
(`taskop.serving.active_only`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from taskop import metrics
from taskop.kube.client import Conflict, Kube, NotFound
from taskop.kube.feed import FEED, TaskFeed, watch_tasks
from taskop.readiness import READINESS
from taskop.serving import active_only, serve_app
from taskop.settings import Settings
from taskop.taskstore import plan
from taskop.taskstore.intents import MAX_INTENT_BYTES, Intents, intent_record
from taskop.taskstore.model import GROUP_LABEL, change, from_task
from taskop.taskstore.view import StoreView

log = logging.getLogger("taskop.taskstore")

SETTINGS = web.AppKey("settings", Settings)
KUBE = web.AppKey("kube", Kube)
NOT_READY = "taskstore: the view of its tasks is not synced, or interrupted updates not replayed"
CLAIM_ATTEMPTS = 8


class RWLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._writer and not self._waiting_writers)
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting_writers += 1
            await self._changed.wait_for(lambda: not self._writer and not self._readers)
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._changed:
                self._writer = False
                self._changed.notify_all()


class Door:
    def __init__(self, kube: Kube, settings: Settings, domain: str) -> None:
        self.kube = kube
        self.namespace = settings.bbs_namespace
        self.domain = domain
        self.view = StoreView()
        self.intents = Intents(kube, self.namespace)
        self.lock = RWLock()
        self.replayed = False

    @property
    def ready(self) -> bool:
        return self.view.ready and self.replayed

    # --- claim: one task, one write with its id as precondition
    async def claim(self, request: dict[str, Any]) -> dict[str, Any]:
        client = request.get("clientid", 0)
        group, duration = request.get("group", ""), request.get("duration", 0)
        bugs: list[str] = []
        depends = plan.ids(request.get("depends"), "depends", bugs)
        if not isinstance(client, int) or not isinstance(group, str) or not group:
            bugs.append("clientid must be an integer and group a non-empty string")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
            bugs.append("duration must be a positive number of nanoseconds")
        if bugs:
            metrics.TASKSTORE_CLAIMS.labels("refused").inc()
            return answer([], plan.Refusal(bugs=bugs))
        async with self.lock.shared():
            for _ in range(CLAIM_ATTEMPTS):
                now = time.time_ns()
                missing = [i for i in depends if self.view.get(i) is None]
                if missing:
                    metrics.TASKSTORE_CLAIMS.labels("refused").inc()
                    return answer([], plan.Refusal(depends=missing))
                free = [t for t in self.view.group(str(group)) if t.available(now)]
                if not free:
                    metrics.TASKSTORE_CLAIMS.labels("empty").inc()
                    return answer([], None)
                task = plan.pick(free)
                patch = change(task, task.group, task.data, now + duration, client)
                try:
                    obj = await self.kube.patch_task(self.namespace, task.name, None, patch)
                except NotFound:
                    self.view.forget(task.name, task.id)
                    continue
                except Conflict:
                    # Another claim (or writer) changed it first, and the watch has not shown
                    # that yet: read it, so the view is current, and pick again.
                    if (fresh := await self.kube.get_task(self.namespace, task.name)) is not None:
                        self.view.observe(fresh)
                    continue
                self.view.observe(obj)
                claimed = from_task(obj)
                metrics.TASKSTORE_CLAIMS.labels("claimed").inc()
                return answer([claimed.info()] if claimed else [], None)
        metrics.TASKSTORE_CLAIMS.labels("empty").inc()
        return answer([], None)

    # --- update: all or nothing
    async def update(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self.lock.exclusive():
            try:
                _, planned = plan.plan_update(request, self.view.by_id(), time.time_ns())
            except plan.Refusal as refusal:
                metrics.TASKSTORE_UPDATES.labels("refused", "false").inc()
                return answer([], refusal)
            record = intent_record(planned, self.domain)
            if len(record["data"]["writes"]) > MAX_INTENT_BYTES:
                too_big = (
                    f"the update is too large to commit at once (over {MAX_INTENT_BYTES} bytes)"
                )
                return answer([], plan.Refusal(bugs=[too_big + "; split it"]))
            committed = planned.size() > 1
            if committed:
                await self.intents.commit(record)
            results = await self.intents.apply(record, committed=committed)
            self._observe(record, results)
            written = results[: len(planned.adds) + len(planned.changes)]
            if not committed and written and written[0] is None:
                # The one write lost its precondition: someone outside the door changed it.
                ids = [c.task.id for c in planned.changes]
                return answer([], plan.Refusal(changes=ids))
            tasks = [from_task(obj) for obj in written if obj is not None]
            metrics.TASKSTORE_UPDATES.labels("applied", str(committed).lower()).inc()
            return answer([t.info() for t in tasks if t is not None], None)

    def _observe(self, record: dict[str, Any], results: list[dict[str, Any] | None]) -> None:
        """An update's writes, in the view at once: no read after it sees the state before."""
        for obj, deleted in zip(results, _deletes(record), strict=True):
            if obj is not None:
                self.view.observe(obj)
            elif deleted is not None:
                self.view.forget(*deleted)

    async def replay(self) -> None:
        """The updates a crash interrupted, applied whole before anything is served (after the
        view's first LIST, so that their writes land in the view too)."""
        async with self.lock.exclusive():
            replayed = await self.intents.replay()
            for record, results in replayed:
                self._observe(record, results)
            metrics.TASKSTORE_REPLAYS.inc(len(replayed))
            self.replayed = True


def _deletes(record: dict[str, Any]) -> list[tuple[str, int] | None]:
    writes = json.loads(record["data"]["writes"])
    return [(w["delete"], int(w["resourceVersion"])) if "delete" in w else None for w in writes]


DOOR = web.AppKey("door", Door)


def answer(tasks: list[dict[str, Any]], refusal: plan.Refusal | None) -> dict[str, Any]:
    return {"tasks": tasks, "error": refusal.wire() if refusal else None}


# --- routes
routes = web.RouteTableDef()


def _door(request: web.Request) -> Door:
    door: Door = request.app[DOOR]
    if not door.ready:
        raise web.HTTPServiceUnavailable(text="taskop is still reading its tasks; retry shortly")
    return door


async def _body(request: web.Request) -> dict[str, Any]:
    limit = request.app[SETTINGS].taskstore_max_body_bytes
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data))
    try:
        parsed = json.loads(data)
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"the body is not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return parsed


@routes.get("/group")
async def groups(request: web.Request) -> web.Response:
    door = _door(request)
    async with door.lock.shared():
        return web.json_response(door.view.groups())


@routes.get("/group/{name}")
async def group(request: web.Request) -> web.Response:
    door = _door(request)
    try:
        limit = int(request.query.get("limit", "0"))
        owned = request.query.get("owned", "0") not in ("0", "false", "")
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    async with door.lock.shared():
        now = time.time_ns()
        tasks = sorted(door.view.group(request.match_info["name"]), key=lambda t: (t.at, t.id))
        found = [t.info() for t in tasks if owned or t.available(now)]
    return web.json_response(found[:limit] if limit > 0 else found)


@routes.get("/task/{id}")
async def task(request: web.Request) -> web.Response:
    door = _door(request)
    async with door.lock.shared():
        found = door.view.get(_id(request.match_info["id"]))
    if found is None:
        raise web.HTTPNotFound(text=f"no task with id {request.match_info['id']}")
    return web.json_response(found.info())


@routes.get("/tasks/{ids}")
async def tasks(request: web.Request) -> web.Response:
    door = _door(request)
    wanted = [_id(part) for part in request.match_info["ids"].split(",") if part]
    async with door.lock.shared():
        found = [door.view.get(i) for i in wanted]
    return web.json_response([t.info() for t in found if t is not None])


def _id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{text!r} is not a task id (an integer)") from None


@routes.post("/claim")
async def claim(request: web.Request) -> web.Response:
    door = _door(request)
    return web.json_response(await door.claim(await _body(request)))


@routes.post("/update")
async def update(request: web.Request) -> web.Response:
    door = _door(request)
    return web.json_response(await door.update(await _body(request)))


@routes.get("/stats")
async def stats(request: web.Request) -> web.Response:
    door = _door(request)
    async with door.lock.shared():
        return web.json_response(group_stats(door.view, time.time_ns()))


@routes.get("/time")
async def server_time(request: web.Request) -> web.Response:
    return web.json_response({"time": time.time_ns()})


def group_stats(view: StoreView, now: int) -> dict[str, dict[str, int]]:
    """Per group: total, claimed (held by an owner), available (``at`` ≤ now) and future (not
    yet available, unowned)."""
    result: dict[str, dict[str, int]] = {}
    for name in view.groups():
        tasks = view.group(name)
        claimed = sum(1 for t in tasks if t.owned(now))
        available = sum(1 for t in tasks if t.available(now))
        result[name] = {
            "total": len(tasks),
            "claimed": claimed,
            "available": available,
            "future": len(tasks) - claimed - available,
        }
    return result


# --- the app
def create_app(
    settings: Settings, kube: Kube, domain: str, feed: TaskFeed | None = None
) -> web.Application:
    app = web.Application(
        middlewares=[active_only("taskstore API", lambda why: web.HTTPServiceUnavailable(text=why))]
    )
    app[SETTINGS], app[KUBE], app[FEED] = settings, kube, feed
    app[DOOR] = Door(kube, settings, domain)
    app.add_routes(routes)
    app.cleanup_ctx.append(_view)
    return app


async def _view(app: web.Application) -> AsyncIterator[None]:
    door, kube = app[DOOR], app[KUBE]
    watcher = asyncio.create_task(
        watch_tasks(kube, app[FEED], "taskstore", door.namespace, door.view, GROUP_LABEL),
        name="taskop-taskstore-watch",
    )
    READINESS.add(NOT_READY, lambda: door.ready)
    metrics.LIVE.taskstore_groups = lambda: group_stats(door.view, time.time_ns())
    replay = asyncio.create_task(_replay(door), name="taskop-taskstore-replay")
    yield
    READINESS.remove(NOT_READY)
    metrics.LIVE.taskstore_groups = dict
    for job in (watcher, replay):
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job


async def _replay(door: Door) -> None:
    """Interrupted updates are applied before anything is served, once the view has listed
    (retried until it works)."""
    delay = 0.05
    while True:
        if door.view.ready:
            try:
                await door.replay()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("replaying interrupted updates failed; retrying: %s", e)
                delay = min(max(delay, 0.25) * 2, 30)
        await asyncio.sleep(delay)


async def serve(settings: Settings, kube: Kube, feed: TaskFeed | None = None) -> None:
    """Serve the taskstore API until cancelled (only with a domain marked run: taskstore)."""
    domain = settings.profiles.taskstore_domain()
    assert domain is not None, "serve only with a domain profile that says run: taskstore"
    await serve_app(
        create_app(settings, kube, domain, feed),
        "taskstore API",
        settings.taskstore_listen_address,
        settings.taskstore_listen_port,
        namespace=settings.bbs_namespace,
        domain=domain,
    )
