"""The taskstore API's tasks, kept current by a LIST + WATCH of the Tasks with a group label
(`taskop.kube.watch.keep_current`), plus every write's own response (read-your-writes), with the
id → task index the protocol reads by. An object is taken only when newer than the one held."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from taskop.kube.watch import replace_paged
from taskop.taskstore.model import StoreTask, from_task

Obj = dict[str, Any]
MAX_GONE = 10_000


class StoreView:
    def __init__(self) -> None:
        self._by_name: dict[str, StoreTask] = {}
        self._by_id: dict[int, StoreTask] = {}
        self._groups: defaultdict[str, dict[str, StoreTask]] = defaultdict(dict)
        self._gone: dict[str, int] = {}  # name → resourceVersion it was deleted at
        self.ready = False

    # --- reads
    def by_id(self) -> dict[int, StoreTask]:
        return self._by_id

    def get(self, task_id: int) -> StoreTask | None:
        return self._by_id.get(task_id)

    def group(self, name: str) -> list[StoreTask]:
        return list(self._groups.get(name, {}).values())

    def groups(self) -> list[str]:
        return sorted(g for g, tasks in self._groups.items() if tasks)

    def __len__(self) -> int:
        return len(self._by_name)

    # --- writes
    def replace_all(self, items: list[Obj]) -> None:
        replace_paged(self, items)

    def list_item(self, item: Obj) -> None:
        """One object of a LIST being read page by page (`taskop.kube.feed`)."""
        self.apply("ADDED", item)

    def list_end(self, names: set[str]) -> None:
        """The LIST's ``names`` are all there is: the rest is gone."""
        for name in [n for n in self._by_name if n not in names]:
            self._remove(name)
        self._gone.clear()
        self.ready = True

    def observe(self, obj: Obj) -> None:
        self.apply("MODIFIED", obj)

    def forget(self, name: str, resource_version: int) -> None:
        """Deleted by this process: gone from reads at once."""
        self._remove(name)
        self._gone[name] = resource_version
        while len(self._gone) > MAX_GONE:
            del self._gone[next(iter(self._gone))]

    def apply(self, type_: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        rv = int(meta.get("resourceVersion") or 0)
        held = self._by_name.get(name)
        if held is not None and held.id >= rv:
            return
        if name in self._gone and self._gone[name] >= rv and type_ != "ADDED":
            return
        if type_ == "DELETED":
            self._remove(name)
            return
        task = from_task(obj)
        self._remove(name)
        if task is not None:
            self._by_name[name] = task
            self._by_id[task.id] = task
            self._groups[task.group][name] = task

    def _remove(self, name: str) -> None:
        held = self._by_name.pop(name, None)
        if held is not None:
            self._by_id.pop(held.id, None)
            self._groups[held.group].pop(name, None)
            if not self._groups[held.group]:
                del self._groups[held.group]
