"""What taskop holds per Task: a hostile object costs it a constant, never its size.

Every cache of Tasks (the reconciler's, the BBS API's view) keeps a slim record of each Task. A
Task whose spec and annotations together take more than the operator's limit as JSON
(``TASKOP_MAX_TASK_BYTES``, 256 KiB by default: above any Task Cloud Controller sends, and the
API server's own limit on annotations) is kept as a stub holding only its size: the reconciler
fails it with a stated reason, the BBS API refuses to desire such a task and leaves one made
with kubectl out of its answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode

DEFAULT_MAX_TASK_BYTES = 256 * 1024
OVERSIZED = "taskop.dev/oversized"
"""The only key of the spec stub an oversized Task is cached as: ``{OVERSIZED: [size, limit]}``."""


def compact_json(value: Any) -> bytes:
    """Compact JSON (UTF-8) with msgspec, 8 times faster than ``json.dumps``; a string no UTF-8 can
    hold (a lone surrogate, which no API server sends) is kept as ``json`` escapes it."""
    try:
        return _encode(value)
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def task_bytes(spec: Mapping[str, Any], annotations: Mapping[str, Any] | None = None) -> int:
    """The size, as compact JSON, of what a cache would hold of a Task (taken for every event)."""
    return len(compact_json([spec, annotations or {}]))


def oversized_stub(size: int, limit: int) -> dict[str, Any]:
    return {OVERSIZED: [size, limit]}


def oversized_error(spec: Mapping[str, Any]) -> str | None:
    """The stated reason for a Task cached as a stub; None for any other spec."""
    stub = spec.get(OVERSIZED)
    if not isinstance(stub, list) or len(stub) != 2:
        return None
    size, limit = stub
    return (
        f"the Task takes {size:,} bytes (spec and annotations, as JSON), more than the {limit:,}"
        " the operator holds per Task (TASKOP_MAX_TASK_BYTES): make it smaller; large data"
        " belongs in a ConfigMap or Secret, or a download action"
    )
