"""BBS request validation (spec §6), message for message and in BBS's order.

Each ``validate_*`` function is pure and returns the ordered list of messages (empty: valid); the
server joins them with ", " into one InvalidRequest (`check`). Sources: cloudfoundry/bbs
``models/task_requests.go``, ``task.go``, ``actions.go``, ``security_groups.go``,
``image_layer.go``, ``cached_dependency.go``.

Where Go would crash instead of answering, taskop answers with a message:
- a wrapper action (timeout, try, emit_progress) or a list element (parallel, serial, codependent)
  holding an *empty* ``Action`` panics in BBS (nil interface); taskop reports
  "Invalid field: inner-action", like an empty top-level action.
taskop additions, as in `taskop.domain.lifecycle`: task_guid, domain and cell_id longer than 255
characters (the reference database's column size) are invalid with the field's usual message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from taskop.bbs import models
from taskop.domain.errors import BBSError
from taskop.domain.lifecycle import GUID_PATTERN, MAX_ID_LENGTH

MAXIMUM_ANNOTATION_LENGTH = 10 * 1024  # bytes (Go len())
INVALID_ACTION_TYPE = "invalid action type"
_CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256")


def invalid(field: str) -> str:
    """Go's ``ErrInvalidField{field}.Error()``."""
    return f"Invalid field: {field}"


def check(messages: list[str]) -> None:
    """Raise InvalidRequest with the joined messages, if any."""
    if messages:
        raise BBSError.invalid_request(messages)


# --- requests -------------------------------------------------------------------------------------


def _valid_guid(guid: str) -> bool:
    return GUID_PATTERN.fullmatch(guid) is not None and len(guid) <= MAX_ID_LENGTH


def _valid_id(value: str) -> bool:
    return value != "" and len(value) <= MAX_ID_LENGTH


def validate_desire_task_request(req: models.DesireTaskRequest) -> list[str]:
    errors = []
    if not _valid_guid(req.task_guid):
        errors.append(invalid("task_guid"))
    if not _valid_id(req.domain):
        errors.append(invalid("domain"))
    if not req.HasField("task_definition"):
        errors.append(invalid("task_definition"))
    else:
        errors.extend(validate_task_definition(req.task_definition))
    return errors


def validate_start_task_request(req: models.StartTaskRequest) -> list[str]:
    errors = []
    if not _valid_guid(req.task_guid):
        errors.append(invalid("task_guid"))
    if not _valid_id(req.cell_id):
        errors.append(invalid("cell_id"))
    return errors


def validate_complete_task_request(req: models.CompleteTaskRequest) -> list[str]:
    errors = []
    if not _valid_guid(req.task_guid):
        errors.append(invalid("task_guid"))
    if not _valid_id(req.cell_id):
        errors.append(invalid("cell_id"))
    return errors


def validate_fail_task_request(req: models.FailTaskRequest) -> list[str]:
    errors = []
    if not _valid_guid(req.task_guid):
        errors.append(invalid("task_guid"))
    if not req.failure_reason:
        errors.append(invalid("failure_reason"))
    return errors


def validate_reject_task_request(req: models.RejectTaskRequest) -> list[str]:
    errors = []
    if not _valid_guid(req.task_guid):
        errors.append(invalid("task_guid"))
    if not req.rejection_reason:
        errors.append(invalid("failure_reason"))  # sic: BBS names the wrong field
    return errors


def validate_task_guid_request(req: models.TaskGuidRequest | models.TaskByGuidRequest) -> list[str]:
    """TaskGuidRequest (Cancel, Resolving, Delete) and TaskByGuidRequest: a non-empty guid only."""
    return [] if req.task_guid else [invalid("task_guid")]


def validate_tasks_request(req: models.TasksRequest) -> list[str]:
    """TasksRequest has no validation: its fields are optional filters."""
    return []


def validate_upsert_domain_request(req: models.UpsertDomainRequest) -> list[str]:
    """``UpsertDomainRequest.Validate``: a non-empty domain (any ttl; 0 never expires)."""
    return [] if req.domain else [invalid("domain")]


_REQUEST_VALIDATORS: dict[type[Any], Callable[[Any], list[str]]] = {
    models.UpsertDomainRequest: validate_upsert_domain_request,
    models.DesireTaskRequest: validate_desire_task_request,
    models.StartTaskRequest: validate_start_task_request,
    models.CompleteTaskRequest: validate_complete_task_request,
    models.FailTaskRequest: validate_fail_task_request,
    models.RejectTaskRequest: validate_reject_task_request,
    models.TaskGuidRequest: validate_task_guid_request,
    models.TaskByGuidRequest: validate_task_guid_request,
    models.TasksRequest: validate_tasks_request,
}


def validate_request(req: Any) -> list[str]:
    """The messages for any task request message; TypeError for a message that is not one."""
    try:
        validator = _REQUEST_VALIDATORS[type(req)]
    except KeyError:
        raise TypeError(f"no validation for {type(req).__name__}") from None
    return validator(req)


# --- task definition ------------------------------------------------------------------------------


def validate_task_definition(td: models.TaskDefinition) -> list[str]:
    """``TaskDefinition.Validate``."""
    errors = []
    if not td.root_fs or not is_url_with_scheme(td.root_fs):
        errors.append(invalid("rootfs"))
    if not td.HasField("action"):
        errors.append(INVALID_ACTION_TYPE)
    else:
        action_errors = validate_action(td.action)
        if action_errors:
            errors.append(invalid("action"))
            errors.extend(action_errors)
    if td.memory_mb < 0:
        errors.append(invalid("memory_mb"))
    if td.disk_mb < 0:
        errors.append(invalid("disk_mb"))
    if td.HasField("log_rate_limit") and td.log_rate_limit.bytes_per_second < -1:
        errors.append(invalid("log_rate_limit"))
    if td.max_pids < 0:
        errors.append(invalid("max_pids"))
    if len(td.annotation.encode()) > MAXIMUM_ANNOTATION_LENGTH:
        errors.append(invalid("annotation"))
    for rule in td.egress_rules:
        if validate_security_group_rule(rule):
            errors.append(invalid("egress_rules"))
    if not td.image_username and td.image_password:
        errors.append(invalid("image_username"))
    if td.image_username and not td.image_password:
        errors.append(invalid("image_password"))
    for dependency in td.cached_dependencies:
        dependency_errors = validate_cached_dependency(dependency)
        if dependency_errors:
            errors.append(invalid("cached_dependency"))
            errors.extend(dependency_errors)
    errors.extend(validate_image_layers(td.image_layers, td.legacy_download_user))
    return errors


# Go's net/url.Parse, as far as it matters here: it fails on ASCII control characters, on a leading
# ":" ("missing protocol scheme"), on bad %-escapes outside the query and on a non-numeric port; a
# scheme is letters, digits, "+", "-", "." after a first letter, then ":".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_CHARS = "-._~!$&'()*+,;=:[]<>\"%"


def _valid_optional_port(port: str) -> bool:
    """Go's ``validOptionalPort``: empty, or ":" followed by ASCII digits only."""
    return port == "" or (port[0] == ":" and all(c in "0123456789" for c in port[1:]))


def is_url_with_scheme(raw: str) -> bool:
    """Whether Go's ``url.Parse(raw)`` succeeds with a non-empty scheme."""
    if _CONTROL.search(raw):
        return False
    scheme = _SCHEME.match(raw)
    if scheme is None:
        return False
    rest, _, fragment = raw[scheme.end() :].partition("#")
    path_part = rest.partition("?")[0]
    if _BAD_ESCAPE.search(path_part) or _BAD_ESCAPE.search(fragment):
        return False
    if path_part.startswith("//"):
        host = path_part[2:].partition("/")[0].rpartition("@")[2]
        if any(c.isascii() and not (c.isalnum() or c in _HOST_CHARS) for c in host):
            return False
        if host.startswith("["):
            closing = host.find("]")
            if closing < 0 or not _valid_optional_port(host[closing + 1 :]):
                return False
        elif ":" in host and not _valid_optional_port(host[host.rindex(":") :]):
            return False
    return True


# --- actions --------------------------------------------------------------------------------------

ACTION_FIELDS = (
    "download_action",
    "upload_action",
    "run_action",
    "timeout_action",
    "emit_progress_action",
    "try_action",
    "parallel_action",
    "serial_action",
    "codependent_action",
)


def action_kind(action: models.Action) -> str | None:
    """The field name of the action's value: the first present one in field order, as in Go."""
    for name in ACTION_FIELDS:
        if action.HasField(name):
            return name
    return None


def validate_action(action: models.Action) -> list[str]:
    """``Action.Validate`` for a present action."""
    return _validate_inner(action)


def _validate_inner(action: models.Action) -> list[str]:
    kind = action_kind(action)
    if kind is None:
        return [invalid("inner-action")]
    return _ACTION_VALIDATORS[kind](getattr(action, kind))


def _validate_download(a: models.DownloadAction) -> list[str]:
    errors = []
    if not getattr(a, "from"):
        errors.append(invalid("from"))
    if not a.to:
        errors.append(invalid("to"))
    if not a.user:
        errors.append(invalid("user"))
    errors.extend(_checksum_errors(a.checksum_algorithm, a.checksum_value))
    return errors


def _checksum_errors(algorithm: str, value: str) -> list[str]:
    errors = []
    if value and not algorithm:
        errors.append(invalid("checksum algorithm"))
    if not value and algorithm:
        errors.append(invalid("checksum value"))
    if value and algorithm and algorithm.lower() not in _CHECKSUM_ALGORITHMS:
        errors.append(invalid("invalid algorithm"))
    return errors


def _validate_upload(a: models.UploadAction) -> list[str]:
    errors = []
    if not a.to:
        errors.append(invalid("to"))
    if not getattr(a, "from"):
        errors.append(invalid("from"))
    if not a.user:
        errors.append(invalid("user"))
    return errors


def _validate_run(a: models.RunAction) -> list[str]:
    errors = []
    if not a.path:
        errors.append(invalid("path"))
    if not a.user:
        errors.append(invalid("user"))
    return errors


def _validate_wrapped(
    a: models.TimeoutAction | models.TryAction | models.EmitProgressAction,
) -> list[str]:
    if not a.HasField("action"):
        return [invalid("action")]
    return _validate_inner(a.action)


def _validate_timeout(a: models.TimeoutAction) -> list[str]:
    errors = _validate_wrapped(a)
    if a.timeout_ms <= 0:
        errors.append(invalid("timeout_ms"))
    return errors


def _validate_list(
    a: models.ParallelAction | models.SerialAction | models.CodependentAction,
) -> list[str]:
    if not a.actions:
        return [invalid("actions")]
    errors = []
    for inner in a.actions:
        errors.extend(_validate_inner(inner))
    return errors


_ACTION_VALIDATORS: dict[str, Callable[[Any], list[str]]] = {
    "download_action": _validate_download,
    "upload_action": _validate_upload,
    "run_action": _validate_run,
    "timeout_action": _validate_timeout,
    "emit_progress_action": _validate_wrapped,
    "try_action": _validate_wrapped,
    "parallel_action": _validate_list,
    "serial_action": _validate_list,
    "codependent_action": _validate_list,
}


# --- egress rules, cached dependencies, image layers ----------------------------------------------


def validate_security_group_rule(rule: models.SecurityGroupRule) -> list[str]:
    """``SecurityGroupRule.Validate``; BBS reports any failure as "Invalid field: egress_rules"."""
    errors: list[str] = []
    has_range = rule.HasField("port_range")
    has_icmp = rule.HasField("icmp_info")
    has_ports = len(rule.ports) > 0  # Go: Ports != nil; decoding never yields an empty non-nil list
    match rule.protocol:
        case "tcp" | "udp":
            errors.extend(_port_errors(rule))
            if has_icmp:
                errors.append(invalid("icmp_info"))
        case "icmp" | "icmpv6":
            if has_range:
                errors.append(invalid("port_range"))
            if has_ports:
                errors.append(invalid("ports"))
            if not has_icmp:
                errors.append(invalid("icmp_info" if rule.protocol == "icmp" else "icmpv6_info"))
        case "all":
            if has_range:
                errors.append(invalid("port_range"))
            if has_ports:
                errors.append(invalid("ports"))
            if has_icmp:
                errors.append(invalid("icmp_info"))
        case _:
            errors.append(invalid("protocol"))
    destination_error = _destinations_error(list(rule.destinations))
    if destination_error:
        errors.append(invalid(f"destinations [ {destination_error} ]"))
    return errors


def _port_errors(rule: models.SecurityGroupRule) -> list[str]:
    has_range = rule.HasField("port_range")
    if not has_range and not rule.ports:
        return ["Missing required field: ports or port_range"]
    if has_range and rule.ports:
        return ["Invalid: ports and port_range provided"]
    errors = []
    if has_range:
        start, end = rule.port_range.start, rule.port_range.end
        if start < 1:
            errors.append(invalid("port_range"))
        if end < 1:
            errors.append(invalid("port_range"))
        if start > end:
            errors.append(invalid("port_range"))
    errors.extend(invalid("ports") for port in rule.ports if port < 1)
    return errors


def _destinations_error(destinations: list[str]) -> str | None:
    if not destinations:
        return "Must have at least 1 destination"
    errors = []
    for destination in (part for d in destinations for part in d.split(",")):
        separator = re.search(r"[-/]", destination)
        if separator is None:
            if _parse_ip(destination) is None:
                errors.append("Invalid IP")
        elif separator.group() == "/":
            if not _is_cidr(destination):
                errors.append(f"invalid CIDR address: {destination}")
        else:
            first = _parse_ip(destination[: separator.start()])
            last = _parse_ip(destination[separator.start() + 1 :])
            if first is None or last is None or first > last:
                errors.append("Invalid IP")
    return ", ".join(errors) or None


def _parse_ip(text: str) -> bytes | None:
    """Go's ``net.ParseIP`` as 16 bytes (IPv4 as ::ffff:a.b.c.d), or None."""
    if "%" in text:  # Go's ParseIP takes no zone
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + address.packed
    return address.packed


def _is_cidr(text: str) -> bool:
    """Go's ``net.ParseCIDR`` succeeds: an IP, "/", a decimal prefix length within the IP's bits."""
    address, _, prefix = text.partition("/")
    if not (prefix.isascii() and prefix.isdigit()) or _parse_ip(address) is None:
        return False
    bits = 32 if ":" not in address else 128
    return int(prefix) <= bits


def validate_cached_dependency(dependency: models.CachedDependency) -> list[str]:
    errors = []
    if not getattr(dependency, "from"):
        errors.append(invalid("from"))
    if not dependency.to:
        errors.append(invalid("to"))
    errors.extend(_checksum_errors(dependency.checksum_algorithm, dependency.checksum_value))
    return errors


_DIGEST_INVALID = models.ImageLayer.DigestAlgorithmInvalid
_VALID_DIGESTS = (models.ImageLayer.SHA256, models.ImageLayer.SHA512)
_VALID_MEDIA = (models.ImageLayer.TGZ, models.ImageLayer.TAR, models.ImageLayer.ZIP)
_VALID_LAYER_TYPES = (models.ImageLayer.SHARED, models.ImageLayer.EXCLUSIVE)


def validate_image_layer(layer: models.ImageLayer) -> list[str]:
    errors = []
    exclusive = layer.layer_type == models.ImageLayer.EXCLUSIVE
    if not layer.url:
        errors.append(invalid("url"))
    if not layer.destination_path:
        errors.append(invalid("destination_path"))
    if layer.layer_type not in _VALID_LAYER_TYPES:
        errors.append(invalid("layer_type"))
    if layer.media_type not in _VALID_MEDIA:
        errors.append(invalid("media_type"))
    if (layer.digest_value or exclusive) and layer.digest_algorithm == _DIGEST_INVALID:
        errors.append(invalid("digest_algorithm"))
    if (layer.digest_algorithm != _DIGEST_INVALID or exclusive) and not layer.digest_value:
        errors.append(invalid("digest_value"))
    if layer.digest_value and layer.digest_algorithm not in _VALID_DIGESTS:
        errors.append(invalid("digest_algorithm"))
    return errors


def validate_image_layers(layers: Any, legacy_download_user: str) -> list[str]:
    """``validateImageLayers`` over a sequence of `models.ImageLayer`."""
    errors = []
    requires_user = False
    for layer in layers:
        layer_errors = validate_image_layer(layer)
        if layer_errors:
            errors.append(invalid("image_layer"))
            errors.extend(layer_errors)
        if layer.layer_type == models.ImageLayer.EXCLUSIVE:
            requires_user = True
    if requires_user and not legacy_download_user:
        errors.append(invalid("legacy_download_user"))
    return errors
