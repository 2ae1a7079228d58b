"""A TaskType and a create request make one valid Task (and an input Secret when asked)."""

from __future__ import annotations

import base64
import json

import pytest

from taskop.domain.spec import parse_spec
from taskop.glance.tasktypes import TaskTypeError, build, parse_task_type

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


def make(task_type: dict = TYPE, input_: dict | None = None) -> tuple[dict, dict | None]:  # type: ignore[type-arg]
    return build(
        "checksum",
        parse_task_type(task_type),
        task_id=ID,
        input_=input_ if input_ is not None else {"url": "http://x", "n": 2},
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
    assert [(e.name, e.value) for e in spec.env] == [
        ("MODE", "fast"),
        ("TASK_INPUT", '{"url":"http://x","n":2}'),
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
    assert secret is not None and spec.volumes[0].secret is not None
    assert spec.volumes[0].secret.secret_name == secret["metadata"]["name"]
    assert json.loads(base64.b64decode(secret["data"]["input.json"])) == {"url": "http://x", "n": 2}


def test_no_input_path_no_secret() -> None:
    task, secret = make({"spec": {"image": "busybox", "command": ["true"]}})
    assert secret is None and "volumes" not in task["spec"] and "env" not in task["spec"]


def test_a_type_that_makes_no_valid_task_is_the_admins_error() -> None:
    with pytest.raises(TaskTypeError, match=r"spec\.podTemplate"):
        make({"spec": {"image": "busybox", "command": ["true"], "podTemplate": {"fsGroup": -1}}})
