"""What the watches last said about each Task's Job and pods, so a pass need not ask again.

Kept small: only the fields the outcome reader uses. The watches deliver events in order per
object, so the newest body seen is the truth as far as this operator knows; a pass that finds
nothing here falls back to the API server (see `TaskReconciler._follow_job`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Key = tuple[str, str]  # (namespace, Task name)
Obj = dict[str, Any]

_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp")


def slim(body: Mapping[str, Any], *, spec_fields: tuple[str, ...] = ()) -> Obj:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return {
        "metadata": {
            **{k: meta[k] for k in _META if k in meta},
            "ownerReferences": list(meta.get("ownerReferences") or []),
        },
        "spec": {k: spec[k] for k in spec_fields if k in spec},
        "status": body.get("status") or {},
    }


class Observed:
    def __init__(self) -> None:
        self._jobs: dict[Key, Obj] = {}
        self._pods: dict[Key, dict[str, Obj]] = {}

    def job_event(self, key: Key, event_type: str | None, body: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            self._jobs.pop(key, None)
        else:
            self._jobs[key] = slim(body)

    def pod_event(self, key: Key, event_type: str | None, body: Mapping[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name"))
        pods = self._pods.setdefault(key, {})
        if event_type == "DELETED":
            pods.pop(name, None)
        else:
            pods[name] = slim(body, spec_fields=("nodeName",))
        if not pods:
            del self._pods[key]

    def job(self, key: Key) -> Obj | None:
        return self._jobs.get(key)

    def pods(self, key: Key) -> list[Obj]:
        return list(self._pods.get(key, {}).values())

    def forget(self, key: Key) -> None:
        self._jobs.pop(key, None)
        self._pods.pop(key, None)

    def __len__(self) -> int:
        return len(self._jobs) + sum(len(p) for p in self._pods.values())
