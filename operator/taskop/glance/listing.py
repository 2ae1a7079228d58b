"""``GET /v2/tasks`` exactly as Glance lists: the query, checked, and one page of it. Pure.

- ``limit``: an integer ≥ 0, default 25, capped at 1000 (a larger one is served as 1000);
- ``marker``: the id of the last task seen; an unknown (or expired) one is a 400;
- ``sort_key`` ∈ created_at (default), expires_at, status, type, updated_at; ``sort_dir`` ∈ asc,
  desc (default desc). ``created_at`` then ``id`` are always appended as tie-breakers, in the same
  direction (Glance's ``_paginate_query``). A task with no ``expires_at`` yet sorts as the lowest;
- ``status`` and ``type`` filters: a status must be one of Glance's four, a type a known
  TaskType (or the type of a task that exists).

Paging is by key, not offset: the page after a marker holds the tasks ordered after the marker's
current sort key. Sorted by created_at (the default) or type, which never change, a walk returns
no task twice and misses none that existed throughout, whatever is created, finishes or expires
between pages, and across restarts of taskop (the marker is an id, not a cursor). Sorted by a key
that changes as a task runs (status, updated_at, expires_at), the order moves under the walk: a
task whose key changed meanwhile may be seen twice or not at all — as in Glance, whose marker is
also looked up by id with its current values. (tests/unit/glance/test_listing.py explores every
interleaving with Hypothesis.)
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from urllib.parse import urlencode

from taskop.glance.model import STATUSES, GlanceTask

SORT_KEYS = ("created_at", "expires_at", "status", "type", "updated_at")
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000

SortKey = tuple[str, str, str]


class QueryError(ValueError):
    """A 400: what was wrong with the query."""


@dataclasses.dataclass(frozen=True)
class Query:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    status: str | None = None
    type: str | None = None

    @property
    def descending(self) -> bool:
        return self.sort_dir == "desc"

    def params(self, marker: str | None) -> str:
        """The query string of this listing at ``marker`` (for the ``first``/``next`` links)."""
        pairs = [("limit", str(self.limit))] if self.limit != DEFAULT_LIMIT else []
        if marker:
            pairs.append(("marker", marker))
        pairs += [("sort_key", self.sort_key), ("sort_dir", self.sort_dir)]
        if self.status:
            pairs.append(("status", self.status))
        if self.type:
            pairs.append(("type", self.type))
        return urlencode(pairs)


def parse_query(params: Mapping[str, str], known_types: Collection[str]) -> Query:
    """The listing ``params`` ask for; QueryError naming the bad parameter."""
    unknown = sorted(set(params) - {"limit", "marker", "sort_key", "sort_dir", "status", "type"})
    if unknown:
        raise QueryError(f"unknown query parameter {unknown[0]!r}")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            limit = -1
        if limit < 0:
            raise QueryError(f"limit must be a whole number ≥ 0 (got {params['limit']!r})")
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in SORT_KEYS:
        raise QueryError(f"sort_key must be one of {', '.join(SORT_KEYS)} (got {sort_key!r})")
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise QueryError(f"sort_dir must be asc or desc (got {sort_dir!r})")
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
    type_ = params.get("type")
    if type_ is not None and type_ not in known_types:
        known = ", ".join(sorted(known_types)) or "none defined"
        raise QueryError(f"type {type_!r} is not a task type (known types: {known})")
    return Query(
        limit=min(limit, MAX_LIMIT),
        marker=params.get("marker") or None,
        sort_key=sort_key,
        sort_dir=sort_dir,
        status=status,
        type=type_,
    )


def sort_key_of(sort_key: str) -> Callable[[GlanceTask], SortKey]:
    def key(task: GlanceTask) -> SortKey:
        value = getattr(task, sort_key)
        return (value or "", task.created_at, task.id)

    return key


@dataclasses.dataclass(frozen=True)
class Sorted:
    """All tasks in ascending order of one sort key, with their keys (for bisecting)."""

    tasks: Sequence[GlanceTask]
    keys: Sequence[SortKey]

    @classmethod
    def of(cls, tasks: Collection[GlanceTask], sort_key: str) -> Sorted:
        key = sort_key_of(sort_key)
        ordered = sorted(tasks, key=key)
        return cls(ordered, [key(t) for t in ordered])


def page(
    ordered: Sorted,
    query: Query,
    marker: GlanceTask | None,
    now_ns: int,
) -> tuple[list[GlanceTask], bool]:
    """One page of ``query`` (``marker`` is the marker's task, looked up by the caller) and
    whether it is full (then there is a ``next`` link)."""
    key = sort_key_of(query.sort_key)
    n = len(ordered.tasks)
    if query.descending:
        start = bisect.bisect_left(ordered.keys, key(marker)) - 1 if marker else n - 1
        indices: range = range(start, -1, -1)
    else:
        start = bisect.bisect_right(ordered.keys, key(marker)) if marker else 0
        indices = range(start, n)
    found: list[GlanceTask] = []
    if query.limit == 0:
        return found, False
    for i in indices:
        task = ordered.tasks[i]
        if task.expired(now_ns):
            continue
        if query.status is not None and task.status != query.status:
            continue
        if query.type is not None and task.type != query.type:
            continue
        found.append(task)
        if len(found) == query.limit:
            return found, True
    return found, False
