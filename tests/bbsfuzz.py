"""Hypothesis strategies of BBS request bodies: real messages of every request type (Cloud
Controller's app tasks among them), mutated field by field or byte by byte, or raw bytes.

Used by tests/integration/test_bbs_fuzz.py against the real operator and API server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import strategies as st

from taskop.bbs import models

GUIDS = [f"fz-{i:03d}" for i in range(256)]
"""A small pool, so that requests meet each other's tasks (start, cancel, delete …)."""
DOMAINS = ["cf-tasks", "cells", "lenient", "jobs"]
CELLS = ["cell-a", "cell-b"]


@dataclasses.dataclass(frozen=True)
class Route:
    path: str
    response: type[Message]
    build: Callable[[str, str], Message] | None  # (guid, domain) → a real request


def _run(path: str = "/bin/true", user: str = "root", args: tuple[str, ...] = ()) -> Any:
    return models.Action(run_action=models.RunAction(path=path, user=user, args=list(args)))


def _egress() -> list[Any]:
    rules = [
        models.SecurityGroupRule(protocol="all", destinations=[d])
        for d in ("0.0.0.0-9.255.255.255", "11.0.0.0-169.253.255.255")
    ]
    rules += [
        models.SecurityGroupRule(protocol=p, destinations=["0.0.0.0/0"], ports=[53])
        for p in ("tcp", "udp")
    ]
    rules.append(
        models.SecurityGroupRule(
            protocol="tcp",
            destinations=["10.0.0.1-10.0.0.9"],
            port_range=models.PortRange(start=8000, end=8080),
        )
    )
    return rules


def cc_app_task(guid: str, buildpack: bool) -> Any:
    """Cloud Controller's app task (task_recipe_builder.rb), Docker or buildpack."""
    td = models.TaskDefinition(
        completion_callback_url=f"https://api.internal.cf:8182/internal/v4/tasks/{guid}/completed",
        cpu_weight=3,
        disk_mb=1024,
        memory_mb=256,
        egress_rules=_egress(),
        log_guid="app-guid",
        log_source="CELL",
        log_rate_limit=models.LogRateLimit(bytes_per_second=16384),
        max_pids=1024,
        network=models.Network(
            properties={"policy_group_id": "app-guid", "container_workload": "task"}
        ),
        trusted_system_certificates_path="/etc/cf-system-certificates",
        legacy_download_user="vcap",
        certificate_properties=models.CertificateProperties(organizational_unit=["app:app-guid"]),
        volume_mounted_files=[models.File(path="db/password", content="s3cret")],
        environment_variables=[models.EnvironmentVariable(name="MEMORY_LIMIT", value="256m")],
        cached_dependencies=[
            models.CachedDependency(
                to="/tmp/lifecycle", cache_key="lifecycle", **{"from": "http://file-server/lc.tgz"}
            )
        ],
    )
    td.metric_tags["source_id"].static = "app-guid"
    if buildpack:
        td.root_fs = "preloaded:cflinuxfs4"
        td.action.serial_action.actions.add().download_action.CopyFrom(
            models.DownloadAction(
                to=".",
                user="vcap",
                checksum_algorithm="sha256",
                checksum_value="0" * 64,
                **{"from": "http://blobstore/droplet"},
            )
        )
        td.action.serial_action.actions.add().CopyFrom(
            _run("/tmp/lifecycle/launcher", "vcap", ("app", "rake db:migrate", ""))
        )
    else:
        td.root_fs = "docker://registry.example/team/app#v1"
        td.action.CopyFrom(_run("/tmp/lifecycle/launcher", "root", ("app", "echo hi", "{}")))
        td.image_username, td.image_password = "robot", "pw"
    return td


def _simple(guid: str) -> Any:
    return models.TaskDefinition(root_fs="docker:///busybox", action=_run(), result_file="/tmp/r")


def _desire(guid: str, domain: str) -> Message:
    pick = sum(map(ord, guid + domain)) % 3
    td = [cc_app_task(guid, False), cc_app_task(guid, True), _simple(guid)][pick]
    return models.DesireTaskRequest(task_guid=guid, domain=domain, task_definition=td)


ROUTES = [
    Route("/v1/tasks/desire.r2", models.TaskLifecycleResponse, _desire),
    Route(
        "/v1/tasks/start",
        models.StartTaskResponse,
        lambda g, d: models.StartTaskRequest(task_guid=g, cell_id=CELLS[len(d) % 2]),
    ),
    Route(
        "/v1/tasks/complete",
        models.TaskLifecycleResponse,
        lambda g, d: models.CompleteTaskRequest(
            task_guid=g, cell_id=CELLS[len(d) % 2], failed=len(d) % 2 == 0, result=b"r"
        ),
    ),
    Route(
        "/v1/tasks/fail",
        models.TaskLifecycleResponse,
        lambda g, d: models.FailTaskRequest(task_guid=g, failure_reason=b"fuzz"),
    ),
    Route(
        "/v1/tasks/reject",
        models.TaskLifecycleResponse,
        lambda g, d: models.RejectTaskRequest(task_guid=g, rejection_reason=b"full"),
    ),
    Route(
        "/v1/tasks/cancel",
        models.TaskLifecycleResponse,
        lambda g, d: models.TaskGuidRequest(task_guid=g),
    ),
    Route(
        "/v1/tasks/resolving",
        models.TaskLifecycleResponse,
        lambda g, d: models.TaskGuidRequest(task_guid=g),
    ),
    Route(
        "/v1/tasks/delete",
        models.TaskLifecycleResponse,
        lambda g, d: models.TaskGuidRequest(task_guid=g),
    ),
    Route("/v1/tasks/list.r3", models.TasksResponse, lambda g, d: models.TasksRequest(domain=d)),
    Route(
        "/v1/tasks/list.r2",
        models.TasksResponse,
        lambda g, d: models.TasksRequest(cell_id=CELLS[0]),
    ),
    Route(
        "/v1/tasks/get_by_task_guid.r3",
        models.TaskResponse,
        lambda g, d: models.TaskByGuidRequest(task_guid=g),
    ),
    Route(
        "/v1/tasks/get_by_task_guid.r2",
        models.TaskResponse,
        lambda g, d: models.TaskByGuidRequest(task_guid=g),
    ),
    Route(
        "/v1/domains/upsert",
        models.UpsertDomainResponse,
        lambda g, d: models.UpsertDomainRequest(domain=d, ttl=120),
    ),
    Route("/v1/domains/list", models.DomainsResponse, None),
    Route("/v1/ping", models.PingResponse, None),
]

_INTS = st.sampled_from([0, 1, -1, 2, 53, 1024, 65535, 65536, 2**31 - 1, -(2**31), 2**32 - 1])
_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "..", "/", "../../etc", "preloaded:", "docker://", "a" * 300, "\x00"]
    ),
)


@st.composite
def _mutate_field(draw: st.DrawFn, message: Message, depth: int = 0) -> None:
    """Change, clear or extend one field somewhere in ``message``."""
    fields = message.DESCRIPTOR.fields
    field = draw(st.sampled_from(list(fields)))
    repeated = field.is_repeated
    value = getattr(message, field.name)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            if draw(st.booleans()):
                value.clear()
            return
        if repeated:
            if len(value) and depth < 6 and draw(st.booleans()):
                draw(_mutate_field(value[draw(st.integers(0, len(value) - 1))], depth + 1))
            elif draw(st.booleans()):
                value.add()
            else:
                del value[:]
            return
        if depth < 6 and draw(st.booleans()):
            draw(_mutate_field(value, depth + 1))
        else:
            message.ClearField(field.name)
        return
    new = _scalar(draw, field)
    if repeated:
        if draw(st.booleans()) and new is not None:
            value.append(new)
        else:
            del value[:]
    elif new is None:
        message.ClearField(field.name)
    else:
        try:
            setattr(message, field.name, new)
        except (ValueError, TypeError):
            message.ClearField(field.name)


def _scalar(draw: st.DrawFn, field: FieldDescriptor) -> Any:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return draw(_TEXT)
    if t == FieldDescriptor.TYPE_BYTES:
        return draw(st.binary(max_size=40))
    if t == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if t == FieldDescriptor.TYPE_ENUM:
        return draw(st.integers(-2, 12))
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return draw(st.floats(allow_nan=True))
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return draw(_INTS) % 2**32
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return draw(_INTS) % 2**64
    return draw(_INTS)


@st.composite
def _mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "duplicate"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del out[i : i + draw(st.integers(1, 16))]
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "truncate":
            del out[i:]
        elif op == "duplicate":
            out[i:i] = out[i : i + draw(st.integers(1, 64))]
    return bytes(out)


@dataclasses.dataclass(frozen=True)
class Body:
    route: Route
    data: bytes
    how: str


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    """One request body: a real message of a random route, mutated one of four ways."""
    route = draw(st.sampled_from(ROUTES))
    how = draw(st.sampled_from(["real", "field", "field", "bytes", "raw"]))
    if how == "raw" or route.build is None:
        return Body(route, draw(st.binary(max_size=256)), "raw")
    message = route.build(draw(st.sampled_from(GUIDS)), draw(st.sampled_from(DOMAINS)))
    if how == "field":
        for _ in range(draw(st.integers(1, 3))):
            draw(_mutate_field(message))
    data = message.SerializeToString()
    if how == "bytes":
        data = draw(_mutate_bytes(data))
    return Body(route, data, how)


def desired_guid(body: Body) -> str | None:
    """The task guid a desire body names, when it parses."""
    if body.route.path != "/v1/tasks/desire.r2":
        return None
    try:
        return str(models.DesireTaskRequest.FromString(body.data).task_guid)
    except DecodeError:
        return None
