"""A hostile Task costs the operator a constant: every cache holds at most a stub of it, the
reconciler fails it saying why, and the BBS API neither desires nor serves one (hole 6)."""

from __future__ import annotations

from typing import Any

import pytest

from taskop.bbs.view import TaskView
from taskop.domain.decide import DecideSettings, Observation, decide
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.limits import DEFAULT_MAX_TASK_BYTES
from taskop.reconciler.cache import Cache
from tests.unit.bbs.builders import desire, run, task_definition
from tests.unit.bbs.fakekube import FakeKube
from tests.unit.bbs.test_service import service
from tests.unit.bbs.test_view import obj

MIB = 1 << 20


def huge_task(name: str, size: int = MIB) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "creationTimestamp": "2027-01-15T08:00:00Z",
            "annotations": {"note": "x" * 1000},
        },
        "spec": {
            "image": "busybox",
            "action": {"run": {"path": "sh", "args": ["-c", "x" * size]}},
        },
    }


def test_a_thousand_one_mib_tasks_cost_the_reconciler_cache_a_constant_each() -> None:
    cache = Cache()
    for i in range(1000):
        assert cache.put_task(huge_task(f"t{i}"))
    held = sum(len(entry.data) for entry in cache.tasks.values())
    assert held < 1000 * 1024, f"{held} bytes held for 1,000 Tasks of 1 MiB"
    assert "annotations" not in cache.task(("ns", "t0"))["metadata"]  # type: ignore[index]


def test_a_task_within_the_limit_is_held_whole() -> None:
    cache = Cache()
    body = huge_task("small", size=DEFAULT_MAX_TASK_BYTES // 2)
    cache.put_task(body)
    assert cache.task(("ns", "small"))["spec"] == body["spec"]  # type: ignore[index]


def test_the_reconciler_fails_an_oversized_task_saying_why_and_makes_no_job() -> None:
    cache = Cache()
    cache.put_task(huge_task("big"))
    task = cache.task(("ns", "big"))
    assert task is not None

    d = decide(Observation(task=task, now=1_800_000_000 * 10**9), DecideSettings())

    assert d.create_job is None
    assert d.status is not None and d.status["state"] == "Completed" and d.status["failed"]
    reason = d.status["failureReason"]
    assert reason.startswith("invalid spec: the Task takes ")
    assert f"more than the {DEFAULT_MAX_TASK_BYTES:,} the operator holds" in reason
    assert "TASKOP_MAX_TASK_BYTES" in reason


def test_the_bbs_view_leaves_an_oversized_task_out() -> None:
    view = TaskView()
    small, big = obj("small", 1), obj("big", 2)
    big["spec"]["env"] = [{"name": "X", "value": "x" * MIB}]
    view.replace_all([small, big])
    assert view.get("SMALL") is not None
    assert view.get("BIG") is None


async def test_the_bbs_api_refuses_to_desire_a_task_larger_than_the_operator_holds() -> None:
    kube = FakeKube()
    svc = service(kube)
    big = desire(
        task_guid="big",
        domain="jobs",
        task_definition=task_definition(action=run(args=["x" * 30_000] * 20)),
    )

    with pytest.raises(BBSError) as refused:
        await svc.desire(big)

    assert refused.value.type is ErrorType.InvalidRequest
    assert "more than the 262,144 the operator holds per task" in refused.value.message
    assert not kube.tasks and not kube.writes
