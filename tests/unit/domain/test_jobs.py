from __future__ import annotations

import json
from typing import Any

import pytest

from taskop.domain.jobs import JobSettings, build_job, run_as, unsupported
from taskop.domain.names import digest
from taskop.domain.profiles import DomainProfile, DomainProfiles
from taskop.domain.spec import SpecError, parse_spec

SETTINGS = JobSettings()


def job(settings: JobSettings = SETTINGS, name: str = "t1", **fields: Any) -> dict[str, Any]:
    data = {"image": "busybox", "action": {"run": {"path": "/bin/echo"}}, **fields}
    return build_job(name, "ns", "uid-1", parse_spec(data), settings)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def executor_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the pod's executor runs: the annotation its downward API volume reads."""
    annotations = manifest["spec"]["template"]["metadata"]["annotations"]
    return json.loads(annotations["taskop.dev/executor-spec"])  # type: ignore[no-any-return]


HELPER = {
    "image": "localhost/taskop:0.1.0",
    "imagePullPolicy": "IfNotPresent",
    "resources": {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "100m", "memory": "32Mi"},
    },
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
}


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
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "taskop.dev/executor-spec": '{"action":{"run":{"path":"/bin/echo"}}}'
                    },
                },
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [
                        {
                            "name": "executor",
                            **HELPER,
                            "command": [
                                "/usr/local/bin/taskop-executor",
                                "copy",
                                "/taskop/bin/taskop-executor",
                            ],
                            "volumeMounts": [{"name": "taskop-bin", "mountPath": "/taskop/bin"}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "task",
                            "image": "busybox",
                            "command": [
                                "/taskop/bin/taskop-executor",
                                "run",
                                "/taskop/spec/executor.json",
                            ],
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "volumeMounts": [
                                {
                                    "name": "taskop-bin",
                                    "mountPath": "/taskop/bin",
                                    "readOnly": True,
                                },
                                {
                                    "name": "taskop-spec",
                                    "mountPath": "/taskop/spec",
                                    "readOnly": True,
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "taskop-bin", "emptyDir": {"sizeLimit": "64Mi"}},
                        {
                            "name": "taskop-spec",
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "executor.json",
                                        "fieldRef": {
                                            "fieldPath": "metadata.annotations"
                                            "['taskop.dev/executor-spec']"
                                        },
                                    }
                                ]
                            },
                        },
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
    manifest = build_job("t", "ns", "u", spec, SETTINGS)
    assert container(manifest)["image"] == "library/alpine:3.20"
    assert "workingDir" not in container(manifest)  # the executor runs in dir, not the container
    run = {"path": "/bin/sh", "args": ["-c", "echo $(HOME) $$"], "dir": "/w"}  # no kubelet $(…)
    assert executor_spec(manifest) == {"action": {"run": run}}


def test_an_action_tree_with_downloads_reaches_the_executor_unchanged() -> None:
    tree = {
        "serial": {
            "actions": [
                {
                    "download": {
                        "artifact": "droplet",
                        "from": "http://blobs/droplet.tgz",
                        "to": ".",
                        "user": "vcap",
                        "checksumAlgorithm": "sha256",
                        "checksumValue": "ab12",
                    }
                },
                {"timeout": {"timeoutMs": 5000, "action": {"run": {"path": "/tmp/x"}}}},
            ]
        }
    }
    downloads = [{"name": "lifecycle", "from": "http://fs/l.tgz", "to": "/tmp/lifecycle"}]
    layers = [
        {
            "url": "http://fs/d.tgz",
            "destinationPath": "/home/vcap",
            "layerType": "EXCLUSIVE",
            "mediaType": "TGZ",
            "digestAlgorithm": "SHA256",
            "digestValue": "cd34",
        }
    ]
    manifest = job(action=tree, downloads=downloads, imageLayers=layers, logRateLimit=100)
    assert executor_spec(manifest) == {
        "action": tree,
        "cachedDependencies": downloads,
        "imageLayers": layers,
        "logRateLimit": 100,
    }
    assert container(manifest)["securityContext"]["runAsUser"] == 2000  # vcap, from the download


def test_a_tree_needing_two_users_is_refused_naming_both() -> None:
    tree = {
        "serial": {
            "actions": [
                {"download": {"from": "http://x", "to": "/", "user": "vcap"}},
                {"run": {"path": "/x", "user": "root"}},
            ]
        }
    }
    with pytest.raises(SpecError) as e:
        job(action=tree)
    (message,) = e.value.messages
    assert "spec.action.serial.actions[0].download.user is 'vcap'" in message
    assert "spec.action.serial.actions[1].run.user is 'root'" in message


def test_env_task_wide_on_the_container_and_the_run_actions_own_in_the_executor() -> None:
    run_env = [{"name": "A", "value": "run"}, {"name": "C"}]
    manifest = job(
        env=[{"name": "A", "value": "task"}, {"name": "B", "value": "$(A)"}],
        action={"run": {"path": "x", "env": run_env}},
    )
    assert container(manifest)["env"] == [
        {"name": "A", "value": "task"},
        {"name": "B", "value": "$$(A)"},  # the kubelet unescapes $$ → $
    ]
    # The executor adds the action's env on top (later wins), as Diego's run step does.
    assert executor_spec(manifest)["action"]["run"]["env"] == [
        {"name": "A", "value": "run"},
        {"name": "C"},
    ]


def test_a_run_actions_value_from_reaches_its_process_through_the_container_not_the_spec() -> None:
    ref = {"secretKeyRef": {"name": "t1-definition", "key": "env-1"}}
    first = {"run": {"path": "x", "env": [{"name": "A", "value": "literal"}]}}
    second = {
        "run": {
            "path": "y",
            "env": [
                {"name": "VCAP_SERVICES", "valueFrom": ref},
                {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            ],
        }
    }
    task_ref = {"secretKeyRef": {"name": "t1-definition", "key": "env-0"}}
    manifest = job(
        env=[{"name": "VCAP_SERVICES", "valueFrom": task_ref}],
        action={"serial": {"actions": [first, {"try": {"action": second}}]}},
    )
    # The container gets the values (the kubelet fills them in) under taskop's own names …
    assert container(manifest)["env"] == [
        {"name": "VCAP_SERVICES", "valueFrom": task_ref},
        {"name": "TASKOP_ACTION_ENV_0", "valueFrom": ref},
        {"name": "TASKOP_ACTION_ENV_1", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    # … and the executor, whose spec is a pod annotation, only those names.
    actions = executor_spec(manifest)["action"]["serial"]["actions"]
    assert actions[0]["run"]["env"] == [{"name": "A", "value": "literal"}]
    assert actions[1]["try"]["action"]["run"]["env"] == [
        {"name": "VCAP_SERVICES", "fromEnv": "TASKOP_ACTION_ENV_0"},
        {"name": "HOST", "fromEnv": "TASKOP_ACTION_ENV_1"},
    ]


def test_the_action_env_names_are_taskops_own() -> None:
    with pytest.raises(SpecError) as info:
        job(env=[{"name": "TASKOP_ACTION_ENV_0", "value": "x"}])
    assert info.value.messages == [
        "spec.env[0].name: 'TASKOP_ACTION_ENV_0': names starting with TASKOP_ACTION_ENV_ are"
        " taskop's own (they carry the run actions' valueFrom variables)"
    ]


def test_a_run_action_variable_takes_value_or_value_from() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "image": "busybox",
                "action": {
                    "run": {
                        "path": "x",
                        "env": [
                            {
                                "name": "A",
                                "value": "v",
                                "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                            }
                        ],
                    }
                },
            }
        )
    assert info.value.messages == ["spec.action.run.env[0]: set value or valueFrom, not both"]


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


def test_a_result_file_is_a_plain_file_and_gets_the_result_sidecar() -> None:
    manifest = job(resultFile="/tmp/result.json")
    c = container(manifest)
    assert c["terminationMessagePath"] == "/dev/termination-log"  # the executor's report
    assert {"name": "taskop-result", "mountPath": "/taskop/result"} in c["volumeMounts"]
    assert executor_spec(manifest)["resultFile"] == "/tmp/result.json"
    assert executor_spec(manifest)["resultDir"] == "/taskop/result"
    pod = manifest["spec"]["template"]["spec"]
    sidecar = pod["initContainers"][1]
    assert sidecar["name"] == "result"
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: ends with the task
    assert sidecar["command"][1:] == ["result-sidecar", "/taskop/result"]
    assert {"name": "taskop-result", "emptyDir": {"sizeLimit": "1Mi"}} in pod["volumes"]
    assert len(job()["spec"]["template"]["spec"]["initContainers"]) == 1  # no result: no sidecar


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
        "taskop.dev/executor-spec": json.dumps(
            {"action": {"run": {"path": "x", "resourceLimits": {"nofile": 4096}}}},
            separators=(",", ":"),
        ),
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
    profile = DomainProfile(pod_pids_limit=pod_pids_limit)
    settings = JobSettings(profiles=DomainProfiles(domains={"taskop": profile}))
    spec = parse_spec({"image": "b", "action": {"run": {"path": "x"}}, "maxPids": max_pids})
    errors = unsupported(spec, settings)
    assert (errors == []) is ok
    if not ok:
        assert errors[0].startswith(f"spec.maxPids: {max_pids} cannot be enforced")
        with pytest.raises(SpecError):
            build_job("t", "ns", "u", spec, settings)


def test_deterministic() -> None:
    assert job(memoryMb=5, env=[{"name": "A"}]) == job(memoryMb=5, env=[{"name": "A"}])


def test_bbs_metadata_is_kept_on_the_pod_as_annotations() -> None:
    manifest = job(
        metricTags={"source_id": {"static": "app"}, "instance_id": {"dynamic": "INDEX"}},
        networkProperties={"policy_group_id": "app"},
        certificateOrganizationalUnits=["app:a"],
    )
    annotations = manifest["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(annotations["taskop.dev/metric-tags"]) == {
        "instance_id": {"dynamic": "INDEX"},
        "source_id": {"static": "app"},
    }
    assert json.loads(annotations["taskop.dev/network-properties"]) == {"policy_group_id": "app"}
    assert json.loads(annotations["taskop.dev/certificate-organizational-units"]) == ["app:a"]


def test_the_legacy_download_user_is_one_more_user_of_the_one_container() -> None:
    vcap = job(legacyDownloadUser="vcap", action={"run": {"path": "x", "user": "vcap"}})
    assert container(vcap)["securityContext"]["runAsUser"] == 2000
    with pytest.raises(SpecError) as e:
        job(legacyDownloadUser="vcap", action={"run": {"path": "x", "user": "1000"}})
    assert "spec.legacyDownloadUser is 'vcap'" in e.value.messages[0]


def test_root_downloads_for_the_legacy_download_user_as_cc_docker_tasks_ask() -> None:
    docker = job(legacyDownloadUser="vcap", action={"run": {"path": "x", "user": "root"}})
    assert container(docker)["securityContext"]["runAsUser"] == 0


def test_a_named_user_starts_in_its_own_writable_home_as_on_a_diego_rootfs() -> None:
    vcap = job(action={"run": {"path": "x", "user": "vcap"}})
    assert container(vcap)["workingDir"] == "/home/vcap"
    assert {"name": "taskop-home", "mountPath": "/home/vcap"} in container(vcap)["volumeMounts"]
    assert {"name": "HOME", "value": "/home/vcap"} in container(vcap)["env"]
    assert {"name": "taskop-home", "emptyDir": {}} in vcap["spec"]["template"]["spec"]["volumes"]
    root = job(action={"run": {"path": "x", "user": "root"}})
    assert "workingDir" not in container(root)


CF = DomainProfile.model_validate(
    {
        "podTemplate": {
            "nodeSelector": {"pool": "cf"},
            "tolerations": [{"key": "cf", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceAccountName": "cf-task",
            "runtimeClassName": "gvisor",
            "priorityClassName": "cf-tasks",
        },
        "stacks": {"cflinuxfs4": "registry.example/cflinuxfs4:1.0"},
        "podPidsLimit": 1024,
        "trustedCertificates": {"configMap": "cf-system-certificates"},
    }
)
CF_SETTINGS = JobSettings(profiles=DomainProfiles(domains={"cf-tasks": CF}))


def cf_job(**fields: Any) -> dict[str, Any]:
    data = {"domain": "cf-tasks", "rootfs": "preloaded:cflinuxfs4", **fields}
    data.setdefault("action", {"run": {"path": "/bin/echo"}})
    return build_job("t1", "ns", "uid-1", parse_spec(data), CF_SETTINGS)


def test_the_domain_profile_says_where_the_pod_runs_and_which_image_a_stack_is() -> None:
    manifest = cf_job(placementTags=["iso-1"])
    pod = manifest["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"placement.taskop.dev/iso-1": "true", "pool": "cf"}
    assert pod["tolerations"] == [{"key": "cf", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["serviceAccountName"] == "cf-task"
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["priorityClassName"] == "cf-tasks"
    assert "automountServiceAccountToken" not in pod
    assert container(manifest)["image"] == "registry.example/cflinuxfs4:1.0"


def test_a_task_of_another_domain_gets_nothing_of_the_profile() -> None:
    spec = parse_spec({"image": "busybox", "action": {"run": {"path": "x"}}})
    pod = build_job("t1", "ns", "uid-1", spec, CF_SETTINGS)["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "runtimeClassName" not in pod
    assert pod["automountServiceAccountToken"] is False


def test_an_unmapped_stack_is_refused_naming_the_domain() -> None:
    spec = parse_spec({"rootfs": "preloaded:cflinuxfs3", "action": {"run": {"path": "x"}}})
    assert unsupported(spec, CF_SETTINGS) == [
        "spec.rootfs: stack 'cflinuxfs3' has no image in the profile of domain 'taskop' (stacks"
        " it maps: none); ask the admin to map it in taskop's domain profiles, or use a"
        " docker:// rootfs"
    ]


def test_trusted_certificates_are_mounted_read_only_with_cf_system_cert_path() -> None:
    manifest = cf_job(trustedSystemCertificatesPath="/etc/cf-system-certificates")
    pod = manifest["spec"]["template"]["spec"]
    assert {"name": "taskop-trusted-certs", "configMap": {"name": "cf-system-certificates"}} in (
        pod["volumes"]
    )
    assert {
        "name": "taskop-trusted-certs",
        "mountPath": "/etc/cf-system-certificates",
        "readOnly": True,
    } in container(manifest)["volumeMounts"]
    assert {"name": "CF_SYSTEM_CERT_PATH", "value": "/etc/cf-system-certificates"} in (
        container(manifest)["env"]
    )


def test_trusted_certificates_without_a_bundle_cannot_be_enforced() -> None:
    spec = parse_spec(
        {
            "image": "busybox",
            "action": {"run": {"path": "x"}},
            "trustedSystemCertificatesPath": "/etc/cf-system-certificates",
        }
    )
    assert unsupported(spec, SETTINGS) == [
        "spec.trustedSystemCertificatesPath: the profile of domain 'taskop' names no CA bundle to"
        " mount there; ask the admin to name a ConfigMap or Secret in its trustedCertificates"
    ]


def test_volume_mounted_files_come_from_the_tasks_files_secret_under_cf_service_bindings() -> None:
    manifest = job(volumeMountedFiles=[{"path": "/redis/username"}, {"path": "redis/password"}])
    assert {
        "name": "taskop-files",
        "secret": {
            "secretName": "t1-files",
            "items": [
                {"key": "file-0", "path": "redis/username"},
                {"key": "file-1", "path": "redis/password"},
            ],
        },
    } in manifest["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "taskop-files",
        "mountPath": "/etc/cf-service-bindings",
        "readOnly": True,
    } in container(manifest)["volumeMounts"]


ICMP_AND_PIDS = {
    "image": "busybox",
    "action": {"run": {"path": "x"}},
    "maxPids": 100,
    "egressRules": [
        {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}}
    ],
}


def test_the_warn_policy_runs_what_refuse_would_refuse() -> None:
    spec = parse_spec(ICMP_AND_PIDS)
    assert len(unsupported(spec, SETTINGS)) == 2
    warn = JobSettings(
        profiles=DomainProfiles(domains={"taskop": DomainProfile(unenforceable="warn")})
    )
    assert unsupported(spec, warn) == []
    assert build_job("t1", "ns", "uid-1", spec, warn)["kind"] == "Job"


def test_the_tasks_pod_template_sets_priority_runtime_class_and_fs_group() -> None:
    manifest = job(
        podTemplate={
            "priorityClassName": "batch-low",
            "runtimeClassName": "gvisor",
            "fsGroup": 2000,
        }
    )
    pod = manifest["spec"]["template"]["spec"]
    assert (pod["priorityClassName"], pod["runtimeClassName"]) == ("batch-low", "gvisor")
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 2000}


def test_secrets_and_config_reach_the_container_in_kubernetes_own_shape() -> None:
    secret_ref = {"secretKeyRef": {"name": "db", "key": "password"}}
    manifest = job(
        env=[{"name": "PASSWORD", "valueFrom": secret_ref}, {"name": "MODE", "value": "$(x)"}],
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "APP_"}],
        volumes=[{"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}}],
        volumeMounts=[{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
    )
    c = container(manifest)
    assert c["env"] == [
        {"name": "PASSWORD", "valueFrom": secret_ref},
        {"name": "MODE", "value": "$$(x)"},
    ]
    assert c["envFrom"] == [{"prefix": "APP_", "configMapRef": {"name": "settings"}}]
    assert {"name": "creds", "mountPath": "/etc/creds", "readOnly": True} in c["volumeMounts"]
    volumes = manifest["spec"]["template"]["spec"]["volumes"]
    assert {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}} in volumes


def test_a_mount_must_name_a_volume_and_stay_out_of_taskops_own_paths() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "image": "b",
                "action": {"run": {"path": "x"}},
                "volumes": [{"name": "v", "emptyDir": {}}],
                "volumeMounts": [{"name": "w", "mountPath": "/taskop/bin"}],
            }
        )
    assert any("/taskop is taskop's own" in m for m in info.value.messages)
    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "image": "b",
                "action": {"run": {"path": "x"}},
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}],
            }
        )
    assert any("spec.volumes[0].hostPath" in m for m in info.value.messages)


def test_affinity_spread_and_security_contexts_pass_through_over_taskops_defaults() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    spread = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
    manifest = job(
        action={"run": {"path": "x", "user": "1000"}},
        podTemplate={
            "affinity": affinity,
            "topologySpreadConstraints": [spread],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}},
            "containerSecurityContext": {"readOnlyRootFilesystem": True},
        },
    )
    pod = manifest["spec"]["template"]["spec"]
    assert (pod["affinity"], pod["topologySpreadConstraints"]) == (affinity, [spread])
    assert pod["securityContext"] == {"seccompProfile": {"type": "Localhost"}, "runAsNonRoot": True}
    security = container(manifest)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsUser"] == 1000
