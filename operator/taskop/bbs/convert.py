"""BBS wire messages ⇄ the Task custom resource (plain dicts, camelCase).

`task_definition_to_spec` turns a validated DesireTask into a Task ``spec``. Every field taskop
cannot honour is rejected with InvalidRequest naming it ("<field> is not supported by taskop"),
never silently dropped: a field is either mapped below or refused. Metadata only fields
(log_source, log_guid, metrics_guid) are kept.

Actions: the run action is the task. Wrappers around it are unwrapped only when nothing is lost:
- ``timeout_action`` → ``spec.timeoutSeconds`` = ceil(timeout_ms / 1000) (nested: the smallest);
  its ``log_source`` must be empty.
- ``emit_progress_action`` only when start_message, success_message, failure_message_prefix and
  log_source are all empty (otherwise the messages would be lost).
- ``try_action`` never: it turns the run's failure into success, which a Job cannot express.
- download, upload, parallel, serial and codependent actions are refused.

`resource_to_task` builds the V3 wire `Task` from a Task object (metadata, spec, status).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from typing import Any, cast

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError, Message

from taskop.bbs import models
from taskop.bbs.errors import unsupported
from taskop.bbs.validation import ACTION_FIELDS, action_kind
from taskop.domain.states import TaskState
from taskop.domain.timefmt import parse_ns

DOCKER_ROOTFS_PREFIX = "docker:///"
DEFINITION_ANNOTATION = "taskop.dev/bbs-task-definition"
"""Annotation holding an external task's full TaskDefinition: base64 of its protobuf bytes."""

log = logging.getLogger("taskop.bbs")

# TaskDefinition scalar fields kept in the spec: wire name → spec key (root_fs aside).
SUMMARY_SCALARS = {
    "memory_mb": "memoryMb",
    "disk_mb": "diskMb",
    "cpu_weight": "cpuWeight",
    "max_pids": "maxPids",
    "privileged": "privileged",
    "result_file": "resultFile",
    "completion_callback_url": "completionCallbackUrl",
    "annotation": "annotation",
    "log_source": "logSource",
    "log_guid": "logGuid",
    "metrics_guid": "metricsGuid",
}
_SCALAR_FIELDS = {"root_fs": "rootfs", **SUMMARY_SCALARS}
_TASK_DEFINITION_MAPPED = {*_SCALAR_FIELDS, "environment_variables", "placement_tags", "action"}
_RUN_MAPPED = {"path", "args", "dir", "env", "resource_limits", "user", "log_source"}


# --- wire → spec ----------------------------------------------------------------------------------


def task_definition_to_spec(td: models.TaskDefinition, guid: str, domain: str) -> dict[str, Any]:
    """The Task ``spec`` for a DesireTask; validate first (`validation.validate_task_definition`).

    Raises InvalidRequest naming every field taskop cannot honour.
    """
    refused: list[str] = []
    for field, _ in td.ListFields():
        if field.name not in _TASK_DEFINITION_MAPPED:
            refused.append(field.name)
    refused.extend(_unknown_fields(td, "task_definition"))

    spec: dict[str, Any] = {"guid": guid, "domain": domain}
    for wire_name, key in _SCALAR_FIELDS.items():
        value = getattr(td, wire_name)
        if value:
            spec[key] = value
    if td.environment_variables:
        spec["env"] = _env_to_spec(td.environment_variables)
    if td.placement_tags:
        spec["placementTags"] = list(td.placement_tags)

    timeouts: list[int] = []
    run = _find_run(td.action, "action", refused, timeouts) if td.HasField("action") else None
    if refused:
        raise unsupported(refused)
    if run is not None:
        spec["action"] = {"run": _run_to_spec(run)}
    if timeouts:
        spec["timeoutSeconds"] = math.ceil(min(timeouts) / 1000)
    return spec


def _find_run(
    action: models.Action, path: str, refused: list[str], timeouts: list[int]
) -> models.RunAction | None:
    """The run action in ``action``, unwrapping lossless wrappers; refusals go to ``refused``."""
    kind = action_kind(action)
    refused.extend(
        f"{path}.{name}" for name in ACTION_FIELDS if name != kind and action.HasField(name)
    )
    here = f"{path}.{kind}"
    match kind:
        case "run_action":
            run = action.run_action
            refused.extend(
                f"{here}.{field.name}"
                for field, _ in run.ListFields()
                if field.name not in _RUN_MAPPED
            )
            if run.HasField("resource_limits") and run.resource_limits.HasField("nproc"):
                refused.append(f"{here}.resource_limits.nproc")
            return run
        case "timeout_action":
            timeout = action.timeout_action
            if timeout.log_source:
                refused.append(f"{here}.log_source")
            timeouts.append(timeout.timeout_ms)
            return _find_run(timeout.action, f"{here}.action", refused, timeouts)
        case "emit_progress_action":
            emit = action.emit_progress_action
            refused.extend(
                f"{here}.{name}"
                for name in ("start_message", "success_message", "failure_message_prefix")
                if getattr(emit, name)
            )
            if emit.log_source:
                refused.append(f"{here}.log_source")
            return _find_run(emit.action, f"{here}.action", refused, timeouts)
        case None:
            refused.append(path)  # unreachable after validation: an empty action
            return None
        case _:
            refused.append(here)
            return None


def _run_to_spec(run: models.RunAction) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": run.path}
    if run.args:
        spec["args"] = list(run.args)
    if run.dir:
        spec["dir"] = run.dir
    if run.user:
        spec["user"] = run.user
    if run.env:
        spec["env"] = _env_to_spec(run.env)
    if run.HasField("resource_limits") and run.resource_limits.HasField("nofile"):
        spec["resourceLimits"] = {"nofile": run.resource_limits.nofile}
    if run.log_source:
        spec["logSource"] = run.log_source
    return spec


def _env_to_spec(env: Any) -> list[dict[str, str]]:
    return [{"name": e.name, "value": e.value} for e in env]


def _unknown_fields(message: Message, path: str) -> list[str]:
    """Fields a newer BBS may send that taskop's protos do not know (so would silently drop)."""
    found = [f"{path} field {f.field_number}" for f in unknown_fields.UnknownFieldSet(message)]
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        children = value if field.is_repeated else [value]
        for index, child in enumerate(children):
            suffix = f"[{index}]" if field.is_repeated else ""
            found.extend(_unknown_fields(child, f"{path}.{field.name}{suffix}"))
    return found


# --- resource → wire ------------------------------------------------------------------------------


def spec_to_task_definition(spec: dict[str, Any]) -> models.TaskDefinition:
    """The TaskDefinition for a Task ``spec`` (the inverse of `task_definition_to_spec`)."""
    td = models.TaskDefinition()
    td.SetInParent()
    if spec.get("rootfs"):
        td.root_fs = spec["rootfs"]
    elif spec.get("image"):
        td.root_fs = DOCKER_ROOTFS_PREFIX + spec["image"]
    for wire_name, key in _SCALAR_FIELDS.items():
        if wire_name != "root_fs" and spec.get(key) is not None:
            setattr(td, wire_name, spec[key])
    td.environment_variables.extend(_env_from_spec(spec.get("env")))
    td.placement_tags.extend(spec.get("placementTags") or ())
    run_spec = (spec.get("action") or {}).get("run")
    if run_spec is not None:
        run = _run_from_spec(run_spec)
        timeout_seconds = spec.get("timeoutSeconds")
        if timeout_seconds:
            td.action.timeout_action.timeout_ms = int(timeout_seconds) * 1000
            td.action.timeout_action.action.run_action.CopyFrom(run)
        else:
            td.action.run_action.CopyFrom(run)
    return td


def _run_from_spec(spec: dict[str, Any]) -> models.RunAction:
    run = models.RunAction(
        path=spec.get("path", ""),
        args=spec.get("args") or (),
        dir=spec.get("dir", ""),
        user=spec.get("user", ""),
        log_source=spec.get("logSource", ""),
    )
    run.env.extend(_env_from_spec(spec.get("env")))
    limits = spec.get("resourceLimits") or {}
    if limits.get("nofile") is not None:
        run.resource_limits.nofile = int(limits["nofile"])
    return run


def _env_from_spec(env: list[dict[str, Any]] | None) -> list[models.EnvironmentVariable]:
    return [
        models.EnvironmentVariable(name=e.get("name", ""), value=e.get("value") or "")
        for e in env or ()
    ]


def encode_definition(td: models.TaskDefinition) -> str:
    """The `DEFINITION_ANNOTATION` value for ``td``: standard base64 of its protobuf bytes."""
    return base64.standard_b64encode(td.SerializeToString(deterministic=True)).decode("ascii")


def stored_definition(obj: dict[str, Any]) -> models.TaskDefinition | None:
    """The TaskDefinition kept in the object's `DEFINITION_ANNOTATION`; None when absent or bad."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(DEFINITION_ANNOTATION)
    if value is None:
        return None
    td = models.TaskDefinition()
    try:
        td.ParseFromString(base64.standard_b64decode(value.encode("ascii")))
    except (binascii.Error, ValueError, RuntimeError, UnicodeEncodeError, DecodeError):
        log.warning(
            "ignoring an unreadable %s annotation; the task definition comes from the spec",
            DEFINITION_ANNOTATION,
            extra={"task": (obj.get("metadata") or {}).get("name")},
        )
        return None
    td.SetInParent()
    return td


def resource_to_task(obj: dict[str, Any]) -> models.Task:
    """The V3 wire Task for a Task object; ``task_definition`` is always present.

    No status yet (just created, not reconciled) reads as Pending, created when the object was.
    """
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    task = models.Task(
        task_guid=spec.get("guid") or metadata.get("name", ""),
        domain=spec.get("domain", ""),
        state=cast(models.Task.State, _state_number(status.get("state"))),
        cell_id=status.get("cellId", ""),
        result=text_to_wire(status.get("result", "")),
        failed=bool(status.get("failed", False)),
        failure_reason=text_to_wire(status.get("failureReason", "")),
        rejection_count=int(status.get("rejectionCount", 0)),
        rejection_reason=text_to_wire(status.get("rejectionReason", "")),
    )
    stored = stored_definition(obj)
    task.task_definition.CopyFrom(stored if stored is not None else spec_to_task_definition(spec))
    created = _time_ns(status.get("createdAt")) or _time_ns(metadata.get("creationTimestamp"))
    task.created_at = created
    task.updated_at = _time_ns(status.get("updatedAt")) or created
    task.first_completed_at = _time_ns(status.get("firstCompletedAt"))
    return task


def _state_number(state: str | None) -> int:
    try:
        return TaskState(state or TaskState.PENDING).bbs_value
    except ValueError:
        return models.Task.Invalid


def _time_ns(value: str | None) -> int:
    return parse_ns(value) if value else 0


def text_to_wire(text: str) -> bytes:
    """A status string as wire bytes: UTF-8; bytes smuggled with ``surrogateescape`` come back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")
