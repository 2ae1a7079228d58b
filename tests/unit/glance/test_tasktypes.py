"""A TaskType and a create request make one valid Task and its input Secret; the input is in the
Secret only, never on the Task (which the cluster's ``view`` role reads)."""

from __future__ import annotations

import base64
import json

import pytest

from taskop.domain.jobs import JobSettings, build_job
from taskop.domain.spec import parse_spec
from taskop.glance.tasktypes import TaskTypeError, build, parse_task_type, secret_input

TYPE = {
    "spec": {
        "image": "busybox",
        "command": ["sh", "-c", "cp /input/task.json /tmp/result.json"],
        "env": [{"name": "MODE", "value": "fast"}],
        "input": {"path": "/input/task.json", "env": "TASK_INPUT"},
        "resultFile": "/tmp/result.json",
        "timeoutSeconds": 600,
        "podTemplate": {"nodeSelector": {"pool": "tasks"}},
    }
}
ID = "8c3d8f5e-7a53-4b8e-9d34-0d3f5c2f9a10"


SECRET_INPUT = {"url": "http://x", "password": "hunter2-do-not-leak", "n": 2}


def make(task_type: dict = TYPE, input_: dict | None = None) -> tuple[dict, dict]:  # type: ignore[type-arg]
    return build(
        "checksum",
        parse_task_type(task_type),
        task_id=ID,
        input_=input_ if input_ is not None else SECRET_INPUT,
        owner="system:serviceaccount:apps:ci",
        domain="glance",
        ttl_seconds=172800,
        annotations={"kwok.taskop.dev/complete": "never"},
    )


def test_the_task_runs_the_types_command_with_the_input_as_file_and_env() -> None:
    task, secret = make()
    spec = parse_spec(task["spec"])
    assert task["metadata"]["name"] == ID and spec.guid == ID and spec.domain == "glance"
    assert task["metadata"]["labels"] == {
        "taskop.dev/api": "glance",
        "taskop.dev/glance-type": "checksum",
    }
    assert (
        task["metadata"]["annotations"]["taskop.dev/glance-owner"]
        == "system:serviceaccount:apps:ci"
    )
    assert task["metadata"]["annotations"]["kwok.taskop.dev/complete"] == "never"
    assert spec.action.run is not None and spec.action.run.path == "sh"
    assert spec.action.run.args == ["-c", "cp /input/task.json /tmp/result.json"]
    assert [e.model_dump(by_alias=True, exclude_defaults=True) for e in spec.env] == [
        {"name": "MODE", "value": "fast"},
        {
            "name": "TASK_INPUT",
            "valueFrom": {"secretKeyRef": {"name": f"{ID}-input", "key": "input.json"}},
        },
    ]
    assert spec.result_file == "/tmp/result.json" and spec.timeout_seconds == 600
    assert spec.ttl_seconds_after_finished == 172800
    assert spec.pod_template is not None and spec.pod_template.node_selector == {"pool": "tasks"}
    mount = spec.volume_mounts[0]
    assert (mount.mount_path, mount.sub_path, mount.read_only) == (
        "/input/task.json",
        "input.json",
        True,
    )
    assert spec.volumes[0].secret is not None
    assert spec.volumes[0].secret.secret_name == secret["metadata"]["name"] == f"{ID}-input"
    assert json.loads(base64.b64decode(secret["data"]["input.json"])) == SECRET_INPUT
    assert secret["immutable"] is True
    assert secret["metadata"]["labels"] == {"taskop.dev/glance-input": "true"}  # the door's watch


@pytest.mark.parametrize(
    "delivery", [{"path": "/input/task.json", "env": "TASK_INPUT"}, {"env": "IN"}, {}]
)
def test_the_input_is_nowhere_on_the_task(delivery: dict) -> None:  # type: ignore[type-arg]
    """Not in an annotation, a label, the spec or an env literal: only in the Secret."""
    task, secret = make({"spec": {**TYPE["spec"], "input": delivery}})
    text = json.dumps(task)
    for needle in ("hunter2-do-not-leak", "http://x", base64.b64encode(b"hunter2")[:8].decode()):
        assert needle not in text, needle
    assert "taskop.dev/glance-input" not in task["metadata"]["annotations"]
    assert all("value" not in e for e in task["spec"].get("env", []) if e["name"] != "MODE")
    assert json.loads(base64.b64decode(secret["data"]["input.json"])) == SECRET_INPUT


def test_the_job_gets_the_input_from_the_secret_and_holds_none_of_it() -> None:
    """The Job and its pod template (readable with ``view``) name the Secret; Kubernetes fills
    in the variable and mounts the file."""
    task, _ = make()
    job = build_job(
        task["metadata"]["name"],
        "ns",
        "uid-1",
        parse_spec(task["spec"]),
        JobSettings(),
        annotations=task["metadata"]["annotations"],
    )
    assert "hunter2-do-not-leak" not in json.dumps(job)
    pod = job["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if any(e["name"] == "TASK_INPUT" for e in c["env"]))
    assert {"name": "TASK_INPUT", "valueFrom": {"secretKeyRef": secret_ref()}} in main["env"]
    assert {"name": "glance-input", "secret": {"secretName": f"{ID}-input"}} in pod["volumes"]


def secret_ref() -> dict[str, str]:
    return {"name": f"{ID}-input", "key": "input.json"}


def test_without_input_delivery_the_input_is_still_kept_in_its_secret() -> None:
    """GET /v2/tasks/{id} answers the input: it reads it from this Secret."""
    task, secret = make({"spec": {"image": "busybox", "command": ["true"]}})
    assert "volumes" not in task["spec"] and "env" not in task["spec"]
    assert secret["metadata"]["name"] == f"{ID}-input"
    assert json.loads(base64.b64decode(secret["data"]["input.json"])) == SECRET_INPUT


def test_the_input_is_read_back_only_from_a_tasks_own_secret() -> None:
    _, secret = make()
    owned = {**secret, "metadata": {**secret["metadata"], "ownerReferences": []}}
    assert secret_input(owned) is None  # labelled, but owned by no Task
    owned["metadata"]["ownerReferences"] = [{"kind": "Task", "name": ID, "uid": "uid-1"}]
    assert secret_input(owned) == ("uid-1", SECRET_INPUT)
    other = {"kind": "Task", "name": "other", "uid": "uid-2"}
    renamed = {**owned, "metadata": {**owned["metadata"], "ownerReferences": [other]}}
    assert secret_input(renamed) is None  # not named after the Task that owns it
    broken = {**owned, "data": {"input.json": "bm90IGpzb24="}}  # "not json"
    assert secret_input(broken) is None


def test_a_type_that_makes_no_valid_task_is_the_admins_error() -> None:
    with pytest.raises(TaskTypeError, match=r"spec\.podTemplate"):
        make({"spec": {"image": "busybox", "command": ["true"], "podTemplate": {"fsGroup": -1}}})
