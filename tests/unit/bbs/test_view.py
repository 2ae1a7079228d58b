"""TaskView: reads, read-your-writes by resourceVersion, and the events derived from the watch."""

from __future__ import annotations

import base64
from typing import Any

from taskop.bbs import events, models
from taskop.bbs.convert import DEFINITION_SECRET_ANNOTATION, definition_secret
from taskop.bbs.hub import EventHub, TaskEvent
from taskop.bbs.view import TaskView
from taskop.domain.owner import task_owner


def obj(
    name: str,
    rv: int,
    *,
    state: str | None = "Pending",
    cell: str = "",
    domain: str = "d",
    uid: str = "u1",
    deleting: bool = False,
    **status: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": uid,
        "resourceVersion": str(rv),
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    result: dict[str, Any] = {
        "metadata": meta,
        "spec": {
            "guid": name.upper(),
            "domain": domain,
            "image": "busybox",
            "action": {"run": {"path": "true"}},
        },
    }
    if state:
        result["status"] = {
            "state": state,
            "cellId": cell,
            "createdAt": "2026-01-01T00:00:00.000000001Z",
            **status,
        }
    return result


class Recorder(EventHub):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[TaskEvent] = []

    def publish(self, event: TaskEvent) -> None:
        self.events.append(event)


def names(hub: Recorder) -> list[str]:
    return [e.name for e in hub.events]


def test_reads_by_guid_and_filters() -> None:
    view = TaskView()
    view.replace_all([obj("a", 1, domain="x", state="Running", cell="c1"), obj("b", 2, domain="y")])
    assert view.ready
    entry = view.get("A")
    assert entry is not None and entry.task.task_guid == "A"
    assert view.get("a") is None
    assert {t.task_guid for t in view.tasks()} == {"A", "B"}
    assert [t.task_guid for t in view.tasks(domain="x")] == ["A"]
    assert [t.task_guid for t in view.tasks(cell_id="c1")] == ["A"]
    assert view.tasks(domain="y", cell_id="c1") == []


def test_writes_are_read_at_once_and_older_watch_events_do_not_undo_them() -> None:
    view = TaskView()
    view.replace_all([])
    view.observe(obj("a", 5, state="Running", cell="c"))
    entry = view.get("A")
    assert entry is not None and entry.task.state == models.Task.Running
    view.apply("MODIFIED", obj("a", 4, state="Pending"))
    entry = view.get("A")
    assert entry is not None and entry.task.state == models.Task.Running
    view.apply("MODIFIED", obj("a", 6, state="Completed"))
    entry = view.get("A")
    assert entry is not None and entry.task.state == models.Task.Completed


def test_deleting_objects_are_gone_and_stay_gone() -> None:
    view = TaskView()
    view.replace_all([obj("a", 1)])
    view.apply("MODIFIED", obj("a", 2, deleting=True))
    assert view.get("A") is None
    view.observe(obj("a", 1))  # a late write response
    assert view.get("A") is None
    view.forget("a", "u1", "2")
    view.apply("ADDED", obj("a", 9, uid="u2"))  # re-created: a new uid
    assert view.get("A") is not None


def test_events_follow_the_bbs_visible_task_only() -> None:
    hub = Recorder()
    view = TaskView(hub)
    view.replace_all([])
    view.apply("ADDED", obj("a", 1, state=None))  # not initialised: not announced yet
    assert names(hub) == []
    view.apply("MODIFIED", obj("a", 2))
    assert names(hub) == [events.TASK_CREATED]
    changed_conditions = obj("a", 3)
    changed_conditions["status"]["conditions"] = [{"type": "Running"}]
    view.apply("MODIFIED", changed_conditions)
    assert names(hub) == [events.TASK_CREATED]
    view.apply("MODIFIED", obj("a", 4, state="Running", cell="c"))
    assert names(hub)[-1] == events.TASK_CHANGED
    before, after = hub.events[-1].before, hub.events[-1].task
    assert before is not None and before.state == models.Task.Pending
    assert after.state == models.Task.Running
    view.apply("MODIFIED", obj("a", 5, state="Running", cell="c", deleting=True))
    view.apply("DELETED", obj("a", 6, state="Running", cell="c", deleting=True))
    assert names(hub) == [
        events.TASK_CREATED,
        events.TASK_CHANGED,
        events.TASK_REMOVED,
    ]


def test_relist_announces_what_happened_while_not_watching() -> None:
    hub = Recorder()
    view = TaskView(hub)
    view.replace_all([obj("a", 1), obj("b", 2)])
    hub.events.clear()
    view.replace_all([obj("a", 3, state="Running", cell="c"), obj("c", 4)])
    assert sorted(names(hub)) == sorted(
        [events.TASK_REMOVED, events.TASK_CHANGED, events.TASK_CREATED]
    )
    assert view.get("B") is None


def test_stored_definition_annotation_is_the_task_definition() -> None:
    definition = models.TaskDefinition(
        root_fs="preloaded:cflinuxfs4",
        egress_rules=[models.SecurityGroupRule(protocol="all", destinations=["0.0.0.0/0"])],
    )
    o = obj("a", 1)
    o["metadata"]["annotations"] = {
        "taskop.dev/bbs-task-definition": base64.b64encode(definition.SerializeToString()).decode()
    }
    view = TaskView()
    view.replace_all([o])
    entry = view.get("A")
    assert entry is not None and entry.task.task_definition == definition


def test_a_tasks_list_on_the_wire_is_exactly_the_encoded_response() -> None:
    from taskop.bbs.downgrade import downgrade_v2

    view = TaskView()
    view.replace_all(
        [obj("a", 1, domain="x", state="Running", cell="c1"), obj("b", 2, domain="y")]
        + [obj(f"t{i}", 10 + i, result="r" * (i * 50)) for i in range(5)]  # varint lengths > 127
    )
    for domain, cell in [("", ""), ("x", ""), ("", "c1"), ("y", "c1")]:
        tasks = view.tasks(domain, cell)
        v3 = models.TasksResponse(tasks=tasks).SerializeToString()
        v2 = models.TasksResponse(tasks=[downgrade_v2(t) for t in tasks]).SerializeToString()
        assert view.tasks_wire(domain, cell) == v3
        assert view.tasks_wire(domain, cell, v2=True) == v2
        assert models.TasksResponse.FromString(view.tasks_wire(domain, cell)).tasks == tasks


# --- external tasks: the definition from a Secret owned by the Task ------------------------------


def external(name: str, rv: int, uid: str = "u1", **status: Any) -> dict[str, Any]:
    o = obj(name, rv, uid=uid, **status)
    o["spec"]["external"] = True
    o["metadata"]["annotations"] = {DEFINITION_SECRET_ANNOTATION: f"{name}-definition"}
    return o


SECRET_DEFINITION = models.TaskDefinition(
    root_fs="docker:///busybox",
    image_username="robot",
    image_password="s3cret-pw",
    volume_mounted_files=[models.File(path="/db/password", content="db-s3cret")],
)


def owned_secret(name: str, uid: str = "u1") -> dict[str, Any]:
    secret = definition_secret(SECRET_DEFINITION, name)
    secret["metadata"]["ownerReferences"] = [task_owner(name, uid)]
    return secret


def test_an_external_task_waits_for_its_definition_secret_then_is_created_with_it() -> None:
    hub = Recorder()
    view = TaskView(hub, watch_definitions=True)
    view.replace_all([])
    assert not view.ready  # the Secrets are not listed yet
    view.definition_feed.replace_all([])
    assert view.ready

    view.apply("ADDED", external("a", 1))  # the Task's watch comes first: held back
    view.apply("MODIFIED", external("a", 2, state="Running", cell="c"))
    assert view.get("A") is None and view.tasks() == [] and hub.events == []

    view.definition_feed.apply("ADDED", owned_secret("a"))
    entry = view.get("A")
    assert entry is not None and entry.task.task_definition == SECRET_DEFINITION
    assert entry.resource_version == "2" and entry.task.state == models.Task.Running
    assert names(hub) == [events.TASK_CREATED]
    assert hub.events[0].task.task_definition == SECRET_DEFINITION


def test_an_external_task_keeps_its_definition_through_updates_and_its_removal() -> None:
    hub = Recorder()
    view = TaskView(hub)
    view.replace_all([])
    view.definition_feed.apply("ADDED", owned_secret("a"))
    view.apply("ADDED", external("a", 1))
    view.definition_feed.apply("DELETED", owned_secret("a"))  # immutable: the view holds it
    view.apply("MODIFIED", external("a", 2, state="Completed", failed=True))
    entry = view.get("A")
    assert entry is not None and entry.task.task_definition == SECRET_DEFINITION
    view.apply("DELETED", external("a", 3, state="Completed"))
    assert names(hub) == [events.TASK_CREATED, events.TASK_CHANGED, events.TASK_REMOVED]
    assert all(e.task.task_definition == SECRET_DEFINITION for e in hub.events)


def test_a_secret_of_another_task_with_the_same_name_is_not_its_definition() -> None:
    view = TaskView()
    view.replace_all([])
    view.definition_feed.apply("ADDED", owned_secret("a", uid="old"))
    view.apply("ADDED", external("a", 1, uid="new"))
    assert view.get("A") is None
    view.observe_definition(owned_secret("a", uid="new"))  # what desire does after creating it
    entry = view.get("A")
    assert entry is not None and entry.uid == "new"


def test_fed_with_the_reconcilers_store_the_view_keeps_no_copy_of_the_object() -> None:
    """In `taskop run` the reconciler's cache holds each Task once; the view keeps only its BBS
    Task, and hands out the cache's object when it is at least as new as what the view saw."""
    cache: dict[str, dict[str, Any]] = {"a": obj("a", 5)}
    view = TaskView(Recorder(), store=cache.get)
    view.apply("ADDED", obj("a", 5))
    entry = view.get("A")
    assert entry is not None and entry.raw == b""
    assert view.obj_of(entry) == obj("a", 5)
    cache["a"] = obj("a", 7)  # the reconciler wrote it: newer still serves
    assert view.obj_of(entry)["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    view.observe(obj("a", 9))  # the door's own write, not yet in the cache: read it again
    entry = view.get("A")
    assert entry is not None and view.obj_of(entry) is None
    cache["a"] = obj("a", 9, uid="another")  # a Task of the same name, not this one
    assert view.obj_of(entry) is None
