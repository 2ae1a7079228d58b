from __future__ import annotations

from typing import Any

import pytest

from taskop.domain.spec import SpecError, TaskSpec, parse_spec, rootfs_image

RUN = {"run": {"path": "/bin/true"}}


def spec(**fields: Any) -> dict[str, Any]:
    return {"image": "busybox", "action": RUN, **fields}


def test_minimal_defaults() -> None:
    parsed = parse_spec(spec())
    assert parsed.domain == "taskop"
    assert (parsed.retries, parsed.external, parsed.cancelled) == (0, False, False)
    assert parsed.task_guid("my-task") == "my-task"
    assert parse_spec(spec(guid="G_1")).task_guid("my-task") == "G_1"


def test_camel_case_and_snake_case() -> None:
    full = spec(
        guid="Abc_1",
        domain="cf-apps",
        env=[{"name": "A", "value": "1"}],
        memoryMb=256,
        diskMb=1024,
        cpuWeight=50,
        maxPids=0,
        privileged=True,
        resultFile="/tmp/result",
        completionCallbackUrl="https://cc.example/callback",
        annotation="note",
        placementTags=["zone-a"],
        logSource="TASK",
        logGuid="lg",
        metricsGuid="mg",
        timeoutSeconds=60,
        retries=2,
        external=False,
        cancelled=False,
        action={
            "run": {
                "path": "/bin/sh",
                "args": ["-c", "echo"],
                "dir": "/tmp",
                "user": "vcap",
                "env": [{"name": "B", "value": "2"}],
                "resourceLimits": {"nofile": 1024},
            }
        },
        podTemplate={
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceAccountName": "runner",
            "imagePullSecrets": [{"name": "regcred"}],
            "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": 1073741824}},
        },
    )
    parsed = parse_spec(full)
    assert parsed.memory_mb == 256
    assert parsed.action.run.resource_limits is not None
    assert parsed.action.run.resource_limits.nofile == 1024
    assert parsed.model_dump(by_alias=True, exclude_unset=True) == full
    by_name = TaskSpec(image="busybox", action={"run": {"path": "x"}}, memory_mb=5)
    assert by_name.memory_mb == 5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": None}, "exactly one of spec.image and spec.rootfs must be set"),
        ({"rootfs": "docker:///busybox"}, "exactly one of spec.image and spec.rootfs must be set"),
        ({"bogus": 1}, "spec.bogus: Extra inputs are not permitted"),
        ({"guid": "a b"}, "spec.guid: must match ^[a-zA-Z0-9_-]+$"),
        ({"guid": "a" * 256}, "spec.guid: String should have at most 255 characters"),
        ({"domain": ""}, "spec.domain: String should have at least 1 character"),
        ({"memoryMb": -1}, "spec.memoryMb: Input should be greater than or equal to 0"),
        ({"diskMb": -1}, "spec.diskMb: Input should be greater than or equal to 0"),
        ({"maxPids": -1}, "spec.maxPids: Input should be greater than or equal to 0"),
        ({"cpuWeight": 101}, "spec.cpuWeight: Input should be less than or equal to 100"),
        ({"timeoutSeconds": 0}, "spec.timeoutSeconds: Input should be greater than or equal to 1"),
        ({"retries": -1}, "spec.retries: Input should be greater than or equal to 0"),
        ({"resultFile": "result.txt"}, "spec.resultFile: must be an absolute path"),
        (
            {"completionCallbackUrl": "ftp://x/y"},
            "spec.completionCallbackUrl: must be an http:// or https:// URL with a host",
        ),
        (
            {"completionCallbackUrl": "http:///nohost"},
            "spec.completionCallbackUrl: must be an http:// or https:// URL with a host",
        ),
        ({"annotation": "é" * 5121}, "spec.annotation: must be at most 10240 bytes"),
        ({"placementTags": ["bad tag"]}, "spec.placementTags[0]: String should match pattern"),
        ({"env": [{"name": "A=B"}]}, "spec.env[0].name: String should match pattern"),
        ({"action": {}}, "spec.action: exactly one of run, download, upload, timeout, emitProg"),
        (
            {"action": {"run": {"path": "x"}, "try": {"action": {"run": {"path": "y"}}}}},
            "spec.action: exactly one of run, download",
        ),
        (
            {"action": {"serial": {"actions": [{"download": {"from": "http://x"}}]}}},
            "spec.action.serial.actions[0].download.to: Field required",
        ),
        (
            {"action": {"download": {"from": "u", "to": "/", "checksumAlgorithm": "sha256"}}},
            "spec.action.download: checksumAlgorithm and checksumValue must be set together",
        ),
        (
            {"action": {"serial": {"actions": []}}},
            "spec.action.serial.actions: List should have at least 1 item",
        ),
        (
            {"downloads": [{"from": "u", "to": "/", "checksumAlgorithm": "crc32"}]},
            "spec.downloads[0].checksumAlgorithm: Input should be 'md5', 'sha1' or 'sha256'",
        ),
        (
            {
                "imageLayers": [
                    {
                        "url": "u",
                        "destinationPath": "/",
                        "layerType": "EXCLUSIVE",
                        "mediaType": "TGZ",
                    }
                ]
            },
            "spec.imageLayers[0]: an EXCLUSIVE layer needs digestAlgorithm and digestValue",
        ),
        ({"logRateLimit": -2}, "spec.logRateLimit: Input should be greater than or equal to -1"),
        ({"action": {"run": {}}}, "spec.action.run.path: Field required"),
        ({"action": {"fetch": {}}}, "spec.action.fetch: Extra inputs are not permitted"),
        ({"cancelled": "maybe"}, "spec.cancelled: Input should be a valid boolean"),
    ],
)
def test_invalid(fields: dict[str, Any], message: str) -> None:
    data = {k: v for k, v in spec(**fields).items() if v is not None}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert any(m.startswith(message) for m in info.value.messages), info.value.messages


def test_annotation_limit_is_bytes() -> None:
    assert parse_spec(spec(annotation="é" * 5120)).annotation == "é" * 5120


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec(memoryMb=-1, diskMb=-1))
    assert len(info.value.messages) == 2
    assert str(info.value) == "; ".join(info.value.messages)


@pytest.mark.parametrize(
    ("rootfs", "image"),
    [
        ("docker:///busybox", "busybox"),
        ("docker:///cloudfoundry/grace", "cloudfoundry/grace"),
        ("docker:///cloudfoundry/grace#v1.2", "cloudfoundry/grace:v1.2"),
        ("docker://registry.example/x#tag", "registry.example/x:tag"),
        ("docker://registry.example:5000/team/x", "registry.example:5000/team/x"),
        ("docker:///busybox#sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
        ("docker:///busybox@sha256:" + "b" * 64, "busybox@sha256:" + "b" * 64),
    ],
)
def test_rootfs_image(rootfs: str, image: str) -> None:
    assert rootfs_image(rootfs) == image
    assert parse_spec({"rootfs": rootfs, "action": RUN}).image_reference() == image


@pytest.mark.parametrize(
    ("rootfs", "message"),
    [
        (
            "preloaded:cflinux fs4",
            "rootfs preloaded:cflinux fs4 cannot run on Kubernetes: use image, a docker:// rootfs,"
            " or a preloaded:<stack> rootfs whose stack the domain profile maps to an image",
        ),
        (
            "busybox",
            "rootfs busybox cannot run on Kubernetes: use image, a docker:// rootfs, or a"
            " preloaded:<stack> rootfs whose stack the domain profile maps to an image",
        ),
        ("docker:busybox", "rootfs docker:busybox is not a docker:// URL (docker:///busybox)"),
        ("docker:///", "rootfs docker:/// names no image (docker:///busybox)"),
    ],
)
def test_rootfs_unusable(rootfs: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        rootfs_image(rootfs)
    with pytest.raises(SpecError) as info:
        parse_spec({"rootfs": rootfs, "action": RUN})
    assert info.value.messages == [f"spec.rootfs: {message}"]


def test_a_preloaded_rootfs_runs_the_image_its_domain_profile_maps_its_stack_to() -> None:
    task = parse_spec({"rootfs": "preloaded:cflinuxfs4", "domain": "cf-tasks", "action": RUN})
    assert task.image_reference({"cflinuxfs4": "busybox:1.36"}) == "busybox:1.36"
    with pytest.raises(SpecError) as info:
        task.image_reference({"cflinuxfs3": "old"})
    assert info.value.messages == [
        "spec.rootfs: stack 'cflinuxfs4' has no image in the profile of domain 'cf-tasks'"
        " (stacks it maps: cflinuxfs3); ask the admin to map it in taskop's domain profiles, or"
        " use a docker:// rootfs"
    ]


def test_image_reference_prefers_image() -> None:
    assert parse_spec(spec(image="nginx:1")).image_reference() == "nginx:1"


def test_spec_is_frozen() -> None:
    parsed = parse_spec(spec())
    with pytest.raises(Exception, match="frozen"):
        parsed.cancelled = True  # type: ignore[misc]
