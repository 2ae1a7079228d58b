"""The API server rejects invalid Task manifests with messages that name the field (CRD + CEL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.kubeutil import kubectl
from tests.tasks import task_manifest

pytestmark = pytest.mark.cluster


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    d = copy.deepcopy(d)
    d["spec"].pop(key)
    return d


BASE = task_manifest("bad")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda m: _without(m, "action"), "spec.action: Required value", id="no-action"
        ),
        pytest.param(
            lambda m: _without(m, "image"),
            "exactly one of spec.image and spec.rootfs",
            id="no-image",
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "rootfs": "docker:///busybox"}},
            "exactly one of spec.image and spec.rootfs",
            id="image-and-rootfs",
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "memoryMb": -1}},
            "spec.memoryMb",
            id="negative-memory",
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "resultFile": "result.txt"}},
            "spec.resultFile",
            id="relative-result",
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "completionCallbackUrl": "ftp://x/y"}},
            "spec.completionCallbackUrl",
            id="callback-scheme",
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "guid": "a b"}}, "spec.guid", id="guid-pattern"
        ),
        pytest.param(
            lambda m: {**m, "spec": {**m["spec"], "rootfs": "oci:///busybox", "image": None}},
            "spec.rootfs",
            id="unknown-rootfs-scheme",
        ),
        pytest.param(
            lambda m: {
                **m,
                "spec": {**m["spec"], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
            },
            'unknown field "spec.volumes[0].hostPath"',
            id="volume-type-not-allowed",
        ),
        pytest.param(
            lambda m: {
                **m,
                "spec": {
                    **m["spec"],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "volumeMounts": [{"name": "v", "mountPath": "/taskop/bin"}],
                },
            },
            "spec.volumeMounts[0].mountPath: Invalid value",
            id="mount-over-taskops-own",
        ),
    ],
)
def test_invalid_manifests_are_rejected_naming_the_field(
    kubeconfig: str, namespace: str, crds: None, change: Any, message: str
) -> None:
    manifest = change(copy.deepcopy(BASE))
    manifest["spec"] = {k: v for k, v in manifest["spec"].items() if v is not None}

    proc = kubectl(
        kubeconfig,
        "-n",
        namespace,
        "create",
        "-f",
        "-",
        input_=yaml.safe_dump(manifest),
        check=False,
    )

    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_the_spec_is_immutable_except_cancelling(
    kubeconfig: str, namespace: str, crds: None, k8s: client.ApiClient
) -> None:
    def patch(spec: str, check: bool = True) -> Any:
        return kubectl(
            kubeconfig, "-n", namespace, "patch", "task", "fixed", "--type=merge",
            "-p", f'{{"spec":{spec}}}', check=check,
        )  # fmt: skip

    create = yaml.safe_dump(task_manifest("fixed"))
    kubectl(kubeconfig, "-n", namespace, "create", "-f", "-", input_=create)

    changed = patch('{"image":"alpine"}', check=False)
    assert changed.returncode != 0
    assert "spec.image is immutable" in changed.stderr, changed.stderr

    for added_or_removed, field in [
        ('{"memoryMb":64}', "spec.memoryMb"),
        ('{"resultFile":null}', "spec.resultFile"),
        ('{"image":null,"rootfs":"docker:///busybox"}', "spec.image"),
    ]:
        changed = patch(added_or_removed, check=False)
        assert changed.returncode != 0
        assert f"{field} is immutable" in changed.stderr, changed.stderr

    patch('{"cancelled":true}')
    uncancelled = patch('{"cancelled":false}', check=False)
    assert uncancelled.returncode != 0
    assert "spec.cancelled" in uncancelled.stderr, uncancelled.stderr


def test_kubectl_get_tasks_shows_state_failed_reason_message_and_age(
    kubeconfig: str, namespace: str, crds: None
) -> None:
    create = yaml.safe_dump(task_manifest("shown"))
    kubectl(kubeconfig, "-n", namespace, "create", "-f", "-", input_=create)

    header = kubectl(kubeconfig, "-n", namespace, "get", "tasks").stdout.splitlines()[0].split()

    assert header == ["NAME", "STATE", "FAILED", "REASON", "MESSAGE", "AGE"]
