"""The hot writes go straight on the API client's aiohttp session (`Kube._send`): the same URL,
credentials, content type and error mapping as through kubernetes_asyncio. Every integration
test drives them against the real API server; this checks the request itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client

from taskop.kube.client import Conflict, Invalid, Kube

Seen = list[dict[str, Any]]


@pytest.fixture
async def api() -> AsyncIterator[tuple[Kube, Seen, dict[str, web.Response]]]:
    seen: Seen = []
    answers: dict[str, web.Response] = {}

    async def handle(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "type": request.headers.get("Content-Type"),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(await request.read()),
            }
        )
        return answers.pop(request.path, None) or web.json_response(
            {"metadata": {"name": "t", "namespace": "ns", "uid": "u", "resourceVersion": "7"}}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    cfg = client.Configuration(host=str(server.make_url("")).rstrip("/"))
    cfg.api_key = {"BearerToken": "s3cret"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    kube = Kube(client.ApiClient(configuration=cfg))
    yield kube, seen, answers
    await kube.close()
    await server.close()


async def test_a_status_patch_is_a_merge_patch_with_its_precondition_and_token(
    api: tuple[Kube, Seen, dict[str, web.Response]],
) -> None:
    kube, seen, _ = api
    written = await kube.patch_task_status("ns", "t", "6", {"state": "Running"})
    assert written["metadata"]["resourceVersion"] == "7"
    assert seen == [
        {
            "method": "PATCH",
            "path": "/apis/taskop.dev/v1alpha1/namespaces/ns/tasks/t/status",
            "type": "application/merge-patch+json",
            "auth": "Bearer s3cret",
            "body": {"metadata": {"resourceVersion": "6"}, "status": {"state": "Running"}},
        }
    ]


async def test_a_status_replace_is_an_update_of_the_subresource_at_the_resource_version(
    api: tuple[Kube, Seen, dict[str, web.Response]],
) -> None:
    kube, seen, _ = api
    written = await kube.replace_task_status("ns", "t", "6", {"state": "Running", "failed": False})
    assert written["metadata"]["resourceVersion"] == "7"
    assert seen == [
        {
            "method": "PUT",
            "path": "/apis/taskop.dev/v1alpha1/namespaces/ns/tasks/t/status",
            "type": "application/json",
            "auth": "Bearer s3cret",
            "body": {
                "apiVersion": "taskop.dev/v1alpha1",
                "kind": "Task",
                "metadata": {"name": "t", "namespace": "ns", "resourceVersion": "6"},
                "status": {"state": "Running", "failed": False},
            },
        }
    ]


async def test_job_create_release_and_delete_carry_the_jobs_uid(
    api: tuple[Kube, Seen, dict[str, web.Response]],
) -> None:
    kube, seen, _ = api
    await kube.create_job("ns", {"metadata": {"name": "t"}})
    await kube.release_job("ns", "t", "job-uid", "taskop.dev/witness")
    assert await kube.delete_job("ns", "t", "job-uid") is True
    assert [(s["method"], s["path"], s["type"]) for s in seen] == [
        ("POST", "/apis/batch/v1/namespaces/ns/jobs", "application/json"),
        ("PATCH", "/apis/batch/v1/namespaces/ns/jobs/t", "application/strategic-merge-patch+json"),
        ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/t", "application/json"),
    ]
    assert seen[1]["body"] == {
        "metadata": {
            "uid": "job-uid",
            "$deleteFromPrimitiveList/finalizers": ["taskop.dev/witness"],
        }
    }
    assert seen[2]["body"] == {
        "propagationPolicy": "Background",
        "preconditions": {"uid": "job-uid"},
    }


async def test_refusals_are_mapped_as_for_every_other_call(
    api: tuple[Kube, Seen, dict[str, web.Response]],
) -> None:
    kube, _, answers = api
    status_path = "/apis/taskop.dev/v1alpha1/namespaces/ns/tasks/t/status"
    answers[status_path] = web.json_response({"reason": "Conflict"}, status=409)
    with pytest.raises(Conflict):
        await kube.patch_task_status("ns", "t", "6", {})
    answers[status_path] = web.json_response({"reason": "Conflict"}, status=409)
    with pytest.raises(Conflict):
        await kube.replace_task_status("ns", "t", "6", {})
    answers["/apis/batch/v1/namespaces/ns/jobs"] = web.json_response(
        {"message": "spec.template: Invalid value"}, status=422
    )
    with pytest.raises(Invalid, match=r"spec\.template: Invalid value"):
        await kube.create_job("ns", {})
    answers["/apis/batch/v1/namespaces/ns/jobs/t"] = web.json_response({}, status=409)
    assert await kube.delete_job("ns", "t", "other-uid") is False  # precondition failed
