"""A Task as a Glance v2 task: the one mapping, pure (no Kubernetes, no HTTP).

A Glance task is a Task with the label `TYPE_LABEL` (its TaskType), made by the Glance door:

- ``id`` is ``spec.guid`` (a UUID; the Task's name is the same string);
- ``status``: no state yet or Pending → ``pending``; Running → ``processing``; Completed or
  Resolving → ``success``, or ``failure`` when ``status.failed``;
- ``message`` is ``status.failureReason`` of a failed task, "" otherwise;
- ``result`` (only on success) is ``status.result`` (the TaskType's result file): a JSON object as
  it is, anything else (other JSON, text, nothing) wrapped as ``{"output": "<the text>"}``;
- ``owner`` is the identity that created it (annotation `OWNER_ANNOTATION`). ``input`` is not on
  the Task: anyone with the cluster's ``view`` role reads Tasks, and an input may hold secrets. It
  is in the Secret ``<task>-input`` (`taskop.glance.tasktypes`), owned by the Task (``uid``), and
  the door answers it from there in a task's GET (`full`, given the input), to callers who may
  see that task (`Sight`);
- ``created_at`` is the Task's creationTimestamp (it never changes: the reconciler initialising
  ``status.createdAt`` later must not move a task in a created_at listing); ``updated_at`` is
  ``status.updatedAt``, else the creationTimestamp;
  ``expires_at`` = ``status.firstCompletedAt`` + ``spec.ttlSecondsAfterFinished`` once final
  (the reconciler deletes the Task then); an expired task is not served (404, left out of lists).

Timestamps are whole seconds with ``Z``, as Glance writes them; sorting uses the same strings.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from taskop.domain.timefmt import format_seconds, parse_ns

TYPE_LABEL = "taskop.dev/glance-type"
OWNER_ANNOTATION = "taskop.dev/glance-owner"

STATUSES = ("pending", "processing", "success", "failure")
FINAL = ("success", "failure")
SCHEMA = "/v2/schemas/task"

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class GlanceTask:
    id: str
    type: str
    status: str
    owner: str
    created_at: str
    updated_at: str
    expires_at: str | None
    expires_ns: int | None
    message: str
    result_text: str | None
    """``status.result`` of a successful task; None otherwise (``result`` is null)."""
    uid: str = ""
    """The Task's uid (the owner its input Secret names)."""

    def expired(self, now_ns: int) -> bool:
        return self.expires_ns is not None and now_ns >= self.expires_ns

    def sparse(self) -> Obj:
        """A list item: no input, result or message (as Glance's list)."""
        item: Obj = {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "self": f"/v2/tasks/{self.id}",
            "schema": SCHEMA,
        }
        if self.expires_at is not None:
            item["expires_at"] = self.expires_at
        return item

    def full(self, input_: Obj | None) -> Obj:
        """The task as GET answers it, with ``input_`` (read from its Secret; None: unknown)."""
        return {
            **self.sparse(),
            "input": input_,
            "result": None if self.result_text is None else result_object(self.result_text),
            "message": self.message,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Sight:
    """Which tasks a caller sees, as Glance's ``task_get_all`` filters them: an admin every task
    (``owner`` None), anyone else only the tasks it owns (``owner`` its username). The door maps
    RBAC onto it (`taskop.glance.app`); a task not seen is answered as one that does not exist."""

    owner: str | None = None

    def sees(self, task: GlanceTask) -> bool:
        return self.owner is None or (bool(self.owner) and task.owner == self.owner)


EVERY_TASK = Sight()


def result_object(text: str) -> Obj:
    """The Glance ``result`` of a result file's ``text``: a JSON object as it is; anything else
    (a JSON array, string or number, non-JSON text, an empty file) as ``{"output": text}``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    return {"output": text}


def glance_status(status: Obj) -> str:
    state = status.get("state") or "Pending"
    if state == "Running":
        return "processing"
    if state in ("Completed", "Resolving"):
        return "failure" if status.get("failed") else "success"
    return "pending"


def _seconds(text: str | None) -> str | None:
    return format_seconds(parse_ns(text)) if text else None


def from_task(obj: Obj) -> GlanceTask | None:
    """The Glance task a Task object is, or None when it is not one (no type label)."""
    meta = obj.get("metadata") or {}
    type_ = (meta.get("labels") or {}).get(TYPE_LABEL)
    if not type_:
        return None
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    created = meta["creationTimestamp"]
    state = glance_status(status)
    expires_ns = None
    ttl = spec.get("ttlSecondsAfterFinished")
    if state in FINAL and status.get("firstCompletedAt") and ttl is not None:
        completed = parse_ns(status["firstCompletedAt"])
        expires_ns = (completed // 1_000_000_000 + int(ttl)) * 1_000_000_000
    return GlanceTask(
        id=str(spec.get("guid") or meta["name"]),
        type=str(type_),
        status=state,
        owner=str(annotations.get(OWNER_ANNOTATION, "")),
        created_at=_seconds(created) or "",
        updated_at=_seconds(status.get("updatedAt") or created) or "",
        expires_at=format_seconds(expires_ns) if expires_ns is not None else None,
        expires_ns=expires_ns,
        message=str(status.get("failureReason") or "") if state == "failure" else "",
        result_text=str(status.get("result") or "") if state == "success" else None,
        uid=str(meta.get("uid", "")),
    )
