"""Wire ⇄ Task resource conversions; whatever taskop cannot honour is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from taskop.bbs import models
from taskop.bbs.convert import resource_to_task, spec_to_task_definition, task_definition_to_spec
from taskop.domain.errors import BBSError, ErrorType
from tests.unit.bbs.builders import download, run, task_definition


def refusal(td: models.TaskDefinition) -> str:
    with pytest.raises(BBSError) as caught:
        task_definition_to_spec(td, "g", "d")
    assert caught.value.type == ErrorType.InvalidRequest
    return caught.value.message


def full_definition() -> models.TaskDefinition:
    return models.TaskDefinition(
        root_fs="docker:///busybox",
        environment_variables=[models.EnvironmentVariable(name="A", value="1")],
        action=models.Action(
            timeout_action=models.TimeoutAction(
                timeout_ms=30_000,
                action=models.Action(
                    run_action=models.RunAction(
                        path="/bin/sh",
                        args=["-c", "echo hi > /tmp/result"],
                        dir="/tmp",
                        env=[models.EnvironmentVariable(name="B", value="")],
                        resource_limits=models.ResourceLimits(nofile=1024),
                        user="vcap",
                        log_source="APP/TASK/run",
                    )
                ),
            )
        ),
        disk_mb=1024,
        memory_mb=256,
        cpu_weight=50,
        privileged=True,
        log_source="APP/TASK",
        log_guid="log-guid",
        metrics_guid="metrics-guid",
        result_file="/tmp/result",
        completion_callback_url="http://cc/callback",
        annotation='{"k": "v"}',
        placement_tags=["zone-a"],
        max_pids=100,
    )


FULL_SPEC = {
    "guid": "task-1",
    "domain": "cf-apps",
    "rootfs": "docker:///busybox",
    "env": [{"name": "A", "value": "1"}],
    "action": {
        "run": {
            "path": "/bin/sh",
            "args": ["-c", "echo hi > /tmp/result"],
            "dir": "/tmp",
            "user": "vcap",
            "env": [{"name": "B", "value": ""}],
            "resourceLimits": {"nofile": 1024},
            "logSource": "APP/TASK/run",
        }
    },
    "timeoutSeconds": 30,
    "diskMb": 1024,
    "memoryMb": 256,
    "cpuWeight": 50,
    "privileged": True,
    "logSource": "APP/TASK",
    "logGuid": "log-guid",
    "metricsGuid": "metrics-guid",
    "resultFile": "/tmp/result",
    "completionCallbackUrl": "http://cc/callback",
    "annotation": '{"k": "v"}',
    "placementTags": ["zone-a"],
    "maxPids": 100,
}


def test_minimal_definition_to_spec() -> None:
    assert task_definition_to_spec(task_definition(), "g", "d") == {
        "guid": "g",
        "domain": "d",
        "rootfs": "docker:///busybox",
        "action": {"run": {"path": "/bin/true", "user": "root"}},
    }


def test_full_definition_to_spec() -> None:
    assert task_definition_to_spec(full_definition(), "task-1", "cf-apps") == FULL_SPEC


def test_nofile_zero_is_kept() -> None:
    td = task_definition(action=run(resource_limits=models.ResourceLimits(nofile=0)))
    assert task_definition_to_spec(td, "g", "d")["action"]["run"]["resourceLimits"] == {"nofile": 0}


@pytest.mark.parametrize(
    ("ms", "seconds"), [(1, 1), (999, 1), (1000, 1), (1001, 2), (1500, 2), (60_000, 60)]
)
def test_timeout_rounds_up_to_seconds(ms: int, seconds: int) -> None:
    td = task_definition(
        action=models.Action(timeout_action=models.TimeoutAction(action=run(), timeout_ms=ms))
    )
    assert task_definition_to_spec(td, "g", "d")["timeoutSeconds"] == seconds


def test_nested_timeouts_keep_the_smallest() -> None:
    inner = models.Action(timeout_action=models.TimeoutAction(action=run(), timeout_ms=5000))
    outer = models.Action(timeout_action=models.TimeoutAction(action=inner, timeout_ms=9000))
    assert task_definition_to_spec(task_definition(action=outer), "g", "d")["timeoutSeconds"] == 5


def test_a_silent_emit_progress_is_unwrapped() -> None:
    td = task_definition(
        action=models.Action(emit_progress_action=models.EmitProgressAction(action=run()))
    )
    assert task_definition_to_spec(td, "g", "d")["action"] == {
        "run": {"path": "/bin/true", "user": "root"}
    }


@pytest.mark.parametrize(
    "field", ["start_message", "success_message", "failure_message_prefix", "log_source"]
)
def test_emit_progress_with_text_is_refused(field: str) -> None:
    emit = models.EmitProgressAction(action=run(), **{field: "x"})
    td = task_definition(action=models.Action(emit_progress_action=emit))
    assert refusal(td) == f"action.emit_progress_action.{field} is not supported by taskop"


def test_timeout_with_log_source_is_refused() -> None:
    timeout = models.TimeoutAction(action=run(), timeout_ms=1, log_source="x")
    td = task_definition(action=models.Action(timeout_action=timeout))
    assert refusal(td) == "action.timeout_action.log_source is not supported by taskop"


def test_try_is_refused() -> None:
    td = task_definition(action=models.Action(try_action=models.TryAction(action=run())))
    assert refusal(td) == "action.try_action is not supported by taskop"


@pytest.mark.parametrize(
    ("action", "name"),
    [
        (models.Action(download_action=download()), "download_action"),
        (models.Action(upload_action=models.UploadAction(to="t")), "upload_action"),
        (models.Action(parallel_action=models.ParallelAction(actions=[run()])), "parallel_action"),
        (models.Action(serial_action=models.SerialAction(actions=[run()])), "serial_action"),
        (
            models.Action(codependent_action=models.CodependentAction(actions=[run()])),
            "codependent_action",
        ),
    ],
)
def test_other_actions_are_refused(action: models.Action, name: str) -> None:
    assert refusal(task_definition(action=action)) == f"action.{name} is not supported by taskop"


def test_refusal_inside_a_wrapper_names_the_path() -> None:
    inner = models.Action(serial_action=models.SerialAction(actions=[run()]))
    td = task_definition(
        action=models.Action(timeout_action=models.TimeoutAction(action=inner, timeout_ms=1))
    )
    assert refusal(td) == "action.timeout_action.action.serial_action is not supported by taskop"


def test_extra_action_values_are_refused() -> None:
    action = run()
    action.download_action.CopyFrom(download())
    assert refusal(task_definition(action=action)) == (
        "action.run_action is not supported by taskop, "
        "action.download_action is not supported by taskop"
    )


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"egress_rules": [models.SecurityGroupRule(protocol="all")]}, "egress_rules"),
        ({"cached_dependencies": [models.CachedDependency(to="/x")]}, "cached_dependencies"),
        ({"legacy_download_user": "vcap"}, "legacy_download_user"),
        (
            {"trusted_system_certificates_path": "/etc/cf-system-certificates"},
            "trusted_system_certificates_path",
        ),
        ({"volume_mounts": [models.VolumeMount(driver="nfs")]}, "volume_mounts"),
        ({"network": models.Network(properties={"a": "b"})}, "network"),
        ({"network": models.Network()}, "network"),
        (
            {"certificate_properties": models.CertificateProperties(organizational_unit=["x"])},
            "certificate_properties",
        ),
        ({"image_layers": [models.ImageLayer(url="u")]}, "image_layers"),
        ({"log_rate_limit": models.LogRateLimit(bytes_per_second=-1)}, "log_rate_limit"),
        ({"metric_tags": {"source_id": models.MetricTagValue(static="x")}}, "metric_tags"),
        ({"volume_mounted_files": [models.File(path="/x", content="y")]}, "volume_mounted_files"),
        ({"image_username": "u"}, "image_username"),
        ({"image_password": "p"}, "image_password"),
    ],
)
def test_unsupported_task_definition_fields_are_refused(fields: dict[str, Any], name: str) -> None:
    assert refusal(task_definition(**fields)) == f"{name} is not supported by taskop"


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"suppress_log_output": True}, "suppress_log_output"),
        ({"volume_mounted_files": [models.File(path="/x")]}, "volume_mounted_files"),
        ({"resource_limits": models.ResourceLimits(nproc=10)}, "resource_limits.nproc"),
    ],
)
def test_unsupported_run_fields_are_refused(fields: dict[str, Any], name: str) -> None:
    assert (
        refusal(task_definition(action=run(**fields)))
        == f"action.run_action.{name} is not supported by taskop"
    )


def test_every_refused_field_is_named_in_one_error() -> None:
    td = task_definition(
        legacy_download_user="vcap",
        network=models.Network(),
        action=models.Action(try_action=models.TryAction(action=run())),
    )
    assert refusal(td) == (
        "legacy_download_user is not supported by taskop, network is not supported by taskop, "
        "action.try_action is not supported by taskop"
    )


def test_unknown_fields_are_refused() -> None:
    td = task_definition()
    td.MergeFromString(b"\xd0\x02\x01")  # field 42, varint
    td.action.run_action.MergeFromString(b"\xf8\x01\x07")  # field 31
    assert refusal(td) == (
        "task_definition field 42 is not supported by taskop, "
        "task_definition.action.run_action field 31 is not supported by taskop"
    )


# --- resource → wire ------------------------------------------------------------------------------


def resource(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "taskop.dev/v1alpha1",
        "kind": "Task",
        "metadata": {
            "name": "task-1",
            "namespace": "ns",
            "creationTimestamp": "2026-11-23T06:51:01Z",
        },
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_round_trip_definition_spec_definition() -> None:
    td = full_definition()
    task = resource_to_task(resource(task_definition_to_spec(td, "task-1", "cf-apps")))
    assert task.task_definition == td
    assert spec_to_task_definition(FULL_SPEC) == td


def test_resource_to_task_with_status() -> None:
    status = {
        "state": "Completed",
        "failed": True,
        "failureReason": "exit status 3",
        "result": "résultat",
        "cellId": "",
        "createdAt": "2026-11-23T06:51:01.123456789Z",
        "updatedAt": "2026-11-23T06:52:00.000000001Z",
        "firstCompletedAt": "2026-11-23T06:52:00.000000001Z",
        "rejectionCount": 1,
        "rejectionReason": "no room",
    }
    task = resource_to_task(resource({"guid": "task-1", "domain": "d", "image": "busybox"}, status))
    expected = models.Task(
        task_guid="task-1",
        domain="d",
        created_at=1_795_416_661_123_456_789,
        updated_at=1_795_416_720_000_000_001,
        first_completed_at=1_795_416_720_000_000_001,
        state=models.Task.Completed,
        failed=True,
        failure_reason=b"exit status 3",
        result="résultat".encode(),
        rejection_count=1,
        rejection_reason=b"no room",
        task_definition=models.TaskDefinition(root_fs="docker:///busybox"),
    )
    assert task == expected


@pytest.mark.parametrize(
    ("state", "number"),
    [("Pending", 1), ("Running", 2), ("Completed", 3), ("Resolving", 4), ("Bogus", 0)],
)
def test_states(state: str, number: int) -> None:
    assert resource_to_task(resource({"guid": "g"}, {"state": state})).state == number


def test_a_task_without_status_is_pending_since_its_creation() -> None:
    task = resource_to_task(resource({"domain": "d", "rootfs": "preloaded:cflinuxfs4"}))
    assert task.task_guid == "task-1"  # the guid defaults to the name
    assert task.state == models.Task.Pending
    assert task.created_at == task.updated_at == 1_795_416_661_000_000_000
    assert task.first_completed_at == 0
    assert task.task_definition.root_fs == "preloaded:cflinuxfs4"
    assert task.HasField("task_definition")


def test_task_definition_is_always_present_on_the_wire() -> None:
    task = resource_to_task({"metadata": {"name": "x"}, "spec": {}})
    assert task.HasField("task_definition")
    assert task.SerializeToString().startswith(b"\x0a\x00")


def test_rootfs_wins_over_image() -> None:
    td = spec_to_task_definition({"rootfs": "docker:///a", "image": "b"})
    assert td.root_fs == "docker:///a"


def test_smuggled_bytes_come_back() -> None:
    raw = b"bin\xff\xfe"
    status = {"state": "Completed", "result": raw.decode("utf-8", "surrogateescape")}
    assert resource_to_task(resource({"guid": "g"}, status)).result == raw


def test_lone_surrogates_do_not_crash() -> None:
    status = {"state": "Completed", "failureReason": "bad \ud800 text"}
    assert resource_to_task(resource({"guid": "g"}, status)).failure_reason == b"bad ? text"
