"""DesireTask records, in the Task's status, that the BBS API desired it: the mark that lets its
completion callback present taskop's client certificate (`presents_client_certificate`)."""

from __future__ import annotations

from typing import cast

from taskop.bbs.service import TaskService
from taskop.bbs.view import TaskView
from taskop.domain.names import task_name
from taskop.kube.client import Kube
from taskop.settings import Settings
from tests.unit.bbs.builders import desire
from tests.unit.bbs.fakekube import FakeKube


def service(kube: FakeKube) -> TaskService:
    view = TaskView()
    view.replace_all([])
    return TaskService(cast(Kube, kube), Settings(bbs_namespace="ns"), view)


async def test_a_desired_task_carries_the_mark_in_its_status() -> None:
    kube = FakeKube()
    await service(kube).desire(desire(task_guid="g-1", domain="jobs"))
    assert kube.tasks[task_name("g-1")]["status"]["api"] == "bbs"


async def test_the_mark_lands_when_the_reconciler_wrote_the_status_first() -> None:
    """The reconciler may initialise the new Task's status before the door's own write (which
    then conflicts): the door still records the mark, on that same Task."""
    kube = FakeKube()

    def reconciler_first(k: FakeKube) -> None:
        obj = k.tasks[task_name("g-2")]
        obj["status"] = {"state": "Pending"}
        obj["metadata"]["resourceVersion"] = k._next_rv()

    kube.before_write(2, reconciler_first)  # after create_task, before the status write
    await service(kube).desire(desire(task_guid="g-2", domain="jobs"))
    status = kube.tasks[task_name("g-2")]["status"]
    assert status == {"state": "Pending", "api": "bbs"}


async def test_a_task_created_under_the_same_name_meanwhile_gets_no_mark() -> None:
    """If the door's Task is replaced (deleted, another created under its name) before the mark
    lands, the other Task (say one created with kubectl) is not marked."""
    kube = FakeKube()
    name = task_name("g-3")

    def replaced(k: FakeKube) -> None:
        obj = k.tasks[name]
        obj["metadata"]["uid"] = "someone-elses"
        obj["metadata"]["resourceVersion"] = k._next_rv()

    kube.before_write(2, replaced)
    await service(kube).desire(desire(task_guid="g-3", domain="jobs"))
    assert "api" not in (kube.tasks[name].get("status") or {})
