"""BBS wire messages ⇄ the Task custom resource (plain dicts, camelCase).

`task_definition_to_spec` turns a validated DesireTask into a Task ``spec``. Every field taskop
cannot honour is rejected with InvalidRequest naming it ("<field> is not supported by taskop"),
never silently dropped: a field is either mapped below or refused. Metadata only fields
(log_source, log_guid, metrics_guid) are kept.

Actions become ``spec.action``, the same tree, which the in-pod executor runs. Secrets never
enter the spec: image credentials and volume-mounted file contents become Secrets owned by the
Task (`owned_secrets`), and the environment's values (the task's and every run action's: Cloud
Controller puts service credentials in ``VCAP_SERVICES``) keys of its definition Secret, which
the spec names by ``valueFrom.secretKeyRef`` (`secret_env`). Volume services (``volume_mounts``)
are refused with their own message.

An external task's whole TaskDefinition (image credentials, mounted files and environment
included) is kept in a Secret owned by its Task (`definition_secret`), named by the Task's
`DEFINITION_SECRET_ANNOTATION`; nothing of it that a ``view`` user could read is in the Task. A
Job-run task with environment values keeps them in the same kind of Secret, with its definition
as BBS clients are shown it (`job_run_definition`), so that BBS answers carry the values the
spec only references.

`resource_to_task` builds the V3 wire `Task` from a Task object (metadata, spec, status) and, for
an external task, the definition read back from its Secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from typing import Any, cast

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError, Message

from taskop.bbs import models
from taskop.bbs.validation import ACTION_FIELDS, action_kind
from taskop.domain.errors import BBSError
from taskop.domain.jobs import files_secret_key
from taskop.domain.names import (
    definition_secret_name,
    files_secret_name,
    registry_secret_name,
    task_name,
)
from taskop.domain.states import TaskState
from taskop.domain.timefmt import parse_ns

DOCKER_ROOTFS_PREFIX = "docker:///"
DEFINITION_ANNOTATION = "taskop.dev/bbs-task-definition"
"""Where taskop before the definition Secrets kept an external task's whole TaskDefinition (base64
of its protobuf bytes, readable by anyone who may read the Task): still read from Tasks made then,
never written."""
DEFINITION_SECRET_ANNOTATION = "taskop.dev/bbs-definition-secret"
"""On an external task's Task: the name of the Secret holding its TaskDefinition (a name only)."""
DEFINITION_SECRET_LABEL = "taskop.dev/bbs-task-definition"
"""Label (value ``true``) of the definition Secrets: the BBS door watches the Secrets having it."""
DEFINITION_SECRET_SELECTOR = f"{DEFINITION_SECRET_LABEL}=true"
DEFINITION_KEY = "task-definition"
"""The definition Secret's key: the TaskDefinition's protobuf bytes."""
ENV_KEY_PREFIX = "env-"
"""A Job-run task's definition Secret also holds each environment value under ``env-<n>``, n
counting the task's env, then every run action's in tree order (`secret_env`): the pod's
variables take them by ``secretKeyRef``."""

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
    "trusted_system_certificates_path": "trustedSystemCertificatesPath",
}
_SCALAR_FIELDS = {"root_fs": "rootfs", **SUMMARY_SCALARS}
_TASK_DEFINITION_MAPPED = {
    *_SCALAR_FIELDS,
    "environment_variables",
    "placement_tags",
    "action",
    "cached_dependencies",
    "image_layers",
    "log_rate_limit",
    "egress_rules",
    "metric_tags",
    "network",
    "certificate_properties",
    "legacy_download_user",
    "image_username",  # an image pull Secret of the Task's own (`registry_secret`)
    "image_password",
    "volume_mounted_files",  # paths in the spec, contents in the files Secret (`files_secret`)
}
_RUN_MAPPED = {
    "path",
    "args",
    "dir",
    "env",
    "resource_limits",
    "user",
    "log_source",
    "suppress_log_output",
}


# --- wire → spec ----------------------------------------------------------------------------------


def task_definition_to_spec(td: models.TaskDefinition, guid: str, domain: str) -> dict[str, Any]:
    """The Task ``spec`` for a DesireTask; validate first (`validation.validate_task_definition`).

    Raises InvalidRequest naming every field taskop cannot honour.
    """
    refused: list[str] = []
    problems: list[str] = []
    for field, _ in td.ListFields():
        if field.name == "volume_mounts":
            drivers = ", ".join(sorted({m.driver for m in td.volume_mounts})) or "none named"
            problems.append(
                f"volume_mounts (volume services, driver {drivers}) cannot be mounted: Kubernetes"
                " Jobs have no BBS volume drivers; unbind the volume service from the app, or run"
                " this domain on external cells"
            )
        elif field.name not in _TASK_DEFINITION_MAPPED:
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

    if td.HasField("action"):
        spec["action"] = _action_to_spec(td.action, "action", refused)
    if td.cached_dependencies:
        spec["downloads"] = [_dependency_to_spec(d) for d in td.cached_dependencies]
    if td.image_layers:
        spec["imageLayers"] = [_layer_to_spec(layer) for layer in td.image_layers]
    if td.HasField("log_rate_limit"):
        spec["logRateLimit"] = td.log_rate_limit.bytes_per_second
    if td.egress_rules:
        spec["egressRules"] = [_rule_to_spec(rule) for rule in td.egress_rules]
    if td.metric_tags:
        spec["metricTags"] = {k: _tag_to_spec(v) for k, v in td.metric_tags.items()}
    if td.HasField("network"):
        spec["networkProperties"] = dict(td.network.properties)
    if td.HasField("certificate_properties"):
        spec["certificateOrganizationalUnits"] = list(td.certificate_properties.organizational_unit)
    if td.legacy_download_user:
        spec["legacyDownloadUser"] = td.legacy_download_user
    if td.volume_mounted_files:  # the contents go into a Secret, never into the Task
        spec["volumeMountedFiles"] = [{"path": f.path} for f in td.volume_mounted_files]
    if td.image_username:  # the credentials themselves go into a Secret, never into the Task
        secret = {"name": registry_secret_name(task_name(guid))}
        spec["podTemplate"] = {"imagePullSecrets": [secret]}
    if refused or problems:
        not_supported = [f"{field} is not supported by taskop" for field in refused]
        raise BBSError.invalid_request([*not_supported, *problems])
    return spec


def _strings(message: Message, fields: dict[str, str]) -> dict[str, Any]:
    """The non-empty string ``fields`` (wire name → spec key) of ``message``."""
    return {key: getattr(message, name) for name, key in fields.items() if getattr(message, name)}


_DOWNLOAD = {
    "artifact": "artifact",
    "from": "from",
    "to": "to",
    "cache_key": "cacheKey",
    "log_source": "logSource",
    "user": "user",
    "checksum_value": "checksumValue",
}
_UPLOAD = {
    "artifact": "artifact",
    "from": "from",
    "to": "to",
    "log_source": "logSource",
    "user": "user",
}
_EMIT = {
    "start_message": "startMessage",
    "success_message": "successMessage",
    "failure_message_prefix": "failureMessagePrefix",
    "log_source": "logSource",
}
_DEPENDENCY = {
    "name": "name",
    "from": "from",
    "to": "to",
    "cache_key": "cacheKey",
    "log_source": "logSource",
    "checksum_value": "checksumValue",
}
_ACTION_KEYS = {
    "download_action": "download",
    "upload_action": "upload",
    "run_action": "run",
    "timeout_action": "timeout",
    "emit_progress_action": "emitProgress",
    "try_action": "try",
    "parallel_action": "parallel",
    "serial_action": "serial",
    "codependent_action": "codependent",
}


def _action_to_spec(action: models.Action, path: str, refused: list[str]) -> dict[str, Any]:
    """The spec's action tree for a wire action (every kind: the executor runs them in the pod);
    what cannot be honoured goes to ``refused``."""
    kind = action_kind(action)
    refused.extend(
        f"{path}.{name}" for name in ACTION_FIELDS if name != kind and action.HasField(name)
    )
    if kind is None:
        refused.append(path)  # unreachable after validation: an empty action
        return {}
    here = f"{path}.{kind}"
    inner: Any = getattr(action, kind)
    out: dict[str, Any]
    match kind:
        case "run_action":
            refused.extend(
                f"{here}.{field.name}"
                for field, _ in inner.ListFields()
                if field.name not in _RUN_MAPPED
            )
            if inner.HasField("resource_limits") and inner.resource_limits.HasField("nproc"):
                refused.append(f"{here}.resource_limits.nproc")
            out = _run_to_spec(inner)
        case "download_action":
            out = _strings(inner, _DOWNLOAD)
            if inner.checksum_algorithm:
                out["checksumAlgorithm"] = inner.checksum_algorithm.lower()
        case "upload_action":
            out = _strings(inner, _UPLOAD)
        case "timeout_action":
            millis = inner.timeout_ms or math.ceil(inner.deprecated_timeout_ns / 1_000_000)
            out = {"action": _action_to_spec(inner.action, f"{here}.action", refused)}
            out["timeoutMs"] = millis
            if inner.log_source:
                out["logSource"] = inner.log_source
        case "emit_progress_action" | "try_action":
            out = {"action": _action_to_spec(inner.action, f"{here}.action", refused)}
            out.update(
                _strings(
                    inner, _EMIT if kind == "emit_progress_action" else {"log_source": "logSource"}
                )
            )
        case _:  # parallel, serial, codependent
            out = {
                "actions": [
                    _action_to_spec(child, f"{here}.actions[{i}]", refused)
                    for i, child in enumerate(inner.actions)
                ]
            }
            if inner.log_source:
                out["logSource"] = inner.log_source
    return {_ACTION_KEYS[kind]: out}


def owned_secrets(td: models.TaskDefinition, task: str) -> list[dict[str, Any]]:
    """The Secrets (no owner yet) a Job-run task needs: image credentials, mounted files."""
    return [s for s in (registry_secret(td, task), files_secret(td, task)) if s is not None]


def files_secret(td: models.TaskDefinition, task: str) -> dict[str, Any] | None:
    """The Secret of a definition's volume-mounted files, one key per file in order
    (`jobs.files_secret_key`); the Job mounts each key at its path."""
    if not td.volume_mounted_files:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": files_secret_name(task)},
        "data": {
            files_secret_key(i): base64.standard_b64encode(
                f.content.encode("utf-8", "surrogateescape")
            ).decode("ascii")
            for i, f in enumerate(td.volume_mounted_files)
        },
    }


def registry_secret(td: models.TaskDefinition, task: str) -> dict[str, Any] | None:
    """The image pull Secret (no owner yet) for a definition with image credentials."""
    if not td.image_username:
        return None
    _, _, rest = td.root_fs.partition("://")
    host = rest.split("/", 1)[0] or "https://index.docker.io/v1/"  # docker:///x: Docker Hub
    pair = f"{td.image_username}:{td.image_password}".encode("utf-8", "surrogateescape")
    auth = {
        "username": td.image_username,
        "password": td.image_password,
        "auth": base64.standard_b64encode(pair).decode("ascii"),
    }
    config = json.dumps({"auths": {host: auth}}, separators=(",", ":"))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": registry_secret_name(task)},
        "data": {".dockerconfigjson": base64.standard_b64encode(config.encode()).decode("ascii")},
    }


def definition_secret(
    td: models.TaskDefinition, task: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Secret (no owner yet) keeping a task's TaskDefinition: its protobuf bytes, so BBS
    clients get back exactly what was desired (an external task's whole definition; a Job-run
    task's `job_run_definition`), and ``env``: a Job-run task's environment values by key
    (`secret_env`)."""
    data = td.SerializeToString(deterministic=True)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": definition_secret_name(task),
            "labels": {DEFINITION_SECRET_LABEL: "true"},
        },
        "data": {
            DEFINITION_KEY: base64.standard_b64encode(data).decode("ascii"),
            **{key: _b64(value) for key, value in (env or {}).items()},
        },
    }


def _b64(text: str) -> str:
    return base64.standard_b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")


def secret_env(spec: dict[str, Any], secret: str) -> dict[str, str]:
    """Take every environment value out of a Job-run task's ``spec`` (``env`` and each run
    action's, in place): each variable with a value gets ``valueFrom.secretKeyRef`` to the key
    ``env-<n>`` of the Secret ``secret`` instead. Returns those keys' values (empty when there
    were none: nothing to hide). A ``view`` user reads the Task, its Job and its pod; the kubelet
    fills the variables in, and the executor hands a run action's to its process alone."""
    values: dict[str, str] = {}

    def hide(env: list[dict[str, Any]]) -> None:
        for var in env:
            if var.get("value"):
                key = f"{ENV_KEY_PREFIX}{len(values)}"
                values[key] = var.pop("value")
                var["valueFrom"] = {"secretKeyRef": {"name": secret, "key": key}}

    def visit(node: dict[str, Any]) -> None:
        for kind, inner in node.items():
            if kind == "run":
                hide(inner.get("env") or [])
            for child in inner.get("actions") or ([inner["action"]] if "action" in inner else []):
                visit(child)

    hide(spec.get("env") or [])
    if spec.get("action"):
        visit(spec["action"])
    return values


def job_run_definition(td: models.TaskDefinition) -> models.TaskDefinition:
    """What BBS clients are shown of a Job-run task's definition: all of it but the image
    credentials and the volume-mounted files' contents (in their own Secrets, for the pod only;
    never shown of a Job-run task)."""
    shown = models.TaskDefinition()
    shown.CopyFrom(td)
    shown.image_username = shown.image_password = ""
    for mounted in shown.volume_mounted_files:
        mounted.content = ""
    return shown


def _tag_to_spec(tag: models.MetricTagValue) -> dict[str, Any]:
    out: dict[str, Any] = {"static": tag.static} if tag.static else {}
    if tag.dynamic:
        out["dynamic"] = models.MetricTagValue.DynamicValue.Name(tag.dynamic)
    return out


def _rule_to_spec(rule: models.SecurityGroupRule) -> dict[str, Any]:
    out: dict[str, Any] = {"protocol": rule.protocol, "destinations": list(rule.destinations)}
    if rule.ports:
        out["ports"] = list(rule.ports)
    if rule.HasField("port_range"):
        out["portRange"] = {"start": rule.port_range.start, "end": rule.port_range.end}
    if rule.HasField("icmp_info"):
        out["icmpInfo"] = {"type": rule.icmp_info.type, "code": rule.icmp_info.code}
    if rule.log:
        out["log"] = True
    if rule.annotations:
        out["annotations"] = list(rule.annotations)
    return out


def _rule_from_spec(spec: dict[str, Any]) -> models.SecurityGroupRule:
    rule = models.SecurityGroupRule(
        protocol=spec.get("protocol", ""),
        destinations=spec.get("destinations") or (),
        ports=spec.get("ports") or (),
        log=bool(spec.get("log")),
        annotations=spec.get("annotations") or (),
    )
    if (port_range := spec.get("portRange")) is not None:
        rule.port_range.start, rule.port_range.end = port_range["start"], port_range["end"]
    if (icmp := spec.get("icmpInfo")) is not None:
        rule.icmp_info.SetInParent()
        rule.icmp_info.type, rule.icmp_info.code = icmp["type"], icmp["code"]
    return rule


def _dependency_to_spec(dependency: models.CachedDependency) -> dict[str, Any]:
    out = _strings(dependency, _DEPENDENCY)
    if dependency.checksum_algorithm:
        out["checksumAlgorithm"] = dependency.checksum_algorithm.lower()
    return out


def _layer_to_spec(layer: models.ImageLayer) -> dict[str, Any]:
    out = _strings(layer, {"name": "name", "url": "url", "destination_path": "destinationPath"})
    out["layerType"] = models.ImageLayer.Type.Name(layer.layer_type)
    out["mediaType"] = models.ImageLayer.MediaType.Name(layer.media_type)
    if layer.digest_value:
        out["digestAlgorithm"] = models.ImageLayer.DigestAlgorithm.Name(layer.digest_algorithm)
        out["digestValue"] = layer.digest_value
    return out


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
    if run.suppress_log_output:
        spec["suppressLogOutput"] = True
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
    action = spec.get("action")
    if action:
        timeout_seconds = spec.get("timeoutSeconds")
        if timeout_seconds:  # the Job's deadline, shown to BBS clients as an outer timeout
            td.action.timeout_action.timeout_ms = int(timeout_seconds) * 1000
            td.action.timeout_action.action.CopyFrom(_action_from_spec(action))
        else:
            td.action.CopyFrom(_action_from_spec(action))
    for dependency in spec.get("downloads") or ():
        td.cached_dependencies.append(_dependency_from_spec(dependency))
    for layer in spec.get("imageLayers") or ():
        td.image_layers.append(_layer_from_spec(layer))
    if spec.get("logRateLimit") is not None:
        td.log_rate_limit.bytes_per_second = int(spec["logRateLimit"])
    td.egress_rules.extend(_rule_from_spec(rule) for rule in spec.get("egressRules") or ())
    for name, tag in (spec.get("metricTags") or {}).items():
        value = td.metric_tags[name]
        value.static = tag.get("static", "")
        if tag.get("dynamic"):
            value.dynamic = models.MetricTagValue.DynamicValue.Value(tag["dynamic"])
    if spec.get("networkProperties") is not None:
        td.network.SetInParent()
        td.network.properties.update(spec["networkProperties"])
    if spec.get("certificateOrganizationalUnits") is not None:
        td.certificate_properties.SetInParent()
        td.certificate_properties.organizational_unit.extend(spec["certificateOrganizationalUnits"])
    if spec.get("legacyDownloadUser"):
        td.legacy_download_user = spec["legacyDownloadUser"]
    for mounted in spec.get("volumeMountedFiles") or ():  # contents stay in the Secret
        td.volume_mounted_files.add(path=mounted["path"])
    return td


def _set_strings(message: Message, spec: dict[str, Any], fields: dict[str, str]) -> None:
    for name, key in fields.items():
        if spec.get(key):
            setattr(message, name, spec[key])


def _action_from_spec(spec: dict[str, Any]) -> models.Action:
    action = models.Action()
    for kind, key in _ACTION_KEYS.items():
        if key not in spec:
            continue
        inner = spec[key] or {}
        target = getattr(action, kind)
        match kind:
            case "run_action":
                target.CopyFrom(_run_from_spec(inner))
            case "download_action":
                _set_strings(target, inner, _DOWNLOAD)
                if inner.get("checksumAlgorithm"):
                    target.checksum_algorithm = inner["checksumAlgorithm"]
            case "upload_action":
                _set_strings(target, inner, _UPLOAD)
            case "timeout_action":
                target.action.CopyFrom(_action_from_spec(inner.get("action") or {}))
                target.timeout_ms = int(inner.get("timeoutMs") or 0)
                _set_strings(target, inner, {"log_source": "logSource"})
            case "emit_progress_action" | "try_action":
                target.action.CopyFrom(_action_from_spec(inner.get("action") or {}))
                fields = _EMIT if kind == "emit_progress_action" else {"log_source": "logSource"}
                _set_strings(target, inner, fields)
            case _:
                target.SetInParent()
                for child in inner.get("actions") or ():
                    target.actions.append(_action_from_spec(child))
                _set_strings(target, inner, {"log_source": "logSource"})
        break
    return action


def _dependency_from_spec(spec: dict[str, Any]) -> models.CachedDependency:
    dependency = models.CachedDependency()
    _set_strings(dependency, spec, _DEPENDENCY)
    if spec.get("checksumAlgorithm"):
        dependency.checksum_algorithm = spec["checksumAlgorithm"]
    return dependency


def _layer_from_spec(spec: dict[str, Any]) -> models.ImageLayer:
    layer = models.ImageLayer()
    _set_strings(layer, spec, {"name": "name", "url": "url", "destination_path": "destinationPath"})
    layer.layer_type = models.ImageLayer.Type.Value(spec.get("layerType", "SHARED"))
    layer.media_type = models.ImageLayer.MediaType.Value(spec.get("mediaType", "TGZ"))
    if spec.get("digestValue"):
        layer.digest_algorithm = models.ImageLayer.DigestAlgorithm.Value(spec["digestAlgorithm"])
        layer.digest_value = spec["digestValue"]
    return layer


def _run_from_spec(spec: dict[str, Any]) -> models.RunAction:
    run = models.RunAction(
        path=spec.get("path", ""),
        args=spec.get("args") or (),
        dir=spec.get("dir", ""),
        user=spec.get("user", ""),
        log_source=spec.get("logSource", ""),
    )
    run.env.extend(_env_from_spec(spec.get("env")))
    run.suppress_log_output = bool(spec.get("suppressLogOutput"))
    limits = spec.get("resourceLimits") or {}
    if limits.get("nofile") is not None:
        run.resource_limits.nofile = int(limits["nofile"])
    return run


def _env_from_spec(env: list[dict[str, Any]] | None) -> list[models.EnvironmentVariable]:
    return [
        models.EnvironmentVariable(name=e.get("name", ""), value=e.get("value") or "")
        for e in env or ()
    ]


def definition_secret_of(obj: dict[str, Any]) -> str | None:
    """The name of the Secret holding the Task's TaskDefinition (`DEFINITION_SECRET_ANNOTATION`);
    None for a Task whose definition is its spec (or, made by an older taskop, an annotation)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    name = annotations.get(DEFINITION_SECRET_ANNOTATION)
    return str(name) if name else None


def definition_bytes(secret: dict[str, Any]) -> bytes | None:
    """A definition Secret's TaskDefinition bytes (still encoded); None when it has none."""
    value = (secret.get("data") or {}).get(DEFINITION_KEY)
    if value is None:
        return None
    try:
        return base64.standard_b64decode(str(value).encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def parse_definition(data: bytes) -> models.TaskDefinition | None:
    """The TaskDefinition of ``data`` (protobuf bytes); None when they are not one."""
    td = models.TaskDefinition()
    try:
        td.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError):
        return None
    td.SetInParent()
    return td


def stored_definition(obj: dict[str, Any]) -> models.TaskDefinition | None:
    """The TaskDefinition in the legacy `DEFINITION_ANNOTATION` (Tasks made before the definition
    Secrets); None when absent or bad."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(DEFINITION_ANNOTATION)
    if value is None:
        return None
    td = None
    with contextlib.suppress(binascii.Error, ValueError, UnicodeEncodeError):
        td = parse_definition(base64.standard_b64decode(value.encode("ascii")))
    if td is None:
        log.warning(
            "ignoring an unreadable %s annotation; the task definition comes from the spec",
            DEFINITION_ANNOTATION,
            extra={"task": (obj.get("metadata") or {}).get("name")},
        )
    return td


def resource_to_task(
    obj: dict[str, Any], definition: models.TaskDefinition | None = None
) -> models.Task:
    """The V3 wire Task for a Task object; ``task_definition`` is always present: ``definition``
    when given (an external task's, from its Secret), else the legacy annotation's, else the one
    the spec describes.

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
    if definition is None:
        definition = stored_definition(obj)
    task.task_definition.CopyFrom(
        definition if definition is not None else spec_to_task_definition(spec)
    )
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
