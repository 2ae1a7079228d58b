"""A standby replica serves no BBS request: every route but Ping answers the BBS error saying
it is a standby (event streams: 503), writes nothing, and Ping answers false. Before, only the
reads and DesireTask refused, so a standby could start, complete, fail, cancel or delete tasks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from taskop.bbs import models
from taskop.bbs.app import create_app
from taskop.readiness import READINESS
from taskop.settings import Settings
from tests.unit.readonlykube import ReadOnlyKube

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def active() -> Iterator[None]:
    READINESS.active = True
    yield
    READINESS.active = True


ROUTES: list[tuple[str, Any, type]] = [
    ("/v1/tasks/list.r3", models.TasksRequest(), models.TasksResponse),
    ("/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid="g"), models.TaskResponse),
    ("/v1/tasks/start", models.StartTaskRequest(task_guid="g", cell_id="c"),
     models.StartTaskResponse),
    ("/v1/tasks/complete", models.CompleteTaskRequest(task_guid="g", cell_id="c"),
     models.TaskLifecycleResponse),
    ("/v1/tasks/fail", models.FailTaskRequest(task_guid="g", failure_reason=b"x"),
     models.TaskLifecycleResponse),
    ("/v1/tasks/cancel", models.TaskGuidRequest(task_guid="g"), models.TaskLifecycleResponse),
    ("/v1/tasks/resolving", models.TaskGuidRequest(task_guid="g"), models.TaskLifecycleResponse),
    ("/v1/tasks/delete", models.TaskGuidRequest(task_guid="g"), models.TaskLifecycleResponse),
    ("/v1/domains/upsert", models.UpsertDomainRequest(domain="d", ttl=60),
     models.UpsertDomainResponse),
]  # fmt: skip


async def test_a_standby_refuses_every_bbs_route_and_writes_nothing() -> None:
    kube = ReadOnlyKube()
    async with TestClient(TestServer(create_app(Settings(bbs_namespace="ns"), kube))) as client:  # type: ignore[arg-type]
        READINESS.active = False
        for path, message, response_type in ROUTES:
            resp = await client.post(
                path,
                data=message.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            answer = response_type.FromString(await resp.read())
            assert answer.error.message.startswith("this taskop replica is a standby"), path
        events = await client.post("/v1/events/tasks.r1")
        assert events.status == 503
        ping = await client.post("/v1/ping")
        assert models.PingResponse.FromString(await ping.read()).available is False
    assert kube.writes == []
