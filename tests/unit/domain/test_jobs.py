from __future__ import annotations

from typing import Any

import pytest

from taskop.domain.jobs import JobSettings, build_job, run_as, unsupported
from taskop.domain.names import digest
from taskop.domain.spec import SpecError, parse_spec

SETTINGS = JobSettings()


def job(settings: JobSettings = SETTINGS, name: str = "t1", **fields: Any) -> dict[str, Any]:
    data = {"image": "busybox", "action": {"run": {"path": "/bin/echo"}}, **fields}
    return build_job(name, "ns", "uid-1", parse_spec(data), settings)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def test_minimal_job() -> None:
    labels = {
        "app.kubernetes.io/managed-by": "taskop",
        "taskop.dev/task": "t1",
        "taskop.dev/guid": "t1",
    }
    assert job() == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "t1",
            "namespace": "ns",
            "labels": labels,
            "annotations": {"taskop.dev/guid": "t1"},
            "ownerReferences": [
                {
                    "apiVersion": "taskop.dev/v1alpha1",
                    "kind": "Task",
                    "name": "t1",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "task",
                            "image": "busybox",
                            "command": ["/bin/echo"],
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                        }
                    ],
                },
            },
        },
    }


def test_no_ttl() -> None:
    assert "ttlSecondsAfterFinished" not in job()["spec"]


def test_guid_and_long_names() -> None:
    manifest = job(name="x." * 40 + "y", guid="My_Guid")
    meta = manifest["metadata"]
    assert len(meta["name"]) <= 63 and "--" in meta["name"]
    assert meta["labels"]["taskop.dev/guid"] == "My_Guid"
    assert meta["annotations"]["taskop.dev/guid"] == "My_Guid"
    assert meta["labels"]["taskop.dev/task"].endswith(digest("x." * 40 + "y"))
    assert meta["ownerReferences"][0]["name"] == "x." * 40 + "y"


def test_run_action() -> None:
    spec = parse_spec(
        {
            "rootfs": "docker:///library/alpine#3.20",
            "action": {"run": {"path": "/bin/sh", "args": ["-c", "echo $(HOME) $$"], "dir": "/w"}},
        }
    )
    c = container(build_job("t", "ns", "u", spec, SETTINGS))
    assert c["image"] == "library/alpine:3.20"
    assert c["command"] == ["/bin/sh", "-c", "echo $$(HOME) $$$$"]  # kubelet unescapes $$ → $
    assert c["workingDir"] == "/w"


def test_env_order_and_override() -> None:
    c = container(
        job(
            env=[{"name": "A", "value": "task"}, {"name": "B", "value": "$(A)"}],
            action={"run": {"path": "x", "env": [{"name": "A", "value": "run"}, {"name": "C"}]}},
        )
    )
    assert c["env"] == [
        {"name": "A", "value": "run"},
        {"name": "B", "value": "$$(A)"},
        {"name": "C", "value": ""},
    ]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (None, None)),
        ("root", (0, 0)),
        ("0", (0, None)),
        ("1000", (1000, None)),
        ("1000:2000", (1000, 2000)),
        ("vcap", (2000, 2000)),
    ],
)
def test_run_as(user: str, expected: tuple[int | None, int | None]) -> None:
    assert run_as(user, SETTINGS) == expected
    security = container(job(action={"run": {"path": "x", "user": user}})).get(
        "securityContext", {}
    )
    assert (security.get("runAsUser"), security.get("runAsGroup")) == expected


def test_run_as_custom_map() -> None:
    settings = JobSettings(user_ids={"app": (5000, None)})
    assert run_as("app", settings) == (5000, None)
    with pytest.raises(SpecError):
        run_as("vcap", settings)


@pytest.mark.parametrize("user", ["alice", "1000:", ":1000", "-1", "root:root"])
def test_unknown_user_is_rejected(user: str) -> None:
    with pytest.raises(SpecError) as info:
        job(action={"run": {"path": "x", "user": user}})
    assert info.value.messages[0].startswith(f"spec.action.run.user: {user!r} has no numeric uid")


def test_privileged() -> None:
    privileged = job(privileged=True)
    assert container(privileged)["securityContext"] == {"privileged": True}
    assert "securityContext" not in privileged["spec"]["template"]["spec"]
    assert "securityContext" not in container(job(privileged=False))


@pytest.mark.parametrize("user", ["vcap", "1000", "1000:1000"])
def test_a_non_root_task_meets_pod_security_restricted(user: str) -> None:
    manifest = job(action={"run": {"path": "/bin/echo", "user": user}})
    security = container(manifest)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert manifest["spec"]["template"]["spec"]["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"}
    }


@pytest.mark.parametrize("user", ["", "root", "0"])
def test_a_task_that_may_run_as_root_keeps_the_runtime_capabilities(user: str) -> None:
    security = container(job(action={"run": {"path": "/bin/echo", "user": user}})).get(
        "securityContext", {}
    )
    assert "capabilities" not in security and "runAsNonRoot" not in security


@pytest.mark.parametrize(
    ("fields", "settings", "resources"),
    [
        ({}, SETTINGS, None),
        (
            {"memoryMb": 256},
            SETTINGS,
            {"requests": {"memory": "256Mi"}, "limits": {"memory": "256Mi"}},
        ),
        ({"diskMb": 1024}, SETTINGS, {"limits": {"ephemeral-storage": "1024Mi"}}),
        ({"cpuWeight": 100}, SETTINGS, {"requests": {"cpu": "1000m"}}),
        ({"cpuWeight": 1}, SETTINGS, {"requests": {"cpu": "10m"}}),
        (
            {"cpuWeight": 50},
            JobSettings(cpu_millicores_per_weight=2),
            {"requests": {"cpu": "100m"}},
        ),
        ({"cpuWeight": 50}, JobSettings(cpu_millicores_per_weight=0), None),
        (
            {
                "memoryMb": 64,
                "cpuWeight": 10,
                "podTemplate": {
                    "resources": {
                        "requests": {"cpu": "2", "nvidia.com/gpu": 1},
                        "limits": {"memory": "1Gi"},
                    }
                },
            },
            SETTINGS,
            {
                "requests": {"memory": "64Mi", "cpu": "2", "nvidia.com/gpu": 1},
                "limits": {"memory": "1Gi"},
            },
        ),
    ],
)
def test_resources(
    fields: dict[str, Any], settings: JobSettings, resources: dict[str, Any] | None
) -> None:
    assert container(job(settings, **fields)).get("resources") == resources


def test_result_file_is_the_termination_message() -> None:
    c = container(job(resultFile="/tmp/result.json"))
    assert c["terminationMessagePath"] == "/tmp/result.json"
    assert c["terminationMessagePolicy"] == "File"


def test_retries_and_timeout() -> None:
    spec = job(retries=3, timeoutSeconds=60)["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (3, 60)
    assert "activeDeadlineSeconds" not in job()["spec"]


def test_pod_template_and_placement_tags() -> None:
    pod = job(
        placementTags=["zone-a", "gpu"],
        podTemplate={
            "nodeSelector": {"disk": "ssd", "placement.taskop.dev/gpu": "false"},
            "tolerations": [
                {
                    "key": "k",
                    "operator": "Equal",
                    "value": "v",
                    "effect": "NoExecute",
                    "tolerationSeconds": 5,
                }
            ],
            "serviceAccountName": "runner",
            "imagePullSecrets": [{"name": "regcred"}],
        },
    )["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "placement.taskop.dev/zone-a": "true",
        "placement.taskop.dev/gpu": "false",
        "disk": "ssd",
    }
    assert pod["tolerations"] == [
        {
            "key": "k",
            "operator": "Equal",
            "value": "v",
            "effect": "NoExecute",
            "tolerationSeconds": 5,
        }
    ]
    assert pod["serviceAccountName"] == "runner"
    assert "automountServiceAccountToken" not in pod
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_annotations() -> None:
    spec = parse_spec(
        {
            "image": "busybox",
            "action": {"run": {"path": "x", "resourceLimits": {"nofile": 4096}}},
            "logGuid": "lg",
            "logSource": "TASK",
            "metricsGuid": "mg",
        }
    )
    task_annotations = {
        "kwok.taskop.dev/stage": "fail",
        "kwok.taskop.dev/exit-code": "3",
        "other.example/x": "dropped",
    }
    manifest = build_job("t", "ns", "u", spec, SETTINGS, annotations=task_annotations)
    assert manifest["spec"]["template"]["metadata"]["annotations"] == {
        "kwok.taskop.dev/stage": "fail",
        "kwok.taskop.dev/exit-code": "3",
        "taskop.dev/log-guid": "lg",
        "taskop.dev/log-source": "TASK",
        "taskop.dev/metrics-guid": "mg",
        "taskop.dev/requested-nofile": "4096",
    }


@pytest.mark.parametrize(
    ("max_pids", "pod_pids_limit", "ok"),
    [
        (0, None, True),
        (1024, None, False),
        (1024, 1024, True),
        (1024, 512, True),
        (1024, 2048, False),
    ],
)
def test_max_pids(max_pids: int, pod_pids_limit: int | None, ok: bool) -> None:
    settings = JobSettings(pod_pids_limit=pod_pids_limit)
    spec = parse_spec({"image": "b", "action": {"run": {"path": "x"}}, "maxPids": max_pids})
    errors = unsupported(spec, settings)
    assert (errors == []) is ok
    if not ok:
        assert errors[0].startswith(f"spec.maxPids: {max_pids} cannot be enforced")
        with pytest.raises(SpecError):
            build_job("t", "ns", "u", spec, settings)


def test_deterministic() -> None:
    assert job(memoryMb=5, env=[{"name": "A"}]) == job(memoryMb=5, env=[{"name": "A"}])
