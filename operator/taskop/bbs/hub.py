"""Fan-out of task events to the SSE subscribers, without letting a slow client block the others.

Each subscriber has a bounded queue. Publishing never waits: a subscriber whose queue is full is
dropped (its stream ends; the Go client re-subscribes), and a warning is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from taskop.bbs import events, models

log = logging.getLogger("taskop.bbs")

DEFAULT_QUEUE_SIZE = 1024


@dataclasses.dataclass(eq=False)
class TaskEvent:
    """One task event; its SSE payloads are encoded once per version, on first use."""

    name: str  # events.TASK_CREATED | TASK_CHANGED | TASK_REMOVED
    task: models.Task  # the created/removed task, or the task after the change
    before: models.Task | None = None  # task_changed only
    _encoded: dict[bool, tuple[str, str]] = dataclasses.field(default_factory=dict)

    def encoded(self, v2: bool) -> tuple[str, str]:
        """(event name, base64 payload) for the V3 (``v2=False``) or downgraded V2 stream."""
        if v2 not in self._encoded:
            if self.name == events.TASK_CREATED:
                self._encoded[v2] = events.task_created(self.task, v2=v2)
            elif self.name == events.TASK_REMOVED:
                self._encoded[v2] = events.task_removed(self.task, v2=v2)
            else:
                assert self.before is not None
                self._encoded[v2] = events.task_changed(self.before, self.task, v2=v2)
        return self._encoded[v2]


class Subscriber:
    """One SSE connection's queue; ``None`` in it means: end the stream."""

    def __init__(self, v2: bool, queue_size: int) -> None:
        self.v2 = v2
        self.queue: asyncio.Queue[TaskEvent | None] = asyncio.Queue(queue_size)
        self.dropped = False

    def end(self, *, discard: bool = False) -> None:
        """Make `get` return None after the queued events (none of them when ``discard``)."""
        while discard and not self.queue.empty():
            self.queue.get_nowait()
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # shutting down: the oldest event makes room

    async def get(self) -> TaskEvent | None:
        return await self.queue.get()


class EventHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self.closed = False

    def subscribe(self, *, v2: bool) -> Subscriber:
        subscriber = Subscriber(v2, self.queue_size)
        if self.closed:
            subscriber.end()
        else:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: TaskEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(subscriber)
                subscriber.dropped = True
                subscriber.end(discard=True)
                log.warning(
                    "dropping a task event subscriber that fell %d events behind; "
                    "it has to subscribe again",
                    self.queue_size,
                    extra={"queue_size": self.queue_size},
                )

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed = True
        for subscriber in list(self._subscribers):
            subscriber.end()
        self._subscribers.clear()
