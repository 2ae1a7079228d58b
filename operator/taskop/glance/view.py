"""What the Glance door serves reads from: its Tasks, their inputs and the TaskTypes, kept current
by a LIST + WATCH each (`taskop.kube.watch.keep_current`), never one API call per request.

`GlanceView` holds each Glance task (a Task with the type label) as a `GlanceTask`, by id; the
create path adds its own writes at once (`observe`), so a client reads what it just created. An
object is taken only when its resourceVersion is newer than the one held. The ascending order of
each sort key (of every task, or of one owner's) is computed once per change of the view and
reused by every listing until the next.

`Inputs` holds each task's input by the Task's uid, from the watch of the input Secrets (label
`INPUT_SECRET_SELECTOR`; the input is on no object the cluster's ``view`` role reads): GET
/v2/tasks/{id} answers it. The Task and its Secret come through two watches in no set order, and
the Secret is created just after the Task: until it is seen, a task's input is null. The create
path adds the Secret it just made at once (`observe`), so its creator reads it back.
"""

from __future__ import annotations

from typing import Any

from taskop.glance.listing import Sorted
from taskop.glance.model import GlanceTask, from_task
from taskop.glance.tasktypes import TaskTypeError, TaskTypeSpec, parse_task_type, secret_input
from taskop.kube.watch import replace_paged

Obj = dict[str, Any]


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class GlanceView:
    def __init__(self) -> None:
        self._tasks: dict[str, tuple[int, GlanceTask]] = {}  # id → (resourceVersion, task)
        self._ids: dict[str, str] = {}  # Task name → id
        self._sorted: dict[tuple[str, str | None], Sorted] = {}
        self.ready = False

    def get(self, task_id: str) -> GlanceTask | None:
        held = self._tasks.get(task_id)
        return held[1] if held else None

    def ordered(self, sort_key: str, owner: str | None = None) -> Sorted:
        """Every task (or ``owner``'s only) in ascending order of ``sort_key``."""
        cached = self._sorted.get((sort_key, owner))
        if cached is None:
            tasks = [t for _, t in self._tasks.values() if owner is None or t.owner == owner]
            cached = self._sorted[(sort_key, owner)] = Sorted.of(tasks, sort_key)
        return cached

    def __len__(self) -> int:
        return len(self._tasks)

    def types(self, owner: str | None = None) -> set[str]:
        """The types of the tasks held (or ``owner``'s): a type filter naming one is valid."""
        return {t.type for _, t in self._tasks.values() if owner is None or t.owner == owner}

    # --- writes
    def observe(self, obj: Obj) -> None:
        self.apply("MODIFIED", obj)

    def replace_all(self, items: list[Obj]) -> None:
        replace_paged(self, items)

    def list_item(self, item: Obj) -> None:
        """One object of a LIST being read page by page (`taskop.kube.feed`)."""
        self.apply("ADDED", item)

    def list_end(self, names: set[str]) -> None:
        """The LIST's ``names`` are all there is: the rest is gone."""
        for name in [n for n in self._ids if n not in names]:
            self._tasks.pop(self._ids.pop(name), None)
        self._sorted.clear()
        self.ready = True

    def apply(self, type_: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        if type_ == "DELETED" or meta.get("deletionTimestamp"):
            task_id = self._ids.pop(name, None)
            if task_id is not None:
                self._tasks.pop(task_id, None)
                self._sorted.clear()
            return
        task = from_task(obj)
        if task is None:
            return
        rv = _rv(obj)
        held = self._tasks.get(task.id)
        if held is not None and held[0] >= rv:
            return
        if (earlier := self._ids.get(name)) is not None and earlier != task.id:
            self._tasks.pop(earlier, None)  # an earlier Task of this name, deleted unseen
        self._tasks[task.id] = (rv, task)
        self._ids[name] = task.id
        self._sorted.clear()


class Inputs:
    """Task uid → its input, from the input Secrets (`taskop.glance.tasktypes.secret_input`)."""

    def __init__(self) -> None:
        self._inputs: dict[str, Obj] = {}
        self._uids: dict[str, str] = {}  # Secret name → the uid of its Task
        self.ready = False

    def get(self, task_uid: str) -> Obj | None:
        return self._inputs.get(task_uid) if task_uid else None

    def observe(self, secret: Obj) -> None:
        self.apply("ADDED", secret)

    def replace_all(self, items: list[Obj]) -> None:
        self._inputs.clear()
        self._uids.clear()
        for item in items:
            self.apply("ADDED", item)
        self.ready = True

    def apply(self, type_: str, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if type_ == "DELETED":
            if (uid := self._uids.pop(name, None)) is not None:
                self._inputs.pop(uid, None)
            return
        found = secret_input(obj)
        if found is None:
            return
        uid, input_ = found
        self._uids[name] = uid
        self._inputs[uid] = input_


class TaskTypes:
    """The TaskTypes of the door's namespace, by name (each parsed, or the reason it cannot be)."""

    def __init__(self) -> None:
        self._types: dict[str, TaskTypeSpec | TaskTypeError] = {}
        self.ready = False

    def get(self, name: str) -> TaskTypeSpec | TaskTypeError | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def replace_all(self, items: list[Obj]) -> None:
        self._types.clear()
        for item in items:
            self.apply("ADDED", item)
        self.ready = True

    def apply(self, type_: str, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if type_ == "DELETED":
            self._types.pop(name, None)
            return
        try:
            self._types[name] = parse_task_type(obj)
        except TaskTypeError as e:
            self._types[name] = e
