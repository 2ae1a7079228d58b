"""All-or-nothing updates of many Tasks, which Kubernetes cannot write in one transaction.

The design (README, "The taskstore API"):

1. **Lock.** An update holds the door's exclusive lock from its checks to its last write; claims
   and reads hold the shared side. taskop runs one active replica (kopf peering), so no other
   writer inside the door exists, and no reader inside it ever sees a half-applied update.
2. **Check** every condition against the view (`plan.plan_update`); any failure refuses all of it.
3. **Intent.** An update of more than one task is first written whole, in one API call, as a
   ConfigMap labelled `INTENT_LABEL`: every create (with its name), every change (with the
   resourceVersion it was checked at) and every delete. Its creation is the commit point: before
   it nothing is written; after it, the update will be applied in full.
4. **Apply.** Each write is a single-object write with a precondition (a create of a fresh name,
   a merge patch or a delete at the checked resourceVersion), marking the task with the intent's
   id (annotation `model.INTENT`). Then the intent is deleted.
5. **Replay.** On start, before serving, every intent left by a crash is applied again: a
   create that exists already, a patch whose task carries the intent's mark, a delete whose task
   is gone, each counts as done. So a crash anywhere ends with all of the update or none of it.

Outside the guarantee: writers that do not go through the door (kubectl patching a task between
the check and the write): their change wins, the intent's write to that task is skipped, and the
skip is logged as an error naming the task.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from taskop.kube.client import AlreadyExists, Conflict, Kube, NotFound
from taskop.taskstore.model import INTENT, change, new_task
from taskop.taskstore.plan import Plan

log = logging.getLogger("taskop.taskstore")

INTENT_LABEL = "taskstore.taskop.dev/intent"
MAX_INTENT_BYTES = 900 * 1024
"""An intent is one ConfigMap, and a ConfigMap holds at most 1 MiB."""
Obj = dict[str, Any]


def intent_record(plan: Plan, domain: str, intent: str = "") -> Obj:
    """The intent of ``plan``: its ConfigMap (no namespace), with the writes it stands for."""
    intent = intent or secrets.token_hex(8)
    writes: list[Obj] = []
    for i, add in enumerate(plan.adds):
        body = new_task(f"ts-{intent}-{i}", domain, add.group, add.data, add.at, add.owner, intent)
        writes.append({"create": body})
    for c in plan.changes:
        patch = change(c.task, c.task.group, c.data, c.at, c.owner, intent)
        writes.append({"patch": c.task.name, "resourceVersion": str(c.task.id), "body": patch})
    for task in plan.deletes:
        writes.append({"delete": task.name, "resourceVersion": str(task.id)})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"taskop-intent-{intent}", "labels": {INTENT_LABEL: intent}},
        "data": {"writes": json.dumps(writes, separators=(",", ":"))},
    }


class Intents:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def commit(self, record: Obj) -> None:
        """The commit point: the intent, in one write."""
        await self.kube.create_config_map(self.namespace, record)

    async def apply(self, record: Obj, *, committed: bool = True) -> list[Obj | None]:
        """Every write of the intent (again, after a crash); the Tasks after them (None for a
        delete, or a write skipped). Then the intent is gone. ``committed=False``: a single
        write, which needs no intent record (one object's write is atomic)."""
        intent = record["metadata"]["labels"][INTENT_LABEL]
        results = [await self._write(intent, w) for w in json.loads(record["data"]["writes"])]
        if committed:
            await self.kube.delete_config_map(self.namespace, record["metadata"]["name"])
        return results

    async def replay(self) -> list[tuple[Obj, list[Obj | None]]]:
        """Apply every intent a crash left: each, with the Tasks after its writes."""
        listed = await self.kube.list_objects("configmaps", self.namespace, INTENT_LABEL)
        replayed = []
        for record in listed.get("items") or []:
            log.warning(
                "replaying an update interrupted by a restart",
                extra={"intent": record["metadata"]["labels"][INTENT_LABEL]},
            )
            replayed.append((record, await self.apply(record)))
        return replayed

    async def _write(self, intent: str, write: Obj) -> Obj | None:
        ns = self.namespace
        if "create" in write:
            body = write["create"]
            try:
                return await self.kube.create_task(ns, body)
            except AlreadyExists:
                return await self._marked(intent, body["metadata"]["name"])
        if "patch" in write:
            name = write["patch"]
            try:
                return await self.kube.patch_task(ns, name, write["resourceVersion"], write["body"])
            except (Conflict, NotFound):
                return await self._marked(intent, name)
        name = write["delete"]
        try:
            await self.kube.delete_task(ns, name, resource_version=write["resourceVersion"])
        except NotFound:
            pass  # deleted before the crash
        except Conflict:
            self._skipped(intent, name)
        return None

    async def _marked(self, intent: str, name: str) -> Obj | None:
        """The Task when this intent wrote it already; else the write is skipped (an outside
        writer changed it since the check)."""
        current = await self.kube.get_task(self.namespace, name)
        if (
            current is not None
            and (current["metadata"].get("annotations") or {}).get(INTENT) == intent
        ):
            return current
        self._skipped(intent, name)
        return None

    def _skipped(self, intent: str, name: str) -> None:
        log.error(
            "an update's write was skipped: the task changed outside the taskstore API since it"
            " was checked (kubectl?); the rest of the update is applied",
            extra={"intent": intent, "task": name},
        )
