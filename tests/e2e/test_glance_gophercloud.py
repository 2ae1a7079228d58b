"""The Glance door with the real Go client: gophercloud v2.16 (tests/glanceclient) creates, gets,
pages, filters and sorts tasks with a ServiceAccount token, and sees 400, 401, 403 and 405 where
Glance answers them. ``echo`` and ``fail`` run in real containers on the real node (the input
arrives as a file, the result file comes back as the result object); ``quick`` runs on kwok.
Every task it made is then the same Task for kubectl and the same task for the BBS API.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from taskop.bbs import models
from tests.bbsclient import free_port, post, wait_for_ping
from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, ROOT
from tests.glance import GlanceClient, create_task_type, service_account_token, wait_for_glance
from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

REAL_NODE = {"nodeSelector": REAL_NODE_SELECTOR, "tolerations": [REAL_NODE_TOLERATION]}
TYPES = {
    "echo": {
        "image": "busybox",
        "command": ["sh", "-c", "cat /input/task.json > /tmp/result.json"],
        "input": {"path": "/input/task.json", "env": "TASK_INPUT"},
        "resultFile": "/tmp/result.json",
        "podTemplate": REAL_NODE,
    },
    "fail": {
        "image": "busybox",
        "command": ["sh", "-c", 'test "$TASK_INPUT" = "{}" && exit 3'],
        "input": {"env": "TASK_INPUT"},
        "podTemplate": REAL_NODE,
    },
    "quick": {"image": "busybox", "command": ["true"], "resultFile": "/tmp/result.json"},
}


def test_gophercloud_drives_the_glance_door(
    operator: OperatorFactory,
    glanceclient: Path,
    operator_image: str,
    k8s: Any,
    namespace: str,
) -> None:
    for name, spec in TYPES.items():
        create_task_type(k8s, namespace, name, spec)
    token = service_account_token(k8s, namespace, "ci", ["create", "list", "get"])
    denied = service_account_token(k8s, namespace, "intruder", ["get"])
    port, bbs_port = free_port(), free_port()
    proc = operator.start(
        glance_enabled="true",
        glance_listen_port=port,
        bbs_enabled="true",
        bbs_listen_port=bbs_port,
        bbs_namespace=namespace,
        # The kwok pods of "quick" report this as their result file (a real node ignores it).
        bbs_task_annotations=json.dumps({"kwok.taskop.dev/message": '{"quick": true}'}),
    )
    wait_for_ping(bbs_port)
    wait_for_glance(port, token)

    run = subprocess.run(
        [
            str(glanceclient),
            *("-endpoint", f"http://127.0.0.1:{port}/", "-token", token, "-denied-token", denied),
            *("-real-type", "echo", "-failing-type", "fail", "-fast-type", "quick"),
            *("-expect-owner", f"system:serviceaccount:{namespace}:ci"),
            *("-expect-message", "Exited with status 3", "-count", "60", "-timeout", "240s"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ},
    )
    lines = run.stdout.splitlines()
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-5000:]}\n{proc.logs()[-3000:]}"
    passed = [line.split()[1] for line in lines if line.startswith("PASS ")]
    assert passed == [
        "create-real",
        "create-failing",
        "get",
        "create-many",
        "list-all-pages",
        "filter-status",
        "filter-type",
        "sort",
        "bad-marker",
        "no-token",
        "denied",
        "delete-405",
        "schemas",
    ]
    ids = json.loads(next(line for line in lines if line.startswith("IDS "))[4:])

    # The same Tasks for kubectl, and the same tasks for the BBS API.
    tasks = Tasks(k8s, namespace)
    everything = [ids["real"], ids["failing"], *ids["many"]]
    assert len(set(everything)) == 62
    for task_id in everything:
        obj = tasks.get(task_id)
        assert obj is not None and obj["spec"]["guid"] == task_id, task_id
        bbs = post(
            bbs_port, "/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid=task_id)
        ).decode(models.TaskResponse)
        assert bbs.task.task_guid == task_id and bbs.task.domain == "glance"
        assert bbs.task.state == models.Task.Completed
        assert bbs.task.failed == (task_id == ids["failing"])
    real = tasks.get(ids["real"])
    assert real is not None
    assert json.loads(real["status"]["result"]) == {"word": "hello", "n": 3, "nested": {"ok": True}}
    secret = client.CoreV1Api(k8s).read_namespaced_secret(f"{ids['real']}-input", namespace)
    assert secret.metadata.owner_references[0].uid == real["metadata"]["uid"]
    assert "Traceback" not in proc.logs()


def test_the_example_task_type_checksums_its_input(
    operator: OperatorFactory, operator_image: str, k8s: Any, namespace: str, tmp_path: Path
) -> None:
    """examples/glance-tasktype.yaml as the README shows it, its pods placed on the real node by
    the domain profile of ``glance`` (a TaskType gets its domain's profile like any Task)."""
    example = yaml.safe_load((ROOT / "examples" / "glance-tasktype.yaml").read_text())
    create_task_type(k8s, namespace, example["metadata"]["name"], example["spec"])
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump({"domains": {"glance": {"podTemplate": REAL_NODE}}}))
    token = service_account_token(k8s, namespace, "ci", ["create", "get", "list"])
    port = free_port()
    proc = operator.start(
        glance_enabled="true",
        glance_listen_port=port,
        bbs_namespace=namespace,
        domain_profiles_file=profiles,
    )
    wait_for_glance(port, token)
    glance = GlanceClient(port, token)

    created = glance.create("checksum", {"text": "hello"})
    done = glance.wait_status(created["id"], "success", "failure", timeout=180)

    expected = hashlib.sha256(b'{"text":"hello"}').hexdigest()
    assert (done["status"], done["result"]) == ("success", {"sha256": expected}), proc.logs()[
        -3000:
    ]
