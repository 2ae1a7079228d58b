"""Update and claim checks, as taskstore's: every unmet condition by cause, all or nothing."""

from __future__ import annotations

import pytest

from taskop.taskstore.model import StoreTask, from_task, new_task, timespec
from taskop.taskstore.plan import Refusal, pick, plan_update

NOW = 1_000_000
ME, THEM = 7, 9


def task(task_id: int, *, owner: int = 0, at: int = 0, group: str = "g") -> StoreTask:
    return StoreTask(f"t{task_id}", task_id, group, f"d{task_id}", at, owner)


TASKS = {
    1: task(1),
    2: task(2, owner=ME, at=NOW + 10),
    3: task(3, owner=THEM, at=NOW + 10),
    4: task(4, owner=THEM, at=NOW),  # their lease ended: free
}


def refused(request: dict) -> Refusal:  # type: ignore[type-arg]
    with pytest.raises(Refusal) as e:
        plan_update({"clientid": ME, **request}, TASKS, NOW)
    return e.value


def test_every_unmet_condition_is_listed_by_cause() -> None:
    got = refused(
        {
            "adds": [{"group": "", "data": "x"}],
            "updates": [{"id": 3, "data": "x"}, {"id": 99, "data": "x"}],
            "deletes": [98, 3],
            "depends": [1, 97],
        }
    )
    assert (got.changes, got.deletes, got.depends, got.owned) == ([99], [98], [97], [3, 3])
    assert got.bugs == ["adds[0]: adding a task with an empty group is not allowed"]


def test_free_or_own_tasks_may_change_and_keep_their_group() -> None:
    client, plan = plan_update(
        {
            "clientid": ME,
            "adds": [{"group": "new", "data": "a", "duration": -5}],
            "updates": [
                {"id": 2, "group": "other", "data": "b"},
                {"id": 4, "data": "c", "duration": 50},
            ],
            "deletes": [1],
        },
        TASKS,
        NOW,
    )
    assert client == ME
    assert [(a.group, a.data, a.at, a.owner) for a in plan.adds] == [("new", "a", NOW + 5, ME)]
    assert [(c.task.id, c.task.group, c.data, c.at, c.owner) for c in plan.changes] == [
        (2, "g", "b", NOW, ME),
        (4, "g", "c", 50, ME),
    ]
    assert [t.id for t in plan.deletes] == [1]


@pytest.mark.parametrize(
    ("request_", "bug"),
    [
        ({}, "empty update requested"),
        ({"adds": [{"group": "g", "data": "x" * (64 * 1024 + 1)}]}, "data is over 65536 bytes"),
        ({"adds": [{"group": "g", "duration": "soon"}]}, "id and duration must be integers"),
        ({"deletes": ["1"]}, "deletes must be a list of task ids"),
        ({"updates": [{"id": 1}], "deletes": [1]}, "task 1 is changed or deleted twice"),
    ],
)
def test_bad_input_is_a_bug(request_: dict, bug: str) -> None:  # type: ignore[type-arg]
    assert any(bug in b for b in refused(request_).bugs)


def test_timespec_absolute_relative_and_now() -> None:
    assert (timespec(5, NOW), timespec(-5, NOW), timespec(0, NOW)) == (5, NOW + 5, NOW)


def test_claims_pick_among_the_oldest_few() -> None:
    free = [task(i, at=i) for i in range(1, 41)]
    picks = {pick(free, lambda n, i=i: i % n).id for i in range(100)}
    assert picks == {1, 2, 3, 4, 5}  # 40 // 8 = 5 oldest
    assert pick(free[:2], lambda n: n - 1).id == 2


def test_a_task_round_trips_through_its_task_object() -> None:
    obj = new_task("ts-x-0", "work", "a group/with spaces", "payload", 123, ME, "intent1")
    obj["metadata"]["resourceVersion"] = "4711"
    got = from_task(obj)
    assert got == StoreTask("ts-x-0", 4711, "a group/with spaces", "payload", 123, ME)
    assert obj["metadata"]["labels"]["taskstore.taskop.dev/group"] != "a group/with spaces"
    obj["status"] = {"state": "Completed", "failed": True}
    assert from_task(obj) is None  # cancelled through BBS: gone for workers
