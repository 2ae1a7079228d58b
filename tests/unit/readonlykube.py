"""An API server a standby replica may only read: it lists the Tasks it was given and watches for
ever; any other call is recorded in ``writes`` and fails (a standby must make none)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

Obj = dict[str, Any]


class ReadOnlyKube:
    def __init__(self, tasks: list[Obj] | None = None) -> None:
        self.tasks = tasks or []
        self.writes: list[str] = []

    async def list_objects(self, kind: str, namespace: str, label_selector: str | None) -> Obj:
        items = copy.deepcopy(self.tasks) if kind == "tasks" else []
        return {"items": items, "metadata": {"resourceVersion": "9"}}

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, Obj]]:
        await asyncio.Event().wait()
        yield "ADDED", {}  # never reached

    def __getattr__(self, name: str) -> Any:
        async def write(*args: Any, **kwargs: Any) -> Any:
            self.writes.append(name)
            raise AssertionError(f"{name} on a standby")

        return write
