"""Glance's listing: query checks, sort order with tie-breakers, key paging and filters."""

from __future__ import annotations

import dataclasses
import random

import pytest

from taskop.glance.listing import Query, QueryError, Sorted, page, parse_query
from taskop.glance.model import GlanceTask

TYPES = {"quick", "slow"}


def glance(i: int, *, status: str = "success", type_: str = "quick", second: int = 0) -> GlanceTask:
    final = status in ("success", "failure")
    return GlanceTask(
        id=f"00000000-0000-4000-8000-{i:012d}",
        type=type_,
        status=status,
        owner="me",
        created_at=f"2026-12-02T05:00:{second:02d}Z",
        updated_at=f"2026-12-02T05:01:{(59 - second):02d}Z",
        expires_at=f"2026-12-04T05:00:{second:02d}Z" if final else None,
        expires_ns=10**30 if final else None,
        message="",
        result_text=None,
    )


def walk(tasks: list[GlanceTask], query: Query) -> list[list[GlanceTask]]:
    """Every page, following ``next`` as a client does."""
    ordered, pages, marker = Sorted.of(tasks, query.sort_key), [], None
    while True:
        found, full = page(ordered, query, marker, now_ns=0)
        pages.append(found)
        if not full:
            return pages
        marker = found[-1]


@pytest.mark.parametrize("sort_key", ["created_at", "expires_at", "status", "type", "updated_at"])
@pytest.mark.parametrize("sort_dir", ["asc", "desc"])
def test_paging_gets_every_task_once_in_order(sort_key: str, sort_dir: str) -> None:
    rng = random.Random(7)
    statuses = ["pending", "processing", "success", "failure"]
    tasks = [
        glance(
            i, status=rng.choice(statuses), type_=rng.choice(sorted(TYPES)), second=rng.randrange(5)
        )
        for i in range(60)
    ]
    query = parse_query({"limit": "25", "sort_key": sort_key, "sort_dir": sort_dir}, TYPES)
    pages = walk(tasks, query)
    assert [len(p) for p in pages] == [25, 25, 10]
    got = [t for p in pages for t in p]
    assert sorted(t.id for t in got) == sorted(t.id for t in tasks)
    keys = [(getattr(t, sort_key) or "", t.created_at, t.id) for t in got]
    assert keys == sorted(keys, reverse=sort_dir == "desc")


def test_a_full_last_page_is_followed_by_an_empty_one() -> None:
    pages = walk([glance(i) for i in range(50)], parse_query({"limit": "25"}, TYPES))
    assert [len(p) for p in pages] == [25, 25, 0]


def test_defaults_are_glances() -> None:
    assert parse_query({}, TYPES) == Query(25, None, "created_at", "desc", None, None)
    assert parse_query({"limit": "5000"}, TYPES).limit == 1000


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "-1"}, "limit must be a whole number"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"sort_key": "id"}, "sort_key must be one of created_at, expires_at"),
        ({"sort_dir": "up"}, "sort_dir must be asc or desc"),
        ({"status": "done"}, "status must be one of pending, processing, success, failure"),
        ({"type": "nope"}, "type 'nope' is not a task type (known types: quick, slow)"),
        ({"owner": "me"}, "unknown query parameter 'owner'"),
    ],
)
def test_bad_queries_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(params, TYPES)


def test_filters_apply_together_across_pages() -> None:
    tasks = [
        glance(i, status="success" if i % 2 else "failure", type_="slow" if i % 3 else "quick")
        for i in range(90)
    ]
    query = parse_query({"limit": "7", "status": "success", "type": "slow"}, TYPES)
    got = [t for p in walk(tasks, query) for t in p]
    assert {t.id for t in got} == {
        t.id for t in tasks if t.status == "success" and t.type == "slow"
    }


def test_a_task_created_between_pages_does_not_repeat_one() -> None:
    tasks = [glance(i, second=i % 10) for i in range(30)]
    query = parse_query({"limit": "10", "sort_dir": "asc"}, TYPES)
    first, _ = page(Sorted.of(tasks, "created_at"), query, None, now_ns=0)
    tasks.append(glance(99, second=0))  # sorts before the marker: not seen, and nothing repeats
    rest = [t for p in walk_from(tasks, query, first[-1]) for t in p]
    assert not {t.id for t in first} & {t.id for t in rest}
    assert len(first) + len(rest) == 30


def walk_from(tasks: list[GlanceTask], query: Query, marker: GlanceTask) -> list[list[GlanceTask]]:
    ordered, pages = Sorted.of(tasks, query.sort_key), []
    while True:
        found, full = page(ordered, query, marker, now_ns=0)
        pages.append(found)
        if not full:
            return pages
        marker = found[-1]


def test_expired_tasks_are_left_out() -> None:
    tasks = [glance(1), dataclasses.replace(glance(2), expires_ns=100)]
    found, _ = page(Sorted.of(tasks, "created_at"), Query(), None, now_ns=100)
    assert [t.id for t in found] == [tasks[0].id]


def test_links_keep_the_query() -> None:
    query = parse_query({"limit": "2", "status": "success", "sort_key": "type"}, TYPES)
    assert query.params("abc") == "limit=2&marker=abc&sort_key=type&sort_dir=desc&status=success"


# --- the paging invariant under every interleaving of changes (Hypothesis explores them)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CHANGE = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 9)),
    st.tuples(st.just("finish"), st.integers(0, 200)),
    st.tuples(st.just("expire"), st.integers(0, 200)),
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.integers(0, 60),
    limit=st.integers(1, 30),
    sort_key=st.sampled_from(["created_at", "expires_at", "status", "type", "updated_at"]),
    sort_dir=st.sampled_from(["asc", "desc"]),
    changes=st.lists(st.lists(CHANGE, max_size=4), max_size=12),
)
def test_paging_never_repeats_a_task_and_misses_none_that_stayed_put(
    initial: int,
    limit: int,
    sort_key: str,
    sort_dir: str,
    changes: list[list[tuple[str, int]]],
) -> None:
    """Between any two pages tasks are created, finish (their status, updated_at and expires_at
    change) or expire. A walk never returns a task twice and returns every task that existed
    throughout and did not expire — for any change when sorting by an immutable key (created_at,
    the default, and type), and for creates and expiries when sorting by one that changes as a
    task runs: then the order itself moves under the walk, as in Glance, whose marker is also
    looked up by id with its current values. (An expired marker is a 400 in the app.)"""
    immutable = sort_key in ("created_at", "type")
    tasks = {i: glance(i, status="pending", second=i % 10) for i in range(initial)}
    changed: set[str] = set()
    query = Query(limit=limit, sort_key=sort_key, sort_dir=sort_dir)
    seen: list[str] = []
    marker: GlanceTask | None = None
    now = 0
    for step in range(len(changes) + 200):
        found, full = page(Sorted.of(list(tasks.values()), sort_key), query, marker, now_ns=now)
        seen += [t.id for t in found]
        if not full:
            break
        marker = found[-1]
        for kind, n in changes[step] if step < len(changes) else []:
            if kind == "create":
                i = len(tasks) + 1000
                tasks[i] = glance(i, status="pending", second=n)
                changed.add(tasks[i].id)
            elif not immutable:
                continue
            elif tasks and kind == "finish":
                i = sorted(tasks)[n % len(tasks)]
                tasks[i] = glance(i, status="success", second=int(tasks[i].created_at[-3:-1]))
                changed.add(tasks[i].id)
            elif tasks and kind == "expire":
                i = sorted(tasks)[n % len(tasks)]
                if tasks[i].id == marker.id:
                    continue
                tasks[i] = dataclasses.replace(tasks[i], expires_ns=now + 1)
                changed.add(tasks[i].id)
        now += 1
        marker = next((t for t in tasks.values() if t.id == marker.id), marker)
    assert len(seen) == len(set(seen)), "a task was listed twice"
    stayed = {t.id for t in tasks.values() if t.id not in changed}
    assert stayed <= set(seen), "a task that never changed was missed"
