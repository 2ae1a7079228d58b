"""A taskstore client written from the protocol (the Go ``HTTPClient``'s routes, JSON keys and
nanosecond times), since the real client module is refused by the Go module proxy (403)."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from typing import Any

SECOND = 1_000_000_000


class TaskstoreError(Exception):
    """A task-store failure: the answer's ``error`` (ids by cause)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(json.dumps(error))
        self.error = error


class TaskstoreClient:
    def __init__(self, port: int, client_id: int | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.id = client_id if client_id is not None else random.randrange(1, 2**31)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def _tasks(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self._call("POST", path, body)
        if answer.get("error"):
            raise TaskstoreError(answer["error"])
        return list(answer.get("tasks") or [])

    def groups(self) -> list[str]:
        return list(self._call("GET", "/group"))

    def task(self, task_id: int) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", f"/task/{task_id}"))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def tasks(self, *ids: int) -> list[dict[str, Any]]:
        return list(self._call("GET", "/tasks/" + ",".join(str(i) for i in ids)))

    def group(self, name: str, limit: int = 0, owned: bool = False) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/group/{name}?limit={limit}&owned={int(owned)}"))

    def update(
        self,
        adds: list[dict[str, Any]] = (),  # type: ignore[assignment]
        updates: list[dict[str, Any]] = (),  # type: ignore[assignment]
        deletes: list[int] = (),  # type: ignore[assignment]
        depends: list[int] = (),  # type: ignore[assignment]
    ) -> list[dict[str, Any]]:
        body = {"clientid": self.id, "adds": list(adds), "updates": list(updates),
                "deletes": list(deletes), "depends": list(depends)}  # fmt: skip
        return self._tasks("/update", body)

    def claim(
        self,
        group: str,
        duration: int,
        depends: list[int] = (),  # type: ignore[assignment]
    ) -> dict[str, Any] | None:
        body = {"clientid": self.id, "group": group, "duration": duration,
                "depends": list(depends)}  # fmt: skip
        got = self._tasks("/claim", body)
        return got[0] if got else None

    def stats(self) -> dict[str, dict[str, int]]:
        return dict(self._call("GET", "/stats"))
