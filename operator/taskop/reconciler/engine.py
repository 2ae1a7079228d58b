"""Runs reconcile passes: one at a time per Task, coalesced, retried on conflicts, rescheduled.

Watch events (Task, Job, Pod) only *enqueue* a Task; the pass itself re-reads everything. A Task
whose pass is running when new events arrive gets exactly one more pass afterwards. Passes that
ask to look again later (expiry, kicks, image-pull grace) get a timer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import aiohttp

from taskop.kube.client import Conflict, Kube, NotFound, Obj
from taskop.reconciler.callbacks import deliver
from taskop.reconciler.observed import Observed
from taskop.reconciler.reconcile import Plan, TaskReconciler
from taskop.settings import Settings

log = logging.getLogger("taskop.engine")

Key = tuple[str, str]
EventSink = Callable[[Obj, str, str, str], None]  # (task, type, reason, message)


class Engine:
    def __init__(
        self, kube: Kube, settings: Settings, events: EventSink, concurrency: int = 64
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.observed = Observed()
        self.reconciler = TaskReconciler(kube, settings, self.observed)
        self.events = events
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._cells: dict[str, set[Key]] = {}  # node → Running tasks on it
        self.passes = 0
        self.coalesce = 0.05  # seconds

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._running.values()):
            task.cancel()
        if self._session:
            await self._session.close()

    def job_event(self, namespace: str, task: str, event_type: str | None, body: Obj) -> None:
        self.observed.job_event((namespace, task), event_type, body)
        self.enqueue(namespace, task)

    def pod_event(self, namespace: str, task: str, event_type: str | None, body: Obj) -> None:
        self.observed.pod_event((namespace, task), event_type, body)
        self.enqueue(namespace, task)

    def enqueue(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key in self._running:
            self._dirty.add(key)
            return
        self._running[key] = asyncio.get_running_loop().create_task(self._run(key))

    def _schedule(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        existing = self._timers.get(key)
        if existing is not None and not existing.cancelled():
            if existing.when() <= when:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(*key)

    async def _run(self, key: Key) -> None:
        try:
            # A Task, its Job and its pod change in quick bursts: let a burst arrive, then look
            # once (events during the wait only mark the key dirty).
            await asyncio.sleep(self.coalesce)
            while True:
                self._dirty.discard(key)
                async with self._slots:
                    await self._pass(key)
                if key not in self._dirty:
                    break
        finally:
            self._running.pop(key, None)

    async def _pass(self, key: Key) -> None:
        namespace, name = key
        for attempt in range(8):
            self.passes += 1
            try:
                task, plan = await self.reconciler.reconcile(namespace, name)
            except (Conflict, NotFound):
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
                continue
            except Exception:
                log.exception(
                    "reconcile failed; retrying in 5s", extra={"task": f"{namespace}/{name}"}
                )
                self._schedule(key, 5.0)
                return
            await self._carry_out(key, task, plan)
            return
        log.warning("too many conflicts; retrying in 1s", extra={"task": f"{namespace}/{name}"})
        self._schedule(key, 1.0)

    def node_deleted(self, node: str) -> None:
        """A node is gone: its Running tasks fail ("cell disappeared before completion")."""
        self.reconciler.lost_cells.add(node)
        for key in list(self._cells.get(node, ())):
            self.enqueue(*key)

    def _track_cell(self, key: Key, task: Obj | None) -> None:
        status = (task or {}).get("status") or {}
        cell = status.get("cellId") if status.get("state") == "Running" else None
        for node, keys in list(self._cells.items()):
            if node != cell:
                keys.discard(key)
                if not keys:
                    del self._cells[node]
        if cell:
            self._cells.setdefault(cell, set()).add(key)

    async def _carry_out(self, key: Key, task: Obj | None, plan: Plan) -> None:
        if task is None:
            self._track_cell(key, None)
            self.observed.forget(key)
            timer = self._timers.pop(key, None)
            if timer:
                timer.cancel()
            return
        self._track_cell(key, task)
        for type_, reason, message in plan.events:
            self.events(task, type_, reason, message)
        if plan.deliver_callback:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            delivered = await deliver(self.kube, self._session, self.settings, task)
            if delivered:
                return
            self._schedule(key, self.settings.kick_task_duration + 0.01)
        if plan.recheck_in is not None:
            self._schedule(key, plan.recheck_in + 0.01)
