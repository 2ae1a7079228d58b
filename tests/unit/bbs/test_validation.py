"""Every DesireTask validation rule of BBS with its exact message, in BBS's order (spec §6)."""

from __future__ import annotations

from typing import Any

import pytest

from taskop.bbs import models
from taskop.bbs.validation import (
    check,
    is_url_with_scheme,
    validate_complete_task_request,
    validate_desire_task_request,
    validate_fail_task_request,
    validate_reject_task_request,
    validate_request,
    validate_start_task_request,
    validate_task_guid_request,
    validate_tasks_request,
)
from taskop.domain.errors import BBSError, ErrorType
from tests.unit.bbs.builders import desire, download, run, task_definition

A = "Invalid field: action"


def messages(**td_fields: Any) -> list[str]:
    return validate_desire_task_request(desire(task_definition=task_definition(**td_fields)))


def action_messages(action: models.Action) -> list[str]:
    return messages(action=action)


def test_a_valid_request_has_no_messages() -> None:
    assert validate_desire_task_request(desire()) == []


@pytest.mark.parametrize("guid", ["task-1", "A_b-9", "x" * 255])
def test_good_guids(guid: str) -> None:
    assert validate_desire_task_request(desire(task_guid=guid)) == []


@pytest.mark.parametrize(
    "guid", ["", "has space", "dot.ted", "slash/", "trailing-newline\n", "é", "x" * 256]
)
def test_bad_guids(guid: str) -> None:
    assert validate_desire_task_request(desire(task_guid=guid)) == ["Invalid field: task_guid"]


@pytest.mark.parametrize("domain", ["", "d" * 256])
def test_bad_domain(domain: str) -> None:
    assert validate_desire_task_request(desire(domain=domain)) == ["Invalid field: domain"]


def test_missing_task_definition() -> None:
    assert validate_desire_task_request(desire(task_definition=None)) == [
        "Invalid field: task_definition"
    ]


def test_request_level_order() -> None:
    request = desire(task_guid="", domain="", task_definition=task_definition(root_fs=""))
    assert validate_desire_task_request(request) == [
        "Invalid field: task_guid",
        "Invalid field: domain",
        "Invalid field: rootfs",
    ]


@pytest.mark.parametrize(
    "rootfs",
    [
        "docker:///busybox",
        "docker:///cloudfoundry/grace#latest",
        "docker://registry.example.com:5000/img",
        "docker://[::1]:5000/img",
        "preloaded:cflinuxfs4",
        "preloaded+layer:cflinuxfs4?layer=https://x/y.tgz",
        "docker://user@host/img",
    ],
)
def test_good_rootfs(rootfs: str) -> None:
    assert is_url_with_scheme(rootfs)
    assert messages(root_fs=rootfs) == []


@pytest.mark.parametrize(
    "rootfs",
    [
        "",
        "busybox",
        "/var/vcap/rootfs",
        "://x",
        "1docker:///x",
        "docker:///%zz",
        "docker://host:port/x",
        "docker://[::1/x",
        "docker://ho st/x",
        "docker:///bad\ncontrol",
    ],
)
def test_bad_rootfs(rootfs: str) -> None:
    assert messages(root_fs=rootfs) == ["Invalid field: rootfs"]


def test_missing_action_is_invalid_action_type() -> None:
    td = task_definition()
    td.ClearField("action")
    assert validate_desire_task_request(desire(task_definition=td)) == ["invalid action type"]


def test_empty_action() -> None:
    assert action_messages(models.Action()) == [A, "Invalid field: inner-action"]


def test_run_needs_path_and_user() -> None:
    assert action_messages(run(path="", user="")) == [
        A,
        "Invalid field: path",
        "Invalid field: user",
    ]


def test_the_first_action_in_field_order_is_validated() -> None:
    action = models.Action(download_action=download(), run_action=models.RunAction())
    assert action_messages(action) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"from": ""}, ["Invalid field: from"]),
        ({"to": ""}, ["Invalid field: to"]),
        ({"user": ""}, ["Invalid field: user"]),
        (
            {"from": "", "to": "", "user": ""},
            ["Invalid field: from", "Invalid field: to", "Invalid field: user"],
        ),
        ({"checksum_value": "abc"}, ["Invalid field: checksum algorithm"]),
        ({"checksum_algorithm": "md5"}, ["Invalid field: checksum value"]),
        (
            {"checksum_algorithm": "sha512", "checksum_value": "a"},
            ["Invalid field: invalid algorithm"],
        ),
        ({"checksum_algorithm": "SHA256", "checksum_value": "a"}, []),
        ({"checksum_algorithm": "sha1", "checksum_value": "a"}, []),
    ],
)
def test_download_action(fields: dict[str, str], expected: list[str]) -> None:
    result = action_messages(models.Action(download_action=download(**fields)))
    assert result == ([A, *expected] if expected else [])


def test_upload_action_order() -> None:
    action = models.Action(upload_action=models.UploadAction())
    assert action_messages(action) == [
        A,
        "Invalid field: to",
        "Invalid field: from",
        "Invalid field: user",
    ]


def test_timeout_action() -> None:
    good = models.Action(timeout_action=models.TimeoutAction(action=run(), timeout_ms=1))
    assert action_messages(good) == []
    empty = models.Action(timeout_action=models.TimeoutAction())
    assert action_messages(empty) == [A, A, "Invalid field: timeout_ms"]
    negative = models.Action(timeout_action=models.TimeoutAction(action=run(), timeout_ms=-5))
    assert action_messages(negative) == [A, "Invalid field: timeout_ms"]
    bad_inner = models.Action(
        timeout_action=models.TimeoutAction(action=run(path=""), timeout_ms=1)
    )
    assert action_messages(bad_inner) == [A, "Invalid field: path"]


def test_timeout_around_an_empty_action_is_inner_action() -> None:
    """BBS panics here (nil interface); taskop answers like an empty top-level action."""
    action = models.Action(
        timeout_action=models.TimeoutAction(action=models.Action(), timeout_ms=1)
    )
    assert action_messages(action) == [A, "Invalid field: inner-action"]


@pytest.mark.parametrize("kind", ["try_action", "emit_progress_action"])
def test_wrappers_need_an_inner_action(kind: str) -> None:
    wrapper_type = {
        "try_action": models.TryAction,
        "emit_progress_action": models.EmitProgressAction,
    }[kind]
    assert action_messages(models.Action(**{kind: wrapper_type()})) == [A, A]
    assert action_messages(models.Action(**{kind: wrapper_type(action=run())})) == []
    assert action_messages(models.Action(**{kind: wrapper_type(action=run(user=""))})) == [
        A,
        "Invalid field: user",
    ]


@pytest.mark.parametrize("kind", ["parallel_action", "serial_action", "codependent_action"])
def test_lists_need_actions(kind: str) -> None:
    list_type = {
        "parallel_action": models.ParallelAction,
        "serial_action": models.SerialAction,
        "codependent_action": models.CodependentAction,
    }[kind]
    assert action_messages(models.Action(**{kind: list_type()})) == [A, "Invalid field: actions"]
    assert action_messages(models.Action(**{kind: list_type(actions=[run(), run()])})) == []
    bad = list_type(actions=[run(path=""), models.Action(), run(user="")])
    assert action_messages(models.Action(**{kind: bad})) == [
        A,
        "Invalid field: path",
        "Invalid field: inner-action",
        "Invalid field: user",
    ]


def test_nested_actions() -> None:
    inner = models.Action(serial_action=models.SerialAction(actions=[run(path="")]))
    action = models.Action(try_action=models.TryAction(action=inner))
    assert action_messages(action) == [A, "Invalid field: path"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"memory_mb": -1}, ["Invalid field: memory_mb"]),
        ({"memory_mb": 0, "disk_mb": 0, "max_pids": 0}, []),
        ({"disk_mb": -1}, ["Invalid field: disk_mb"]),
        (
            {"log_rate_limit": models.LogRateLimit(bytes_per_second=-2)},
            ["Invalid field: log_rate_limit"],
        ),
        ({"log_rate_limit": models.LogRateLimit(bytes_per_second=-1)}, []),
        ({"max_pids": -1}, ["Invalid field: max_pids"]),
        ({"annotation": "a" * 10240}, []),
        ({"annotation": "a" * 10241}, ["Invalid field: annotation"]),
        ({"annotation": "é" * 5121}, ["Invalid field: annotation"]),  # bytes, not characters
        ({"image_username": "u"}, ["Invalid field: image_password"]),
        ({"image_password": "p"}, ["Invalid field: image_username"]),
        ({"image_username": "u", "image_password": "p"}, []),
    ],
)
def test_task_definition_fields(fields: dict[str, Any], expected: list[str]) -> None:
    assert messages(**fields) == expected


def rule(**fields: Any) -> models.SecurityGroupRule:
    fields.setdefault("destinations", ["10.0.0.0/8"])
    return models.SecurityGroupRule(**fields)


PR = models.PortRange
ICMP = models.ICMPInfo


@pytest.mark.parametrize(
    "egress",
    [
        rule(protocol="tcp", ports=[80, 443]),
        rule(protocol="udp", port_range=PR(start=1, end=65535)),
        rule(protocol="tcp", port_range=PR(start=53, end=53)),
        rule(protocol="icmp", icmp_info=ICMP(type=0, code=0)),
        rule(protocol="icmpv6", icmp_info=ICMP(type=128)),
        rule(protocol="all"),
        rule(protocol="all", destinations=["1.2.3.4"]),
        rule(protocol="all", destinations=["1.2.3.4,5.6.7.8"]),
        rule(protocol="all", destinations=["10.0.0.1-10.0.0.9"]),
        rule(protocol="all", destinations=["10.0.0.1-10.0.0.1"]),
        rule(protocol="all", destinations=["::1", "2001:db8::/32"]),
        rule(protocol="all", destinations=["10.0.0.1/8"]),
    ],
)
def test_good_egress_rules(egress: models.SecurityGroupRule) -> None:
    assert messages(egress_rules=[egress]) == []


@pytest.mark.parametrize(
    "egress",
    [
        rule(protocol="tcp"),  # neither ports nor port_range
        rule(protocol="tcp", ports=[80], port_range=PR(start=1, end=2)),
        rule(protocol="tcp", ports=[0]),
        rule(protocol="udp", port_range=PR(start=0, end=10)),
        rule(protocol="udp", port_range=PR(start=10, end=0)),
        rule(protocol="udp", port_range=PR(start=20, end=10)),
        rule(protocol="tcp", ports=[80], icmp_info=ICMP()),
        rule(protocol="icmp"),
        rule(protocol="icmp", icmp_info=ICMP(), ports=[1]),
        rule(protocol="icmp", icmp_info=ICMP(), port_range=PR(start=1, end=2)),
        rule(protocol="icmpv6"),
        rule(protocol="all", ports=[1]),
        rule(protocol="all", port_range=PR(start=1, end=2)),
        rule(protocol="all", icmp_info=ICMP()),
        rule(protocol="TCP", ports=[80]),
        rule(protocol=""),
        rule(protocol="all", destinations=[]),
        rule(protocol="all", destinations=["not-an-ip"]),
        rule(protocol="all", destinations=["300.1.1.1"]),
        rule(protocol="all", destinations=["10.0.0.9-10.0.0.1"]),
        rule(protocol="all", destinations=["10.0.0.0/33"]),
        rule(protocol="all", destinations=["10.0.0.0/255.0.0.0"]),
        rule(protocol="all", destinations=["1.2.3.4, 5.6.7.8"]),
        rule(protocol="all", destinations=["fe80::1%eth0"]),
        rule(protocol="all", destinations=[""]),
    ],
)
def test_bad_egress_rules(egress: models.SecurityGroupRule) -> None:
    assert messages(egress_rules=[egress]) == ["Invalid field: egress_rules"]


def test_one_message_per_bad_egress_rule() -> None:
    rules = [rule(protocol="x"), rule(protocol="all"), rule(protocol="y")]
    assert messages(egress_rules=rules) == ["Invalid field: egress_rules"] * 2


def dependency(**fields: Any) -> models.CachedDependency:
    return models.CachedDependency(**{"from": "http://x/y", "to": "/tmp", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"from": ""}, ["Invalid field: from"]),
        ({"to": ""}, ["Invalid field: to"]),
        ({"checksum_value": "v"}, ["Invalid field: checksum algorithm"]),
        ({"checksum_algorithm": "sha1"}, ["Invalid field: checksum value"]),
        (
            {"checksum_algorithm": "crc", "checksum_value": "v"},
            ["Invalid field: invalid algorithm"],
        ),
        ({"checksum_algorithm": "MD5", "checksum_value": "v"}, []),
    ],
)
def test_cached_dependencies(fields: dict[str, str], expected: list[str]) -> None:
    result = messages(cached_dependencies=[dependency(**fields)])
    assert result == (["Invalid field: cached_dependency", *expected] if expected else [])


IL = models.ImageLayer


def layer(**fields: Any) -> models.ImageLayer:
    defaults = {
        "url": "http://x/l.tgz",
        "destination_path": "/l",
        "layer_type": IL.SHARED,
        "media_type": IL.TGZ,
    }
    return IL(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"digest_algorithm": IL.SHA256, "digest_value": "d"}, []),
        ({"url": ""}, ["Invalid field: url"]),
        ({"destination_path": ""}, ["Invalid field: destination_path"]),
        ({"layer_type": IL.LayerTypeInvalid}, ["Invalid field: layer_type"]),
        ({"layer_type": 7}, ["Invalid field: layer_type"]),
        ({"media_type": IL.MediaTypeInvalid}, ["Invalid field: media_type"]),
        (
            {"digest_value": "d"},
            ["Invalid field: digest_algorithm", "Invalid field: digest_algorithm"],
        ),
        ({"digest_algorithm": IL.SHA512}, ["Invalid field: digest_value"]),
        ({"digest_algorithm": 9, "digest_value": "d"}, ["Invalid field: digest_algorithm"]),
    ],
)
def test_image_layer(fields: dict[str, Any], expected: list[str]) -> None:
    result = messages(image_layers=[layer(**fields)])
    assert result == (["Invalid field: image_layer", *expected] if expected else [])


def test_exclusive_layers_need_a_digest_and_the_legacy_download_user() -> None:
    exclusive = layer(layer_type=IL.EXCLUSIVE)
    assert messages(image_layers=[exclusive]) == [
        "Invalid field: image_layer",
        "Invalid field: digest_algorithm",
        "Invalid field: digest_value",
        "Invalid field: legacy_download_user",
    ]
    digested = layer(layer_type=IL.EXCLUSIVE, digest_algorithm=IL.SHA256, digest_value="d")
    assert messages(image_layers=[digested]) == ["Invalid field: legacy_download_user"]
    assert messages(image_layers=[digested], legacy_download_user="vcap") == []


def test_task_definition_order() -> None:
    td = task_definition(
        root_fs="",
        action=run(path=""),
        memory_mb=-1,
        disk_mb=-1,
        log_rate_limit=models.LogRateLimit(bytes_per_second=-2),
        max_pids=-1,
        annotation="a" * 10241,
        egress_rules=[rule(protocol="x")],
        image_password="p",
        cached_dependencies=[dependency(to="")],
        image_layers=[layer(url="")],
    )
    assert validate_desire_task_request(desire(task_guid="?", task_definition=td)) == [
        "Invalid field: task_guid",
        "Invalid field: rootfs",
        A,
        "Invalid field: path",
        "Invalid field: memory_mb",
        "Invalid field: disk_mb",
        "Invalid field: log_rate_limit",
        "Invalid field: max_pids",
        "Invalid field: annotation",
        "Invalid field: egress_rules",
        "Invalid field: image_username",
        "Invalid field: cached_dependency",
        "Invalid field: to",
        "Invalid field: image_layer",
        "Invalid field: url",
    ]


# --- the other requests ---------------------------------------------------------------------------


def test_start_task_request() -> None:
    assert validate_start_task_request(models.StartTaskRequest(task_guid="g", cell_id="c")) == []
    assert validate_start_task_request(models.StartTaskRequest()) == [
        "Invalid field: task_guid",
        "Invalid field: cell_id",
    ]
    too_long = models.StartTaskRequest(task_guid="g", cell_id="c" * 256)
    assert validate_start_task_request(too_long) == ["Invalid field: cell_id"]


def test_complete_task_request() -> None:
    ok = models.CompleteTaskRequest(task_guid="g", cell_id="c", failed=True, result=b"\xff")
    assert validate_complete_task_request(ok) == []
    assert validate_complete_task_request(models.CompleteTaskRequest(task_guid="a b")) == [
        "Invalid field: task_guid",
        "Invalid field: cell_id",
    ]


def test_fail_task_request() -> None:
    assert (
        validate_fail_task_request(models.FailTaskRequest(task_guid="g", failure_reason=b"x")) == []
    )
    assert validate_fail_task_request(models.FailTaskRequest(task_guid="?")) == [
        "Invalid field: task_guid",
        "Invalid field: failure_reason",
    ]


def test_reject_task_request_names_failure_reason() -> None:
    ok = models.RejectTaskRequest(task_guid="g", rejection_reason=b"full")
    assert validate_reject_task_request(ok) == []
    assert validate_reject_task_request(models.RejectTaskRequest(task_guid="g")) == [
        "Invalid field: failure_reason"
    ]


@pytest.mark.parametrize("message_type", [models.TaskGuidRequest, models.TaskByGuidRequest])
def test_guid_requests_need_a_non_empty_guid_only(message_type: type) -> None:
    assert validate_task_guid_request(message_type()) == ["Invalid field: task_guid"]
    assert validate_task_guid_request(message_type(task_guid="not a pattern!")) == []


def test_tasks_request_has_no_validation() -> None:
    assert validate_tasks_request(models.TasksRequest(domain="", cell_id="")) == []


def test_validate_request_dispatches_on_the_message_type() -> None:
    assert validate_request(models.StartTaskRequest()) == [
        "Invalid field: task_guid",
        "Invalid field: cell_id",
    ]
    assert validate_request(models.TasksRequest()) == []
    with pytest.raises(TypeError):
        validate_request(models.Task())


def test_check_raises_invalid_request_with_the_joined_messages() -> None:
    check([])
    with pytest.raises(BBSError) as caught:
        check(["Invalid field: task_guid", "Invalid field: domain"])
    assert caught.value.type == ErrorType.InvalidRequest
    assert caught.value.message == "Invalid field: task_guid, Invalid field: domain"
