"""Wire ⇄ Task resource conversions; whatever taskop cannot honour is refused by name."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from taskop.bbs import models
from taskop.bbs.convert import (
    files_secret,
    registry_secret,
    resource_to_task,
    spec_to_task_definition,
    task_definition_to_spec,
)
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.names import registry_secret_name, task_name
from taskop.domain.spec import parse_spec
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
        "timeout": {
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
            "timeoutMs": 30_000,
        }
    },
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


def every_kind_of_action() -> models.Action:
    """A tree with every BBS action kind and every field set (staging-like)."""
    fetch = models.DownloadAction(
        artifact="droplet",
        to="/home/vcap",
        cache_key="k",
        log_source="STG",
        user="vcap",
        checksum_algorithm="sha256",
        checksum_value="ab12",
        **{"from": "http://blobs/droplet.tgz"},
    )
    upload = models.UploadAction(
        artifact="droplet",
        to="http://cc/droplet",
        log_source="STG",
        user="vcap",
        **{"from": "/tmp/droplet"},
    )
    build = run(suppress_log_output=True, log_source="STG")
    return models.Action(
        timeout_action=models.TimeoutAction(
            timeout_ms=900_000,
            log_source="STG",
            action=models.Action(
                serial_action=models.SerialAction(
                    log_source="STG",
                    actions=[
                        models.Action(
                            parallel_action=models.ParallelAction(
                                actions=[models.Action(download_action=fetch)]
                            )
                        ),
                        models.Action(
                            emit_progress_action=models.EmitProgressAction(
                                action=build,
                                start_message="Staging...",
                                success_message="Staged",
                                failure_message_prefix="Staging failed",
                                log_source="STG",
                            )
                        ),
                        models.Action(
                            codependent_action=models.CodependentAction(
                                actions=[
                                    models.Action(
                                        try_action=models.TryAction(
                                            action=models.Action(upload_action=upload),
                                            log_source="STG",
                                        )
                                    ),
                                    run(),
                                ]
                            )
                        ),
                    ],
                )
            ),
        )
    )


def test_every_action_kind_becomes_the_spec_tree_and_comes_back() -> None:
    td = task_definition(action=every_kind_of_action())
    spec = task_definition_to_spec(td, "g", "d")
    timeout = spec["action"]["timeout"]
    assert (timeout["timeoutMs"], timeout["logSource"]) == (900_000, "STG")
    fetch, emit, both = timeout["action"]["serial"]["actions"]
    assert fetch["parallel"]["actions"][0]["download"] == {
        "artifact": "droplet",
        "from": "http://blobs/droplet.tgz",
        "to": "/home/vcap",
        "cacheKey": "k",
        "logSource": "STG",
        "user": "vcap",
        "checksumAlgorithm": "sha256",
        "checksumValue": "ab12",
    }
    assert emit["emitProgress"]["failureMessagePrefix"] == "Staging failed"
    assert emit["emitProgress"]["action"]["run"]["suppressLogOutput"] is True
    assert both["codependent"]["actions"][0]["try"]["action"]["upload"]["to"] == (
        "http://cc/droplet"
    )
    parse_spec(spec)  # the spec model takes it as it is
    assert spec_to_task_definition(spec) == td


def test_a_deprecated_timeout_in_nanoseconds_becomes_milliseconds() -> None:
    timeout = models.TimeoutAction(action=run(), deprecated_timeout_ns=1_500_000)
    td = task_definition(action=models.Action(timeout_action=timeout))
    assert task_definition_to_spec(td, "g", "d")["action"]["timeout"]["timeoutMs"] == 2


def test_cached_dependencies_image_layers_and_log_rate_limit_come_and_go() -> None:
    td = task_definition(
        cached_dependencies=[
            models.CachedDependency(
                name="lifecycle",
                to="/tmp/lifecycle",
                cache_key="buildpack-cflinuxfs4-lifecycle",
                checksum_algorithm="sha256",
                checksum_value="ef56",
                **{"from": "http://file-server/lifecycle.tgz"},
            )
        ],
        image_layers=[
            models.ImageLayer(
                name="droplet",
                url="http://blobs/droplet.tgz",
                destination_path="/home/vcap",
                layer_type=models.ImageLayer.EXCLUSIVE,
                media_type=models.ImageLayer.TGZ,
                digest_algorithm=models.ImageLayer.SHA256,
                digest_value="ab12",
            )
        ],
        log_rate_limit=models.LogRateLimit(bytes_per_second=1024),
    )
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["downloads"] == [
        {
            "name": "lifecycle",
            "from": "http://file-server/lifecycle.tgz",
            "to": "/tmp/lifecycle",
            "cacheKey": "buildpack-cflinuxfs4-lifecycle",
            "checksumAlgorithm": "sha256",
            "checksumValue": "ef56",
        }
    ]
    assert spec["imageLayers"] == [
        {
            "name": "droplet",
            "url": "http://blobs/droplet.tgz",
            "destinationPath": "/home/vcap",
            "layerType": "EXCLUSIVE",
            "mediaType": "TGZ",
            "digestAlgorithm": "SHA256",
            "digestValue": "ab12",
        }
    ]
    assert spec["logRateLimit"] == 1024
    parse_spec(spec)
    assert spec_to_task_definition(spec) == td


def test_egress_rules_come_and_go() -> None:
    rules = [
        models.SecurityGroupRule(
            protocol="tcp",
            destinations=["10.0.0.1-10.0.0.9"],
            ports=[80, 443],
            annotations=["security_group_id:sg-1"],
        ),
        models.SecurityGroupRule(
            protocol="udp", destinations=["0.0.0.0/0"], port_range=models.PortRange(start=1, end=9)
        ),
        models.SecurityGroupRule(protocol="all", destinations=["192.168.0.0/16"]),
    ]
    td = task_definition(egress_rules=rules)
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["egressRules"] == [
        {
            "protocol": "tcp",
            "destinations": ["10.0.0.1-10.0.0.9"],
            "ports": [80, 443],
            "annotations": ["security_group_id:sg-1"],
        },
        {"protocol": "udp", "destinations": ["0.0.0.0/0"], "portRange": {"start": 1, "end": 9}},
        {"protocol": "all", "destinations": ["192.168.0.0/16"]},
    ]
    parse_spec(spec)
    assert spec_to_task_definition(spec) == td


def test_extra_action_values_are_refused() -> None:
    action = run()
    action.download_action.CopyFrom(download())
    # Go's BBS takes the first set field (download_action); the other is refused by name.
    assert refusal(task_definition(action=action)) == (
        "action.run_action is not supported by taskop"
    )


def test_volume_services_are_refused_naming_the_driver() -> None:
    td = task_definition(volume_mounts=[models.VolumeMount(driver="nfsv3driver")])
    assert refusal(td) == (
        "volume_mounts (volume services, driver nfsv3driver) cannot be mounted: Kubernetes Jobs"
        " have no BBS volume drivers; unbind the volume service from the app, or run this domain"
        " on external cells"
    )


def test_volume_mounted_files_keep_their_paths_in_the_spec_and_contents_in_a_secret() -> None:
    files = [
        models.File(path="/redis/username", content="redis_user"),
        models.File(path="/redis/password", content="s3cret"),
    ]
    td = task_definition(volume_mounted_files=files)
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["volumeMountedFiles"] == [{"path": "/redis/username"}, {"path": "/redis/password"}]
    assert "s3cret" not in json.dumps(spec)
    secret = files_secret(td, "g")
    assert secret is not None
    assert secret["metadata"]["name"] == "g-files"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "file-0": "redis_user",
        "file-1": "s3cret",
    }
    back = spec_to_task_definition(spec)
    assert [(f.path, f.content) for f in back.volume_mounted_files] == [
        ("/redis/username", ""),
        ("/redis/password", ""),
    ]


def test_trusted_system_certificates_path_is_kept() -> None:
    td = task_definition(trusted_system_certificates_path="/etc/cf-system-certificates")
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["trustedSystemCertificatesPath"] == "/etc/cf-system-certificates"
    assert spec_to_task_definition(spec).trusted_system_certificates_path == (
        "/etc/cf-system-certificates"
    )


@pytest.mark.parametrize(
    ("fields", "name"),
    [
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
        egress_rules=[
            models.SecurityGroupRule(protocol="all", destinations=["0.0.0.0/0"], log=True)
        ],
        volume_mounts=[models.VolumeMount(driver="nfs")],
        action=models.Action(
            try_action=models.TryAction(action=run(volume_mounted_files=[models.File(path="/x")]))
        ),
    )
    assert refusal(td) == (
        "action.try_action.action.run_action.volume_mounted_files is not supported by taskop, "
        "volume_mounts (volume services, driver nfs) cannot be mounted: Kubernetes Jobs have no"
        " BBS volume drivers; unbind the volume service from the app, or run this domain on"
        " external cells"
    )


def test_cloud_controllers_metadata_fields_come_and_go() -> None:
    td = task_definition(
        metric_tags={
            "source_id": models.MetricTagValue(static="app-guid"),
            "instance_id": models.MetricTagValue(dynamic=models.MetricTagValue.INDEX),
        },
        network=models.Network(properties={"policy_group_id": "app-guid", "space_id": "s"}),
        certificate_properties=models.CertificateProperties(
            organizational_unit=["organization:o", "space:s", "app:a"]
        ),
        legacy_download_user="root",
    )
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["metricTags"] == {
        "source_id": {"static": "app-guid"},
        "instance_id": {"dynamic": "INDEX"},
    }
    assert spec["networkProperties"] == {"policy_group_id": "app-guid", "space_id": "s"}
    assert spec["certificateOrganizationalUnits"] == ["organization:o", "space:s", "app:a"]
    assert spec["legacyDownloadUser"] == "root"
    parse_spec(spec)
    assert spec_to_task_definition(spec) == td


def test_an_empty_network_is_kept_as_present() -> None:
    td = task_definition(network=models.Network())
    spec = task_definition_to_spec(td, "g", "d")
    assert spec["networkProperties"] == {}
    assert spec_to_task_definition(spec) == td


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


def test_image_credentials_become_a_secret_the_spec_only_names() -> None:
    td = task_definition(
        root_fs="docker://registry.example.com/team/app#v1",
        image_username="robot",
        image_password="s3cret",
    )
    spec = task_definition_to_spec(td, "G_1", "d")
    name = registry_secret_name(task_name("G_1"))
    assert spec["podTemplate"] == {"imagePullSecrets": [{"name": name}]}
    assert "s3cret" not in json.dumps(spec) and "robot" not in json.dumps(spec)
    secret = registry_secret(td, task_name("G_1"))
    assert secret is not None
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["name"] == spec["podTemplate"]["imagePullSecrets"][0]["name"]
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config == {
        "auths": {
            "registry.example.com": {
                "username": "robot",
                "password": "s3cret",
                "auth": base64.b64encode(b"robot:s3cret").decode(),
            }
        }
    }
    hub = registry_secret(
        task_definition(root_fs="docker:///app", image_username="u", image_password="p"), "t"
    )
    assert hub is not None
    assert list(json.loads(base64.b64decode(hub["data"][".dockerconfigjson"]))["auths"]) == [
        "https://index.docker.io/v1/"
    ]
