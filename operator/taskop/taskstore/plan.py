"""Checks of a claim or an update against the tasks as they are, and the writes that apply it.
Pure: the caller passes the current tasks and the clock.

As in taskstore (``impl.go``): every referenced id must exist (dependencies, deletions, changes);
changes and deletions need a task that is free (``at`` ≤ now) or held by the requester; an add
needs a group; an empty update is a bug. Every unmet condition is collected, by cause, and any
one refuses the whole update. A changed task keeps its group; added and changed tasks are owned
by the requester (until their ``at``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taskop.taskstore.model import MAX_DATA_BYTES, MAX_GROUP_LENGTH, StoreTask, timespec

Obj = dict[str, Any]


@dataclasses.dataclass
class Refusal(Exception):
    """The protocol's TaskResponseError: ids by cause, and bad input."""

    changes: list[int] = dataclasses.field(default_factory=list)
    deletes: list[int] = dataclasses.field(default_factory=list)
    depends: list[int] = dataclasses.field(default_factory=list)
    owned: list[int] = dataclasses.field(default_factory=list)
    bugs: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes or self.deletes or self.depends or self.owned or self.bugs)

    def wire(self) -> Obj:
        """The keys the protocol's tags mean (``json:'changes'``, …; Go's client matches them
        case-insensitively). ``bugs`` are strings: the Go client cannot decode them into its
        ``[]error`` and reports that decode error instead — still an error, as intended."""
        return {
            "changes": self.changes,
            "deletes": self.deletes,
            "depends": self.depends,
            "owned": self.owned,
            "bugs": self.bugs,
        }


@dataclasses.dataclass(frozen=True)
class Add:
    group: str
    data: str
    at: int
    owner: int


@dataclasses.dataclass(frozen=True)
class Change:
    task: StoreTask  # as it is now (its id is the write's precondition)
    data: str
    at: int
    owner: int


@dataclasses.dataclass(frozen=True)
class Plan:
    """What an update writes: each a single object write with a precondition."""

    adds: Sequence[Add]
    changes: Sequence[Change]
    deletes: Sequence[StoreTask]

    def size(self) -> int:
        return len(self.adds) + len(self.changes) + len(self.deletes)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _info(raw: Any, where: str, bugs: list[str]) -> tuple[int, str, str, int] | None:
    """(id, group, data, timespec) of a TaskInfo; None (and a bug) when malformed."""
    if not isinstance(raw, dict):
        bugs.append(f"{where}: a task must be an object with id, group, data and duration")
        return None
    task_id, at = _int(raw.get("id", 0)), _int(raw.get("duration", 0))
    group, data = raw.get("group", ""), raw.get("data", "")
    if task_id is None or at is None or not isinstance(group, str) or not isinstance(data, str):
        bugs.append(f"{where}: id and duration must be integers, group and data strings")
        return None
    if len(data.encode("utf-8", "surrogateescape")) > MAX_DATA_BYTES:
        bugs.append(f"{where}: data is over {MAX_DATA_BYTES} bytes (taskop keeps it on the Task)")
        return None
    if len(group) > MAX_GROUP_LENGTH:
        bugs.append(f"{where}: group is over {MAX_GROUP_LENGTH} characters")
        return None
    return task_id, group, data, at


def ids(raw: Any, where: str, bugs: list[str]) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list) or any(_int(v) is None for v in raw):
        bugs.append(f"{where} must be a list of task ids (integers)")
        return []
    return list(raw)


def can_modify(task: StoreTask, client: int, now: int) -> bool:
    return task.owner == client or task.available(now)


def plan_update(request: Obj, tasks: Mapping[int, StoreTask], now: int) -> tuple[int, Plan]:
    """(client id, the plan) of an UpdateRequest; `Refusal` listing every unmet condition."""
    refusal = Refusal()
    client = _int(request.get("clientid", 0))
    if client is None:
        refusal.bugs.append("clientid must be an integer")
        client = 0
    depends = ids(request.get("depends"), "depends", refusal.bugs)
    deletes = ids(request.get("deletes"), "deletes", refusal.bugs)
    raw_adds, raw_updates = request.get("adds") or [], request.get("updates") or []
    if not isinstance(raw_adds, list) or not isinstance(raw_updates, list):
        refusal.bugs.append("adds and updates must be lists of tasks")
        raw_adds, raw_updates = [], []
    if not (deletes or raw_adds or raw_updates) and not refusal.bugs:
        refusal.bugs.append("empty update requested")
    refusal.depends = [i for i in depends if i not in tasks]
    planned_deletes: list[StoreTask] = []
    for task_id in deletes:
        task = tasks.get(task_id)
        if task is None:
            refusal.deletes.append(task_id)
        elif not can_modify(task, client, now):
            refusal.owned.append(task_id)
        else:
            planned_deletes.append(task)
    adds: list[Add] = []
    for i, raw in enumerate(raw_adds):
        info = _info(raw, f"adds[{i}]", refusal.bugs)
        if info is None:
            continue
        _, group, data, at = info
        if not group:
            refusal.bugs.append(f"adds[{i}]: adding a task with an empty group is not allowed")
            continue
        adds.append(Add(group, data, timespec(at, now), client))
    changes: list[Change] = []
    touched = {t.id for t in planned_deletes}
    for i, raw in enumerate(raw_updates):
        info = _info(raw, f"updates[{i}]", refusal.bugs)
        if info is None:
            continue
        task_id, _, data, at = info
        task = tasks.get(task_id)
        if task is None:
            refusal.changes.append(task_id)
        elif not can_modify(task, client, now):
            refusal.owned.append(task_id)
        elif task_id in touched:
            refusal.bugs.append(f"updates[{i}]: task {task_id} is changed or deleted twice")
        else:
            touched.add(task_id)
            changes.append(Change(task, data, timespec(at, now), client))
    if refusal:
        raise refusal
    return client, Plan(adds, changes, planned_deletes)


def pick(
    candidates: Sequence[StoreTask], choose: Callable[[int], int] = random.randrange
) -> StoreTask:
    """A claim's task among the available ones: at random among the oldest few (by ``at``,
    then age), so claims biased to the oldest do not all collide on one, and one bad task cannot
    block its group."""
    ordered = sorted(candidates, key=lambda t: (t.at, t.id))
    window = min(len(ordered), max(4, len(ordered) // 8))
    return ordered[choose(window)]
