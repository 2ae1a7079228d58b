"""An in-memory stand-in for `taskop.kube.client.Kube`, as far as the BBS write service uses it.

Faithful where the service's promises depend on it: resourceVersions from one counter and their
preconditions (Conflict), AlreadyExists, NotFound, merge patches of the spec and of the status
subresource (neither touches the other), uid preconditions on delete, and the garbage collector
deleting a Task's owned Secrets with it. Faults: `fail_write` makes a coming write fail with a
`ServerError` that changed nothing; `before_write` runs a hook first (another writer acting
between two of the service's writes).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from taskop.kube.client import AlreadyExists, Conflict, NotFound
from tests.unit.reconciler.fakecluster import merge_patch

Obj = dict[str, Any]


class ServerError(Exception):
    """A 5xx answer: the write was not made."""


class FakeKube:
    def __init__(self) -> None:
        self.tasks: dict[str, Obj] = {}
        self.secrets: dict[str, Obj] = {}
        self.writes: list[str] = []  # the writes made, in order ("patch_task_status", …)
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)
        self._fail_at: set[int] = set()
        self._hooks: dict[int, Callable[[FakeKube], None]] = {}
        self._attempts = 0  # writes attempted, failed ones included

    # --- faults
    def fail_write(self, n: int) -> None:
        """The ``n``-th write attempted from now (1 = the next one) fails, changing nothing."""
        self._fail_at.add(self._attempts + n)

    def before_write(self, n: int, hook: Callable[[FakeKube], None]) -> None:
        """Run ``hook`` just before the ``n``-th write attempted from now."""
        self._hooks[self._attempts + n] = hook

    def _write(self, what: str) -> None:
        self._attempts += 1
        hook = self._hooks.pop(self._attempts, None)
        if hook is not None:
            hook(self)
        if self._attempts in self._fail_at:
            raise ServerError(f"{what}: 500 Internal Server Error")
        self.writes.append(what)

    def _next_rv(self) -> str:
        return str(next(self._rv))

    # --- Tasks
    async def get_task(self, namespace: str, name: str) -> Obj | None:
        obj = self.tasks.get(name)
        return copy.deepcopy(obj) if obj is not None else None

    async def create_task(self, namespace: str, body: Obj) -> Obj:
        self._write("create_task")
        name = body["metadata"]["name"]
        if name in self.tasks:
            raise AlreadyExists(name)
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            namespace=namespace,
            uid=f"task-uid-{next(self._uid)}",
            resourceVersion=self._next_rv(),
            generation=1,
            creationTimestamp="2026-01-01T00:00:00Z",
        )
        self.tasks[name] = obj
        return copy.deepcopy(obj)

    def _current(self, name: str, resource_version: str | None) -> Obj:
        obj = self.tasks.get(name)
        if obj is None:
            raise NotFound(name)
        if resource_version and obj["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(name)
        return obj

    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str | None, status: Obj
    ) -> Obj:
        self._write("patch_task_status")
        obj = self._current(name, resource_version)
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        return copy.deepcopy(obj)

    async def patch_task(
        self, namespace: str, name: str, resource_version: str | None, patch: Obj
    ) -> Obj:
        self._write("patch_task")
        obj = self._current(name, resource_version)
        patch = {k: v for k, v in patch.items() if k != "status"}  # the status is a subresource
        if "spec" in patch:
            obj["metadata"]["generation"] += 1
        self.tasks[name] = obj = merge_patch(obj, patch)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        return copy.deepcopy(obj)

    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None:
        self._write("delete_task")
        obj = self._current(name, resource_version)
        if uid and obj["metadata"]["uid"] != uid:
            raise Conflict(name)
        del self.tasks[name]
        for key, secret in list(self.secrets.items()):  # the garbage collector
            refs = secret["metadata"].get("ownerReferences") or ()
            if any(ref.get("uid") == obj["metadata"]["uid"] for ref in refs):
                del self.secrets[key]

    # --- Secrets
    async def create_secret(self, namespace: str, body: Obj) -> Obj:
        self._write("create_secret")
        name = body["metadata"]["name"]
        if name in self.secrets:
            raise AlreadyExists(name)
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            namespace=namespace,
            uid=f"secret-uid-{next(self._uid)}",
            resourceVersion=self._next_rv(),
        )
        self.secrets[name] = obj
        return copy.deepcopy(obj)
