"""A rate-limited work queue, as client-go's ``workqueue``: the one road from events to passes.

- A key is handed to one worker at a time; a key added while it is being processed is processed
  again afterwards (never dropped, never concurrent).
- ``add_after`` delays a key (timers: expiry, kicks, grace periods); the earliest due time wins.
  One timer serves them all, firing at most every ``TICK`` seconds: in a burst, every watch event
  delays its key by the coalescing delay, and a timer firing per key cost the operator more CPU
  than the keys' passes' decisions (a key is late by at most ``TICK``).
- ``add_rate_limited`` re-queues a key that failed, after ``base * 2**failures`` seconds capped at
  ``max_delay``, jittered; ``forget`` resets its failures after a pass that succeeded.
- ``shut_down`` stops handing out keys; passes in flight finish (``drain``).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
TICK = 0.02


class ShutDown(Exception):
    """The queue is shut down: no more keys."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 0.05,
        max_delay: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._rng = rng or random.Random()
        self._ready: collections.deque[K] = collections.deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()  # added while processing
        self._failures: dict[K, int] = {}
        self._timers: list[tuple[float, int, K]] = []  # (due, seq, key)
        self._due: dict[K, float] = {}
        self._seq = itertools.count()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # the armed timer and its due time (uvloop's call_at answers a plain Handle, without
        # when(), for a time already past)
        self._timer: asyncio.Handle | None = None
        self._timer_due = 0.0
        self._fired_at = float("-inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queued) + len(self._due)

    # --- adding
    def add(self, key: K) -> None:
        if self._shutting_down:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        if self._shutting_down:
            return
        due = asyncio.get_running_loop().time() + delay
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        heapq.heappush(self._timers, (due, next(self._seq), key))
        self._arm(due)

    def add_rate_limited(self, key: K) -> float:
        """Re-queue ``key`` after its backoff; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self.max_delay, self.base_delay * 2.0**failures)
        delay *= self._rng.uniform(0.8, 1.2)
        self.add_after(key, delay)
        return delay

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def cancel_timer(self, key: K) -> None:
        self._due.pop(key, None)

    # --- waking: one waiter per ready key, one timer for the earliest due key
    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _arm(self, due: float) -> None:
        due = max(due, self._fired_at + TICK)
        if self._timer is not None:
            if self._timer_due <= due:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)
        self._timer_due = due

    def _on_timer(self) -> None:
        self._timer = None
        now = self._fired_at = asyncio.get_running_loop().time()
        while self._timers:
            due, _, key = self._timers[0]
            if self._due.get(key) != due:
                heapq.heappop(self._timers)  # superseded or cancelled
                continue
            if due > now:
                self._arm(due)
                return
            heapq.heappop(self._timers)
            del self._due[key]
            self.add(key)

    # --- taking
    async def get(self) -> K:
        while True:
            if self._shutting_down:
                raise ShutDown
            if self._ready:
                key = self._ready.popleft()
                self._queued.discard(key)
                self._processing.add(key)
                self._idle.clear()
                return key
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the wake-up on
                raise

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
        if not self._processing:
            self._idle.set()

    # --- stopping
    def shut_down(self) -> None:
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self, grace: float) -> bool:
        """Wait until no pass is in flight; False when ``grace`` seconds were not enough."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            return False
        return True
