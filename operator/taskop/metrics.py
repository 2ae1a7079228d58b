"""taskop's Prometheus metrics (prometheus_client), served on their own port.

Labels are low-cardinality by construction: states, condition reasons (a closed enum), callback
outcomes, route templates, BBS error types and watched kinds; never a Task's name or guid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from taskop.domain.states import ConditionType, TaskState
from taskop.domain.timefmt import parse_ns
from taskop.readiness import READINESS

REGISTRY = CollectorRegistry()
_DURATIONS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

TASK_PENDING_SECONDS = Histogram(
    "taskop_task_pending_seconds",
    "Seconds from a Task's creation to its pod running (Pending to Running).",
    buckets=_DURATIONS,
    registry=REGISTRY,
)
TASK_RUNNING_SECONDS = Histogram(
    "taskop_task_running_seconds",
    "Seconds from a Task's pod running to its completion (Running to Completed).",
    buckets=_DURATIONS,
    registry=REGISTRY,
)
TASK_COMPLETIONS = Counter(
    "taskop_task_completions",
    "Tasks completed, by failed and by the reason of their Completed condition.",
    ["failed", "reason"],
    registry=REGISTRY,
)
CALLBACK_DELIVERIES = Counter(
    "taskop_callback_deliveries",
    "Completion callbacks, by outcome (delivered, failed: every attempt failed).",
    ["outcome"],
    registry=REGISTRY,
)
RECONCILE_PASSES = Counter(
    "taskop_reconcile_passes", "Reconcile passes (read, decide, write).", registry=REGISTRY
)
RECONCILE_ERRORS = Counter(
    "taskop_reconcile_errors",
    "Reconcile passes that failed and were retried (conflicts included).",
    registry=REGISTRY,
)
WATCH_RESTARTS = Counter(
    "taskop_watch_restarts",
    "Watches listed again after expiring (410 Gone) or failing, by kind.",
    ["kind"],
    registry=REGISTRY,
)
BBS_REQUESTS = Counter(
    "taskop_bbs_requests",
    "BBS API requests, by route and BBS error type (none: answered without error).",
    ["route", "error"],
    registry=REGISTRY,
)
BBS_REQUEST_SECONDS = Histogram(
    "taskop_bbs_request_duration_seconds",
    "Seconds to answer a BBS API request, by route (event streams: how long they stayed open).",
    ["route"],
    registry=REGISTRY,
)


TASKSTORE_CLAIMS = Counter(
    "taskop_taskstore_claims",
    "taskstore claims, by outcome (claimed, empty: nothing available, refused).",
    ["outcome"],
    registry=REGISTRY,
)
TASKSTORE_UPDATES = Counter(
    "taskop_taskstore_updates",
    "taskstore updates, by outcome (applied, refused) and whether an intent was written.",
    ["outcome", "intent"],
    registry=REGISTRY,
)
TASKSTORE_REPLAYS = Counter(
    "taskop_taskstore_replays",
    "taskstore updates interrupted by a restart and applied again on start.",
    registry=REGISTRY,
)


class Live(Collector):
    """Gauges read at scrape time: Tasks by state (the reconciler's cache), queue depth, and the
    taskstore groups' statistics (groups are queues an admin's workers use: few, by design)."""

    def __init__(self) -> None:
        self.task_states: Callable[[], Mapping[str, int]] = dict
        self.queue_depth: Callable[[], int] = lambda: 0
        self.taskstore_groups: Callable[[], Mapping[str, Mapping[str, int]]] = dict

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = dict.fromkeys((s.value for s in TaskState), 0)
        for state, n in self.task_states().items():
            counts[state] = counts.get(state, 0) + n
        tasks = GaugeMetricFamily("taskop_tasks", "Tasks by state.", labels=["state"])
        for state, n in counts.items():
            tasks.add_metric([state], n)
        yield tasks
        yield GaugeMetricFamily(
            "taskop_queue_depth", "Tasks waiting for a reconcile pass.", value=self.queue_depth()
        )
        groups = GaugeMetricFamily(
            "taskop_taskstore_tasks",
            "taskstore tasks by group and kind: claimed (leased), available, future (not yet).",
            labels=["group", "kind"],
        )
        for group, stats in self.taskstore_groups().items():
            for kind in ("claimed", "available", "future"):
                groups.add_metric([group, kind], stats[kind])
        yield groups


LIVE = Live()
REGISTRY.register(LIVE)


def record_transition(old: Mapping[str, Any], new: Mapping[str, Any], now: float) -> None:
    """Observe a Task's status change from ``old`` to ``new`` (written at ``now``, seconds)."""
    before, after = old.get("state") or TaskState.PENDING.value, new.get("state")
    if after is None or after == before:
        return
    if after == TaskState.RUNNING.value and new.get("createdAt"):
        TASK_PENDING_SECONDS.observe(max(0.0, now - parse_ns(new["createdAt"]) / 1e9))
    if after == TaskState.COMPLETED.value:
        if before == TaskState.RUNNING.value and (started := _running_since(old)) is not None:
            TASK_RUNNING_SECONDS.observe(max(0.0, now - started))
        reason = _condition_reason(new, ConditionType.COMPLETED) or "Unknown"
        TASK_COMPLETIONS.labels(str(bool(new.get("failed"))).lower(), reason).inc()


def _running_since(status: Mapping[str, Any]) -> float | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == ConditionType.RUNNING and condition.get("status") == "True":
            return parse_ns(condition["lastTransitionTime"]) / 1e9
    return None


def _condition_reason(status: Mapping[str, Any], type_: str) -> str:
    for condition in status.get("conditions") or ():
        if condition.get("type") == type_:
            return str(condition.get("reason") or "")
    return ""


BBS_ERROR_KEY = web.RequestKey("taskop.bbs.error_type", str)
"""Request key where the BBS error middleware names the error type it answered."""


@web.middleware
async def bbs_request_metrics(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    started = time.perf_counter()
    route = "unmatched"
    try:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else route
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as e:
        request[BBS_ERROR_KEY] = f"HTTP {e.status}"
        raise
    finally:
        BBS_REQUESTS.labels(route, request.get(BBS_ERROR_KEY, "none")).inc()
        BBS_REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


async def _metrics(_: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _readyz(_: web.Request) -> web.Response:
    if failing := READINESS.failing():
        return web.Response(status=503, text="not ready: " + "; ".join(failing) + "\n")
    return web.Response(text="ready\n")


async def serve(address: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` and the readiness probe ``/readyz`` on ``address:port``; the caller
    cleans the runner up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/readyz", _readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
