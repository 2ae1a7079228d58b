"""The task routes of spec §1 (everything but the event streams): POST only, exact paths."""

from __future__ import annotations

from aiohttp import web

from taskop.bbs import models
from taskop.bbs.codec import M, ping_response
from taskop.bbs.downgrade import downgrade_v2
from taskop.bbs.http import protobuf, protobuf_bytes, read_request
from taskop.bbs.keys import SERVICE, SETTINGS, VIEW
from taskop.bbs.middleware import responds_with
from taskop.bbs.validation import check, validate_request
from taskop.domain.errors import BBSError
from taskop.readiness import READINESS

routes = web.RouteTableDef()

NOT_READY = (
    "taskop's view of the tasks is not synced with Kubernetes (loading, or its watch is broken);"
    " try again shortly"
)
STANDBY = (
    "this taskop replica is a standby: only the active replica serves the BBS API (its Service"
    " sends requests there); try again"
)


async def _request(request: web.Request, message_type: type[M]) -> M:
    message = await read_request(request, message_type, request.app[SETTINGS].bbs_max_body_bytes)
    check(validate_request(message))
    return message


def _require_ready(request: web.Request) -> None:
    if not READINESS.active:
        raise BBSError.unknown(STANDBY)
    if not request.app[VIEW].ready:
        raise BBSError.unknown(NOT_READY)


@routes.post("/v1/ping")
@responds_with(models.PingResponse)
async def ping(request: web.Request) -> web.Response:
    return protobuf(ping_response(READINESS.active and request.app[VIEW].ready))


async def _tasks(request: web.Request, v2: bool) -> web.Response:
    req = await _request(request, models.TasksRequest)
    _require_ready(request)
    body = request.app[VIEW].tasks_wire(req.domain, req.cell_id, v2=v2)
    return protobuf_bytes(body)


@routes.post("/v1/tasks/list.r3")
@responds_with(models.TasksResponse)
async def tasks(request: web.Request) -> web.Response:
    return await _tasks(request, v2=False)


@routes.post("/v1/tasks/list.r2")
@responds_with(models.TasksResponse)
async def tasks_r2(request: web.Request) -> web.Response:
    return await _tasks(request, v2=True)


async def _task_by_guid(request: web.Request, v2: bool) -> web.Response:
    req = await _request(request, models.TaskByGuidRequest)
    _require_ready(request)
    entry = request.app[VIEW].get(req.task_guid)
    if entry is None:
        raise BBSError.resource_not_found()
    return protobuf(models.TaskResponse(task=downgrade_v2(entry.task) if v2 else entry.task))


@routes.post("/v1/tasks/get_by_task_guid.r3")
@responds_with(models.TaskResponse)
async def task_by_guid(request: web.Request) -> web.Response:
    return await _task_by_guid(request, v2=False)


@routes.post("/v1/tasks/get_by_task_guid.r2")
@responds_with(models.TaskResponse)
async def task_by_guid_r2(request: web.Request) -> web.Response:
    return await _task_by_guid(request, v2=True)


@routes.post("/v1/tasks/desire.r2")
@responds_with(models.TaskLifecycleResponse)
async def desire_task(request: web.Request) -> web.Response:
    req = await _request(request, models.DesireTaskRequest)
    _require_ready(request)
    await request.app[SERVICE].desire(req)
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/start")
@responds_with(models.StartTaskResponse)
async def start_task(request: web.Request) -> web.Response:
    req = await _request(request, models.StartTaskRequest)
    should_start = await request.app[SERVICE].start(req.task_guid, req.cell_id)
    return protobuf(models.StartTaskResponse(should_start=should_start))


@routes.post("/v1/tasks/complete")
@responds_with(models.TaskLifecycleResponse)
async def complete_task(request: web.Request) -> web.Response:
    req = await _request(request, models.CompleteTaskRequest)
    await request.app[SERVICE].complete(
        req.task_guid, req.cell_id, req.failed, req.failure_reason, req.result
    )
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/fail")
@responds_with(models.TaskLifecycleResponse)
async def fail_task(request: web.Request) -> web.Response:
    req = await _request(request, models.FailTaskRequest)
    await request.app[SERVICE].fail(req.task_guid, req.failure_reason)
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/reject")
@responds_with(models.TaskLifecycleResponse)
async def reject_task(request: web.Request) -> web.Response:
    req = await _request(request, models.RejectTaskRequest)
    await request.app[SERVICE].reject(req.task_guid, req.rejection_reason)
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/cancel")
@responds_with(models.TaskLifecycleResponse)
async def cancel_task(request: web.Request) -> web.Response:
    req = await _request(request, models.TaskGuidRequest)
    await request.app[SERVICE].cancel(req.task_guid)
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/resolving")
@responds_with(models.TaskLifecycleResponse)
async def resolving_task(request: web.Request) -> web.Response:
    req = await _request(request, models.TaskGuidRequest)
    await request.app[SERVICE].resolving(req.task_guid)
    return protobuf(models.TaskLifecycleResponse())


@routes.post("/v1/tasks/delete")
@responds_with(models.TaskLifecycleResponse)
async def delete_task(request: web.Request) -> web.Response:
    req = await _request(request, models.TaskGuidRequest)
    await request.app[SERVICE].delete(req.task_guid)
    return protobuf(models.TaskLifecycleResponse())
