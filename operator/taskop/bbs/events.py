"""Task events for the SSE streams (spec §8 item 9): (event name, base64 protobuf payload).

``/v1/events/tasks.r1`` carries V3 tasks; the deprecated ``/v1/events/tasks`` (r0) stream carries
them downgraded like the ``.r2`` routes: pass ``v2=True``.
"""

from __future__ import annotations

import base64

from taskop.bbs import models
from taskop.bbs.downgrade import downgrade_v2

TASK_CREATED = "task_created"
TASK_CHANGED = "task_changed"
TASK_REMOVED = "task_removed"

EVENT_STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"


def _version(task: models.Task, v2: bool) -> models.Task:
    return downgrade_v2(task) if v2 else task


def _payload(
    event: models.TaskCreatedEvent | models.TaskChangedEvent | models.TaskRemovedEvent,
) -> str:
    return base64.standard_b64encode(event.SerializeToString(deterministic=True)).decode("ascii")


def task_created(task: models.Task, *, v2: bool = False) -> tuple[str, str]:
    event = models.TaskCreatedEvent(task=_version(task, v2))
    return TASK_CREATED, _payload(event)


def task_changed(before: models.Task, after: models.Task, *, v2: bool = False) -> tuple[str, str]:
    event = models.TaskChangedEvent(before=_version(before, v2), after=_version(after, v2))
    return TASK_CHANGED, _payload(event)


def task_removed(task: models.Task, *, v2: bool = False) -> tuple[str, str]:
    event = models.TaskRemovedEvent(task=_version(task, v2))
    return TASK_REMOVED, _payload(event)


def format_sse(event_id: int, name: str, data: str) -> bytes:
    """One SSE frame as BBS writes it: ``id``, ``event``, ``data`` lines and a blank line."""
    return f"id: {event_id}\nevent: {name}\ndata: {data}\n\n".encode("ascii")
