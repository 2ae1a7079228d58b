"""All-or-nothing updates under a crash at every point: the real `Door` and `Intents` against a
small in-memory API server that crashes before (or just after) its n-th write. After the crash a
new door starts on the same state and replays; the result must be the whole update or none of it,
for every n. The real-cluster proof (SIGKILL) is tests/integration/test_taskstore_api.py."""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

import pytest

from taskop.kube.client import AlreadyExists, Conflict, NotFound
from taskop.settings import Settings
from taskop.taskstore.app import Door
from taskop.taskstore.model import new_task

Obj = dict[str, Any]
NOW = 2_000_000_000 * 10**9


class Crash(Exception):
    """The process died here."""


class FakeKube:
    """Tasks and ConfigMaps with resourceVersions from one counter and their preconditions."""

    def __init__(self) -> None:
        self.tasks: dict[str, Obj] = {}
        self.config_maps: dict[str, Obj] = {}
        self._rv = itertools.count(100)
        self.writes = 0
        self.crash_at: int | None = None
        self.crash_after = False

    def _write(self, apply: Any) -> Any:
        if self.crash_at is not None and self.writes == self.crash_at and not self.crash_after:
            raise Crash
        result = apply()
        self.writes += 1
        if self.crash_at is not None and self.writes - 1 == self.crash_at and self.crash_after:
            raise Crash  # the write happened; its answer was lost
        return result

    def _stamp(self, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(obj)

    async def create_config_map(self, namespace: str, body: Obj) -> Obj:
        return self._write(lambda: self.config_maps.setdefault(body["metadata"]["name"], body))

    async def delete_config_map(self, namespace: str, name: str) -> None:
        self._write(lambda: self.config_maps.pop(name, None))

    async def list_objects(self, kind: str, namespace: str, label_selector: str | None) -> Obj:
        assert kind == "configmaps"
        return {"items": copy.deepcopy(list(self.config_maps.values())), "metadata": {}}

    async def create_task(self, namespace: str, body: Obj) -> Obj:
        def apply() -> Obj:
            name = body["metadata"]["name"]
            if name in self.tasks:
                raise AlreadyExists(name)
            self.tasks[name] = copy.deepcopy(body)
            return self._stamp(self.tasks[name])

        return self._write(apply)

    async def patch_task(self, namespace: str, name: str, rv: str | None, patch: Obj) -> Obj:
        def apply() -> Obj:
            task = self.tasks.get(name)
            if task is None:
                raise NotFound(name)
            wanted = rv or patch["metadata"].get("resourceVersion")
            if wanted and wanted != task["metadata"]["resourceVersion"]:
                raise Conflict(name)
            for field in ("annotations", "labels"):
                task["metadata"].setdefault(field, {}).update(patch["metadata"].get(field, {}))
            return self._stamp(task)

        return self._write(apply)

    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None:
        def apply() -> None:
            task = self.tasks.get(name)
            if task is None:
                raise NotFound(name)
            if resource_version and resource_version != task["metadata"]["resourceVersion"]:
                raise Conflict(name)
            del self.tasks[name]

        self._write(apply)

    async def get_task(self, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.tasks.get(name))

    def state(self) -> list[tuple[str, str, str]]:
        """What a client can tell apart: (group, data, owner) of every task."""
        return sorted(
            (
                a["taskstore.taskop.dev/group"],
                a["taskstore.taskop.dev/data"],
                a["taskstore.taskop.dev/owner"],
            )
            for a in (t["metadata"]["annotations"] for t in self.tasks.values())
        )


def seeded() -> FakeKube:
    kube = FakeKube()
    for i in range(5):
        body = new_task(f"seed-{i}", "work", "g", f"seed-{i}", 0, 0)
        kube.tasks[body["metadata"]["name"]] = body
        kube._stamp(body)
    return kube


async def door_on(kube: FakeKube) -> Door:
    door = Door(kube, Settings(bbs_namespace="ns"), "work")  # type: ignore[arg-type]
    door.view.replace_all(copy.deepcopy(list(kube.tasks.values())))
    await door.replay()
    return door


def request(door: Door) -> Obj:
    ids = {t.data: t.id for t in door.view.group("g")}
    return {
        "clientid": 7,
        "adds": [{"group": "g", "data": "new-0"}, {"group": "h", "data": "new-1"}],
        "updates": [
            {"id": ids["seed-0"], "data": "changed-0"},
            {"id": ids["seed-1"], "data": "changed-1"},
        ],
        "deletes": [ids["seed-2"]],
    }


async def outcomes() -> tuple[list[Any], list[Any], int]:
    none = seeded().state()
    kube = seeded()
    door = await door_on(kube)
    answer = await door.update(request(door))
    assert answer["error"] is None and len(answer["tasks"]) == 4
    return none, kube.state(), kube.writes


@pytest.mark.parametrize("after", [False, True], ids=["before-the-write", "answer-lost"])
def test_a_crash_at_any_write_ends_with_all_of_the_update_or_none(after: bool) -> None:
    async def scenario() -> None:
        none, whole, writes = await outcomes()
        assert whole != none and writes == 1 + 5 + 1  # intent, 5 writes, intent deleted
        seen = set()
        for n in range(writes):
            kube = seeded()
            door = await door_on(kube)
            kube.crash_at, kube.crash_after = n, after
            with pytest.raises(Crash):
                await door.update(request(door))
            kube.crash_at = None
            await door_on(kube)  # a new process: replays what the crash left
            assert kube.state() in (none, whole), f"crash at write {n}: half an update"
            assert not kube.config_maps, f"crash at write {n}: an intent left behind"
            seen.add("whole" if kube.state() == whole else "none")
        assert seen == ({"none", "whole"} if not after else {"whole"})

    asyncio.run(scenario())


def test_a_single_write_needs_no_intent() -> None:
    async def scenario() -> None:
        kube = seeded()
        door = await door_on(kube)
        task = door.view.group("g")[0]
        answer = await door.update({"clientid": 7, "updates": [{"id": task.id, "data": "x"}]})
        assert answer["error"] is None and kube.writes == 1 and not kube.config_maps

    asyncio.run(scenario())
