"""Reading a field of a Kubernetes object given as nested dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def field(obj: Mapping[str, Any] | None, *path: str) -> Any:
    """``obj[path[0]][path[1]]…``; None where a step is missing or not a mapping."""
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
