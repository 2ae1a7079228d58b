"""A Task as a taskstore task, and back. Pure.

A taskstore task is a Task of the domain whose profile says ``run: taskstore`` (one at most). It
never gets a Job: the reconciler leaves it alone. What taskstore knows lives in annotations, so
that one write (a create, or a merge patch with a resourceVersion precondition) changes it:

- ``group`` (`GROUP`, and the label `GROUP_LABEL` for selecting), ``data`` (`DATA`, opaque, at
  most `MAX_DATA_BYTES`), ``at`` (`AT`, when the task is next available, ns since the epoch) and
  ``ownerid`` (`OWNER`, the client holding it while ``at`` is in the future);
- ``id`` is the Task's resourceVersion: a number the API server raises on every change of the
  object, so every change gives the task a new, higher id, and holding an id proves you saw that
  exact version (it is also the precondition of the next write). Old ids are not found.

A task is **owned** while ``at`` > now and it has an owner, **available** when ``at`` ≤ now; no
reaper: an expired lease is free without a write. A task BBS has completed (cancelled) is gone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from taskop.domain.jobs import API_LABEL
from taskop.domain.names import label_value
from taskop.domain.owner import API_VERSION, KIND

PREFIX = "taskstore.taskop.dev/"
GROUP = PREFIX + "group"
GROUP_LABEL = PREFIX + "group"
DATA = PREFIX + "data"
AT = PREFIX + "at"
OWNER = PREFIX + "owner"
INTENT = PREFIX + "intent"
"""The intent (all-or-nothing update) that last wrote the task: how a replay knows it is done."""

MAX_DATA_BYTES = 64 * 1024
MAX_GROUP_LENGTH = 253
EXTERNAL_PATH = "<leased by a taskstore worker>"

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTask:
    name: str
    id: int
    group: str
    data: str
    at: int
    owner: int
    created: str = ""

    def owned(self, now: int) -> bool:
        return self.owner != 0 and self.at > now

    def available(self, now: int) -> bool:
        return self.at <= now

    def info(self) -> Obj:
        """The protocol's TaskInfo (``duration`` is the absolute ``at``, in ns)."""
        return {
            "id": self.id,
            "group": self.group,
            "data": self.data,
            "duration": self.at,
            "ownerid": self.owner,
        }


def from_task(obj: Obj) -> StoreTask | None:
    """The taskstore task a Task is; None when it is not one (or no longer: being deleted, or
    completed through BBS)."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if GROUP not in annotations or meta.get("deletionTimestamp"):
        return None
    if ((obj.get("status") or {}).get("state") or "Pending") not in ("Pending", "Running"):
        return None
    try:
        return StoreTask(
            name=str(meta["name"]),
            id=int(meta["resourceVersion"]),
            group=str(annotations[GROUP]),
            data=str(annotations.get(DATA, "")),
            at=int(annotations.get(AT) or 0),
            owner=int(annotations.get(OWNER) or 0),
            created=str(meta.get("creationTimestamp") or ""),
        )
    except (KeyError, ValueError):
        return None


def fields(group: str, data: str, at: int, owner: int, intent: str = "") -> dict[str, str]:
    values = {GROUP: group, DATA: data, AT: str(at), OWNER: str(owner)}
    if intent:
        values[INTENT] = intent
    return values


def new_task(
    name: str, domain: str, group: str, data: str, at: int, owner: int, intent: str = ""
) -> Obj:
    """The Task of an added taskstore task (no namespace)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "labels": {API_LABEL: "taskstore", GROUP_LABEL: label_value(group)},
            "annotations": fields(group, data, at, owner, intent),
        },
        "spec": {
            "guid": name,
            "domain": domain,
            "external": True,
            "image": "taskstore",
            "action": {"run": {"path": EXTERNAL_PATH}},
        },
    }


def change(task: StoreTask, group: str, data: str, at: int, owner: int, intent: str = "") -> Obj:
    """The merge patch that makes ``task`` (at its id) into the given values."""
    labels = {GROUP_LABEL: label_value(group)} if group != task.group else {}
    meta: Obj = {
        "resourceVersion": str(task.id),
        "annotations": fields(group, data, at, owner, intent),
    }
    if labels:
        meta["labels"] = labels
    return {"metadata": meta}


def timespec(value: int, now: int) -> int:
    """The protocol's TimeSpec: positive is an absolute time (ns), negative is relative to now,
    zero is now."""
    if value > 0:
        return value
    return now - value
