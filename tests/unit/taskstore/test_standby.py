"""A standby replica serves no taskstore request: two replicas taking updates would each commit
and replay intents of their own, and all-or-nothing would break. Every route answers 503 (the
protocol's "unavailable") and nothing is written; the active replica serves as usual.

The real-cluster proof (a standby operator under kopf peering) is
tests/integration/test_taskstore_api.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from taskop.readiness import READINESS
from taskop.settings import Settings
from taskop.taskstore.app import create_app
from taskop.taskstore.model import new_task
from tests.unit.readonlykube import ReadOnlyKube

Obj = dict[str, Any]


def seeded_kube() -> ReadOnlyKube:
    task = new_task("seed", "work", "g", "data", 0, 0)
    task["metadata"].update(resourceVersion="5", uid="u")
    return ReadOnlyKube([task])


@pytest.fixture(autouse=True)
def active() -> Iterator[None]:
    READINESS.active = True
    yield
    READINESS.active = True


ROUTES = [
    ("GET", "/group", None),
    ("GET", "/group/g", None),
    ("GET", "/task/5", None),
    ("GET", "/tasks/5", None),
    ("GET", "/stats", None),
    ("GET", "/time", None),
    ("POST", "/claim", {"clientid": 1, "group": "g", "duration": 10**10}),
    ("POST", "/update", {"clientid": 1, "adds": [{"group": "g", "data": "x"}]}),
]


async def test_a_standby_refuses_every_route_and_writes_nothing() -> None:
    kube = seeded_kube()
    app = create_app(Settings(bbs_namespace="ns"), kube, "work")  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        for _ in range(200):  # the view lists and replays at start
            async with client.get("/group") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.01)
        assert await (await client.get("/group")).json() == ["g"]

        READINESS.active = False
        for method, path, body in ROUTES:
            async with client.request(method, path, json=body) as response:
                text = await response.text()
                assert response.status == 503, (path, text)
                assert "this taskop replica is a standby" in text, (path, text)
                assert "taskstore API" in text
        assert kube.writes == []

        READINESS.active = True
        async with client.get("/task/5") as response:
            assert response.status == 200 and (await response.json())["data"] == "data"
