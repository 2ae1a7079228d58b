"""The Glance door's app against a small in-memory API server: who sees which task (Glance's
owner rule mapped onto RBAC), where a task's input comes from, and a standby's refusal.

The real-cluster proofs are in tests/integration/test_glance_api.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from taskop.glance.app import create_app
from taskop.readiness import READINESS
from taskop.settings import Settings

Obj = dict[str, Any]
NS = "apps"
QUICK = {"image": "busybox", "command": ["true"], "input": {"env": "TASK_INPUT"}}
UNKNOWN = "7f0e1a3c-0000-4000-8000-000000000000"


class FakeKube:
    """Tasks, TaskTypes and Secrets of one namespace; tokens are usernames, and ``roles`` say
    which Task verbs each may do."""

    def __init__(self, roles: dict[str, set[str]]) -> None:
        self.roles = roles
        self.objects: dict[str, dict[str, Obj]] = {"tasks": {}, "tasktypes": {}, "secrets": {}}
        self.counter = itertools.count(1)
        self.add("tasktypes", {"metadata": {"name": "quick"}, "spec": QUICK})

    def add(self, kind: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        n = next(self.counter)
        meta.setdefault("uid", f"uid-{n}")
        meta["resourceVersion"] = str(n)
        meta.setdefault("creationTimestamp", f"2026-12-02T05:00:{n % 60:02d}Z")
        self.objects[kind][meta["name"]] = obj
        return copy.deepcopy(obj)

    async def list_objects(self, kind: str, namespace: str, label_selector: str | None) -> Obj:
        assert namespace == NS
        items = copy.deepcopy(list(self.objects[kind].values()))
        if label_selector:  # "key" (exists) or "key=value"
            key, equals, value = label_selector.partition("=")
            items = [
                i
                for i in items
                if key in (labels := i["metadata"].get("labels") or {})
                and (not equals or labels[key] == value)
            ]
        return {"items": items, "metadata": {"resourceVersion": "1"}}

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[tuple[str, Obj]]:
        await asyncio.Event().wait()
        yield "ADDED", {}  # never reached

    async def review_token(self, token: str) -> Obj:
        if token not in self.roles:
            return {"status": {"authenticated": False}}
        return {"status": {"authenticated": True, "user": {"username": token, "uid": token}}}

    async def review_access(self, spec: Obj) -> Obj:
        verb = spec["resourceAttributes"]["verb"]
        return {"status": {"allowed": verb in self.roles.get(spec["user"], set())}}

    async def create_task(self, namespace: str, body: Obj) -> Obj:
        return self.add("tasks", body)

    async def create_secret(self, namespace: str, body: Obj) -> Obj:
        return self.add("secrets", body)


ROLES = {
    "alice": {"create"},
    "bob": {"create"},
    "admin": {"list", "get"},
    "lister": {"list"},
    "getter": {"get"},
    "nobody": set(),
}


@pytest.fixture(autouse=True)
def active() -> Iterator[None]:
    READINESS.active = True
    yield
    READINESS.active = True


class Door:
    def __init__(self, client: TestClient[Any, Any], kube: FakeKube) -> None:
        self.client = client
        self.kube = kube

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"X-Auth-Token": who, "Content-Type": "application/json"}
        data = json.dumps(body) if body is not None else None
        async with self.client.request(method, path, headers=headers, data=data) as response:
            return response.status, await response.json()

    async def create(self, who: str, input_: Obj) -> Obj:
        status, body = await self.call(who, "POST", "/v2/tasks", {"type": "quick", "input": input_})
        assert status == 201, body
        return dict(body)

    async def ids(self, who: str, query: str = "") -> list[str]:
        status, body = await self.call(who, "GET", "/v2/tasks" + query)
        assert status == 200, body
        return sorted(t["id"] for t in body["tasks"])


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    async with open_door(FakeKube(ROLES)) as opened:
        yield opened


@contextlib.asynccontextmanager
async def open_door(kube: FakeKube) -> AsyncIterator[Door]:
    """The door's app on a test server, once its views have listed."""
    app = create_app(Settings(bbs_namespace=NS), kube)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        door = Door(client, kube)
        for _ in range(200):
            if (await door.call("admin", "GET", "/v2/tasks"))[0] == 200:
                break
            await asyncio.sleep(0.01)
        else:
            raise TimeoutError("the door's views did not sync")
        yield door


# --- who sees which task
async def test_a_create_only_caller_sees_only_its_own_tasks(door: Door) -> None:
    a1 = await door.create("alice", {"n": 1})
    b = await door.create("bob", {"n": 3})
    a2 = await door.create("alice", {"n": 2})

    assert await door.ids("alice") == sorted([a1["id"], a2["id"]])
    assert await door.ids("bob") == [b["id"]]
    # Paging walks the caller's own tasks only: bob's, created between, is not in a page.
    status, first = await door.call("alice", "GET", "/v2/tasks?sort_dir=asc&limit=1")
    assert status == 200 and [t["id"] for t in first["tasks"]] == [a1["id"]]
    assert await door.ids("alice", f"?sort_dir=asc&marker={a1['id']}") == [a2["id"]]
    status, own = await door.call("alice", "GET", f"/v2/tasks/{a1['id']}")
    assert status == 200 and own["input"] == {"n": 1} and own["owner"] == "alice"


async def test_another_owners_task_is_404_exactly_as_one_that_does_not_exist(door: Door) -> None:
    b = await door.create("bob", {"secret": "bobs"})
    status, theirs = await door.call("alice", "GET", f"/v2/tasks/{b['id']}")
    missing_status, missing = await door.call("alice", "GET", f"/v2/tasks/{UNKNOWN}")
    assert (status, missing_status) == (404, 404)
    assert theirs["message"].replace(b["id"], "ID") == missing["message"].replace(UNKNOWN, "ID")
    assert "bobs" not in json.dumps(theirs)
    # Nor as a marker: the same 400 as an unknown one.
    status, marker = await door.call("alice", "GET", f"/v2/tasks?marker={b['id']}")
    assert status == 400 and marker["message"].startswith(f"marker {b['id']!r} is not a task")


async def test_a_list_allowed_caller_sees_every_task_with_its_input(door: Door) -> None:
    a = await door.create("alice", {"n": 1})
    b = await door.create("bob", {"n": 2})
    assert await door.ids("admin") == sorted([a["id"], b["id"]])
    assert await door.ids("lister") == sorted([a["id"], b["id"]])
    for who in ("admin", "lister", "getter"):
        status, got = await door.call(who, "GET", f"/v2/tasks/{b['id']}")
        assert status == 200 and got["input"] == {"n": 2} and got["owner"] == "bob", who


@pytest.mark.parametrize(
    ("who", "method", "path", "verb"),
    [
        ("nobody", "GET", "/v2/tasks", "list"),
        ("getter", "GET", "/v2/tasks", "list"),
        ("nobody", "GET", f"/v2/tasks/{UNKNOWN}", "get"),
        ("admin", "POST", "/v2/tasks", "create"),
    ],
)
async def test_a_caller_allowed_none_of_it_is_403(
    door: Door, who: str, method: str, path: str, verb: str
) -> None:
    status, body = await door.call(who, method, path, {"type": "quick", "input": {}})
    assert status == 403 and body["message"].startswith(f"{who} may not {verb} tasks.taskop.dev")


# --- the input: in the Secret only, answered from the watch of those Secrets
async def test_the_input_comes_from_the_tasks_own_secret_after_a_restart(door: Door) -> None:
    created = await door.create("alice", {"token": "s3cret"})
    assert created["input"] == {"token": "s3cret"}
    task = door.kube.objects["tasks"][created["id"]]
    assert "s3cret" not in json.dumps(task)
    assert "taskop.dev/glance-input" not in task["metadata"]["annotations"]
    secret = door.kube.objects["secrets"][f"{created['id']}-input"]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == task["metadata"]["uid"]

    async with open_door(door.kube) as restarted:  # a new replica lists the Secrets
        status, got = await restarted.call("alice", "GET", f"/v2/tasks/{created['id']}")
        assert status == 200 and got["input"] == {"token": "s3cret"}


async def test_a_secret_not_owned_by_the_task_is_never_served_as_its_input() -> None:
    """A Task made with kubectl to look like a Glance task must not turn the door into a reader
    of another Secret called ``<name>-input`` (even one carrying the label), nor of an
    annotation."""
    kube = FakeKube(ROLES)
    kube.add(
        "tasks",
        {
            "metadata": {
                "name": "db",
                "labels": {"taskop.dev/glance-type": "quick"},
                "annotations": {
                    "taskop.dev/glance-owner": "alice",
                    "taskop.dev/glance-input": '{"from": "annotation"}',
                },
            },
            "spec": {"guid": "db"},
        },
    )
    data = base64.b64encode(b'{"password": "not yours"}').decode()
    labels = {"taskop.dev/glance-input": "true"}
    kube.add(
        "secrets",
        {"metadata": {"name": "db-input", "labels": labels}, "data": {"input.json": data}},
    )
    async with open_door(kube) as door:
        status, got = await door.call("alice", "GET", "/v2/tasks/db")
    assert status == 200 and got["input"] is None


# --- a standby serves nothing
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/tasks"),
        ("GET", "/v2/tasks"),
        ("GET", f"/v2/tasks/{UNKNOWN}"),
        ("GET", "/v2/schemas/task"),
        ("DELETE", f"/v2/tasks/{UNKNOWN}"),
    ],
)
async def test_a_standby_answers_every_request_503(door: Door, method: str, path: str) -> None:
    READINESS.active = False
    status, body = await door.call("admin", method, path, {"type": "quick", "input": {}})
    assert status == 503, body
    assert body["code"] == "503 Service Unavailable" and body["title"] == "Service Unavailable"
    assert "this taskop replica is a standby" in body["message"]
    assert not door.kube.objects["tasks"] and not door.kube.objects["secrets"]
    READINESS.active = True
    assert (await door.call("admin", "GET", "/v2/tasks"))[0] == 200
