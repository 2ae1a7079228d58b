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


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386), as the API server
    applies one: a None value removes the key, a mapping merges into a mapping, any other value
    replaces. Neither argument is changed."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            old = out.get(key)
            out[key] = merge_patch(old if isinstance(old, Mapping) else {}, value)
        else:
            out[key] = value
    return out
