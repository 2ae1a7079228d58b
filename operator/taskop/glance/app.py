"""The Glance v2 Tasks API (taskop's Glance door), on its own listener (``TASKOP_GLANCE_*``).

Its own listener, not the BBS API's: a BBS listener speaks protobuf to Diego's mutual-TLS
clients, this one JSON to anyone holding a Kubernetes token, with server-only TLS.

    POST /v2/tasks          {type, input} → 201, Location, the task
    GET  /v2/tasks          the sparse list (taskop.glance.listing)
    GET  /v2/tasks/{id}     the task
    DELETE /v2/tasks/{id}   405, Allow: GET (tasks expire; they are not deleted)
    GET  /v2/schemas/task, /v2/schemas/tasks

It serves the Tasks of ``TASKOP_BBS_NAMESPACE`` that carry a TaskType label, and the TaskTypes
there; every request is authenticated and authorized (`taskop.glance.auth`). Errors are Glance's
(webob's JSON): ``{"code": "400 Bad Request", "title": "Bad Request", "message": "<why>"}``.
A refused request creates nothing: every check happens before the Task is created. A standby
replica answers every request 503 (`taskop.serving.active_only`).

Who sees which task is Glance's rule (``task_get_all`` filters a non-admin's by owner) mapped onto
RBAC: a caller allowed ``list`` on tasks (``get`` too, for one task by id: kubectl would show it
the same Task) sees every task of the namespace; a caller allowed only ``create`` sees, in lists
and by id, only the tasks it owns (created with its identity). Another owner's task is a 404, an
unknown marker's 400, exactly as a task that does not exist: no oracle of what others created.
The ``input`` of a task's GET comes from its input Secret, through a watch of those Secrets (the
input is on no object the cluster's ``view`` role reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from taskop.glance import listing, schemas
from taskop.glance.auth import Authorizer, Identity
from taskop.glance.model import EVERY_TASK, TYPE_LABEL, GlanceTask, Sight
from taskop.glance.tasktypes import INPUT_SECRET_SELECTOR, TaskTypeError, build
from taskop.glance.view import GlanceView, Inputs, TaskTypes
from taskop.kube.client import AlreadyExists, Invalid, Kube
from taskop.kube.feed import FEED, TaskFeed, watch_tasks
from taskop.kube.owned import SecretNotCreated, create_owned_secret
from taskop.kube.watch import keep_current
from taskop.readiness import READINESS
from taskop.serving import active_only, serve_app
from taskop.settings import Settings

log = logging.getLogger("taskop.glance")

SETTINGS = web.AppKey("settings", Settings)
KUBE = web.AppKey("kube", Kube)
VIEW = web.AppKey("view", GlanceView)
TYPES = web.AppKey("types", TaskTypes)
AUTH = web.AppKey("auth", Authorizer)
INPUTS = web.AppKey("inputs", Inputs)

NOT_SYNCED = (
    "glance: the view of the tasks, their inputs or the task types is not synced (listing, or"
    " watch broken)"
)
CREATE_FIELDS = ("type", "input")
READ_ONLY = (
    "id",
    "status",
    "owner",
    "result",
    "message",
    "created_at",
    "updated_at",
    "expires_at",
    "self",
    "schema",
)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    """A Glance error response (raise it)."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps({"code": f"{status} {phrase}", "title": phrase, "message": message})
    exc = web.HTTPException(text=body, content_type="application/json", headers=headers)
    exc.set_status(status, phrase)
    return exc


@web.middleware
async def glance_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.content_type == "application/json" or e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items() if k.lower() == "allow"}
        raise error(e.status, e.text or e.reason, headers) from None
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("glance request failed", extra={"path": request.path})
        raise error(500, "taskop failed to answer; see the operator's log") from None


# --- authentication and authorization
async def authenticate(request: web.Request) -> Identity:
    token = request.headers.get("X-Auth-Token", "").strip()
    if not token:
        raise error(
            401,
            "no X-Auth-Token: send a Kubernetes token for an identity allowed on"
            " tasks.taskop.dev (e.g. kubectl create token <serviceaccount>)",
        )
    who = await request.app[AUTH].identity(token)
    if who is None:
        raise error(401, "the X-Auth-Token is not a valid Kubernetes token (expired or unknown)")
    return who


def _refused(who: Identity, verb: str, namespace: str) -> web.HTTPException:
    return error(
        403,
        f"{who.username} may not {verb} tasks.taskop.dev in namespace {namespace}:"
        " ask an admin for a RoleBinding (e.g. to the chart's ClusterRole taskop-tasks-edit)",
    )


async def authorize(request: web.Request, verb: str) -> Identity:
    who = await authenticate(request)
    auth = request.app[AUTH]
    if not await auth.allowed(who, verb):
        raise _refused(who, verb, auth.namespace)
    return who


async def sight(request: web.Request, *verbs: str) -> Sight:
    """Which tasks the caller sees: every task when it may do one of ``verbs`` (Glance's admin),
    else only its own when it may ``create`` (a Glance user); else 403 naming ``verbs[0]``."""
    who = await authenticate(request)
    auth = request.app[AUTH]
    for verb in verbs:
        if await auth.allowed(who, verb):
            return EVERY_TASK
    if who.username and await auth.allowed(who, "create"):
        return Sight(owner=who.username)
    raise _refused(who, verbs[0], auth.namespace)


def _synced(request: web.Request) -> GlanceView:
    view = request.app[VIEW]
    if not (view.ready and request.app[TYPES].ready and request.app[INPUTS].ready):
        raise error(503, "taskop is still reading the tasks; retry in a few seconds")
    return view


def _now() -> int:
    return time.time_ns()


# --- routes
routes = web.RouteTableDef()


@routes.post("/v2/tasks")
async def create_task(request: web.Request) -> web.Response:
    who = await authorize(request, "create")
    settings = request.app[SETTINGS]
    body = await _read_body(request, settings.glance_max_body_bytes)
    type_name, input_ = _create_request(body)
    _synced(request)
    types = request.app[TYPES]
    task_type = types.get(type_name)
    if task_type is None:
        known = ", ".join(types.names()) or "none: an admin defines them with kubectl"
        raise error(400, f"unknown task type {type_name!r}; known types: {known}")
    if isinstance(task_type, TaskTypeError):
        raise error(500, f"task type {type_name!r} is misconfigured ({task_type}); ask the admin")
    kube, namespace = request.app[KUBE], settings.bbs_namespace
    for _ in range(3):  # a fresh UUID taken meanwhile: take another
        task_id = str(uuid.uuid4())
        try:
            obj, secret = build(
                type_name,
                task_type,
                task_id=task_id,
                input_=input_,
                owner=who.username,
                domain=settings.glance_domain,
                ttl_seconds=settings.glance_task_ttl_seconds,
                annotations=settings.task_annotations,
            )
        except TaskTypeError as e:
            raise error(
                500, f"task type {type_name!r} makes no valid Task ({e}); ask the admin"
            ) from None
        try:
            created = await kube.create_task(namespace, obj)
        except AlreadyExists:
            continue
        except Invalid as e:
            raise error(400, f"Kubernetes refused the task: {e}") from None
        break
    else:
        raise error(500, "no free task id after 3 attempts")
    try:
        made = await create_owned_secret(kube, namespace, created, secret)
    except SecretNotCreated as e:
        raise error(500, str(e)) from None
    request.app[INPUTS].observe(made)
    view = request.app[VIEW]
    view.observe(created)
    task = view.get(task_id)
    assert task is not None
    log.info("task created", extra={"id": task_id, "type": type_name, "owner": who.username})
    location = str(request.url.with_path(f"/v2/tasks/{task_id}").with_query(None))
    return web.json_response(task.full(input_), status=201, headers={"Location": location})


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise error(413, f"the body is {request.content_length} bytes; at most {limit} are taken")
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise error(413, f"the body is over {limit} bytes; at most {limit} are taken")
    return data


def _create_request(body: bytes) -> tuple[str, dict[str, Any]]:
    """``type`` and ``input`` of a create body; 400 saying what is wrong."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise error(400, f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise error(400, 'the body must be a JSON object: {"type": "<task type>", "input": {…}}')
    for key in data:
        if key in READ_ONLY:
            raise error(400, f"Attribute '{key}' is read-only.")
        if key not in CREATE_FIELDS:
            raise error(400, f"unknown field {key!r}: a task is created from type and input")
    for key in CREATE_FIELDS:
        if key not in data:
            raise error(400, f"'{key}' is a required property")
    if not isinstance(data["type"], str) or not data["type"]:
        raise error(400, "'type' must be a non-empty string (the name of a task type)")
    if not isinstance(data["input"], dict):
        raise error(400, f"'input' must be a JSON object (got {type(data['input']).__name__})")
    return data["type"], data["input"]


@routes.get("/v2/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    seen = await sight(request, "list")
    view = _synced(request)
    params = {k: request.query.getone(k) for k in request.query}
    known_types = set(request.app[TYPES].names()) | view.types(seen.owner)
    try:
        query = listing.parse_query(params, known_types)
    except listing.QueryError as e:
        raise error(400, str(e)) from None
    now = _now()
    marker: GlanceTask | None = None
    if query.marker is not None:
        marker = view.get(query.marker)
        if marker is None or marker.expired(now) or not seen.sees(marker):
            raise error(400, f"marker {query.marker!r} is not a task (or it has expired)")
    ordered = view.ordered(query.sort_key, seen.owner)
    found, full = listing.page(ordered, query, marker, now)
    first = query.params(None)
    answer: dict[str, Any] = {
        "tasks": [task.sparse() for task in found],
        "first": "/v2/tasks" + (f"?{first}" if first else ""),
        "schema": "/v2/schemas/tasks",
    }
    if full:
        answer["next"] = f"/v2/tasks?{query.params(found[-1].id)}"
    return web.json_response(answer)


@routes.get("/v2/tasks/{id}")
async def get_task(request: web.Request) -> web.Response:
    seen = await sight(request, "get", "list")
    task = _synced(request).get(request.match_info["id"])
    if task is None or task.expired(_now()) or not seen.sees(task):
        raise error(404, f"no task with id {request.match_info['id']} (or it has expired)")
    # null until its Secret is seen (made just after the Task), or for a Task not made here
    return web.json_response(task.full(request.app[INPUTS].get(task.uid)))


@routes.get("/v2/schemas/task")
async def task_schema(request: web.Request) -> web.Response:
    await authenticate(request)
    return web.json_response(schemas.task_schema(request.app[TYPES].names()))


@routes.get("/v2/schemas/tasks")
async def tasks_schema(request: web.Request) -> web.Response:
    await authenticate(request)
    return web.json_response(schemas.tasks_schema(request.app[TYPES].names()))


def _not_allowed(allow: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        await authenticate(request)
        raise error(405, f"{request.method} is not allowed here; tasks expire", {"Allow": allow})

    return handler


routes.route("*", "/v2/tasks/{id}")(_not_allowed("GET"))
routes.route("*", "/v2/tasks")(_not_allowed("GET, POST"))


# --- the app
def create_app(settings: Settings, kube: Kube, feed: TaskFeed | None = None) -> web.Application:
    app = web.Application(
        middlewares=[glance_errors, active_only("Glance API", lambda why: error(503, why))]
    )
    app[SETTINGS], app[KUBE], app[FEED] = settings, kube, feed
    app[AUTH] = Authorizer(kube, settings.bbs_namespace)
    app.add_routes(routes)
    app.cleanup_ctx.append(_views)
    return app


async def _views(app: web.Application) -> AsyncIterator[None]:
    settings, kube = app[SETTINGS], app[KUBE]
    view, types, inputs = GlanceView(), TaskTypes(), Inputs()
    app[VIEW], app[TYPES], app[INPUTS] = view, types, inputs
    namespace = settings.bbs_namespace
    watchers = [
        asyncio.create_task(
            watch_tasks(kube, app[FEED], "glance", namespace, view, TYPE_LABEL),
            name="taskop-glance-tasks",
        ),
        asyncio.create_task(
            keep_current(kube, namespace, types, "tasktypes"), name="taskop-glance-types"
        ),
        asyncio.create_task(
            keep_current(kube, namespace, inputs, "secrets", label_selector=INPUT_SECRET_SELECTOR),
            name="taskop-glance-inputs",
        ),
    ]
    READINESS.add(NOT_SYNCED, lambda: view.ready and types.ready and inputs.ready)
    yield
    READINESS.remove(NOT_SYNCED)
    for watcher in watchers:
        watcher.cancel()
    for watcher in watchers:
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def server_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.glance_tls_cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.glance_tls_cert_file, settings.glance_tls_key_file)
    return context


async def serve(settings: Settings, kube: Kube, feed: TaskFeed | None = None) -> None:
    """Serve the Glance API until cancelled."""
    await serve_app(
        create_app(settings, kube, feed),
        "Glance API",
        settings.glance_listen_address,
        settings.glance_listen_port,
        server_context(settings),
        namespace=settings.bbs_namespace,
    )
