"""The Glance door on the real cluster: Kubernetes tokens and RBAC decide who may do what and
who sees which task, bad requests say why and create nothing, its tasks are the same Tasks kubectl
and the BBS API see, a task's input is on nothing the cluster's ``view`` role reads, finished
tasks expire, and a standby replica serves nothing.

gophercloud's view of the same door (paging, sorting, filters, real containers) is
tests/e2e/test_glance_gophercloud.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from taskop.bbs import models
from tests.bbsclient import free_port, post, wait_for_ping
from tests.glance import (
    GlanceClient,
    create_task_type,
    service_account_token,
    wait_for_glance,
)
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory, OperatorProcess
from tests.standby import start_standby
from tests.tasks import Tasks

pytestmark = pytest.mark.cluster

QUICK = {
    "image": "busybox",
    "command": ["sh", "-c", "cp /input/task.json /tmp/result.json"],
    "input": {"path": "/input/task.json"},
    "resultFile": "/tmp/result.json",
}


@dataclass
class Door:
    port: int
    bbs_port: int
    proc: OperatorProcess
    writer: GlanceClient
    tasks: Tasks
    namespace: str

    def client(self, token: str | None) -> GlanceClient:
        return GlanceClient(self.port, token)


def open_door(
    operator: OperatorFactory, k8s: Any, namespace: str, kwok: dict[str, str], **settings: Any
) -> Door:
    port, bbs_port = free_port(), free_port()
    create_task_type(k8s, namespace, "quick", QUICK)
    token = service_account_token(k8s, namespace, "writer", ["create", "list", "get"])
    proc = operator.start(
        glance_enabled="true",
        glance_listen_port=port,
        bbs_enabled="true",
        bbs_listen_port=bbs_port,
        bbs_namespace=namespace,
        bbs_task_annotations=json.dumps({f"kwok.taskop.dev/{k}": v for k, v in kwok.items()}),
        **settings,
    )
    wait_for_ping(bbs_port)
    wait_for_glance(port, token)
    return Door(port, bbs_port, proc, GlanceClient(port, token), Tasks(k8s, namespace), namespace)


@pytest.fixture
def door(operator: OperatorFactory, k8s: Any, namespace: str) -> Iterator[Door]:
    opened = open_door(operator, k8s, namespace, {"complete": "never"})
    yield opened
    assert "Traceback" not in opened.proc.logs(), opened.proc.logs()[-5000:]


def nothing_created(k8s: Any, namespace: str) -> None:
    assert not Tasks(k8s, namespace).custom.list_namespaced_custom_object(
        "taskop.dev", "v1alpha1", namespace, "tasks"
    )["items"]
    secrets = client.CoreV1Api(k8s).list_namespaced_secret(namespace).items
    assert not [s.metadata.name for s in secrets if s.metadata.name.endswith("-input")]


def test_tokens_and_rbac_decide_who_may_do_what(door: Door, k8s: Any) -> None:
    reader = door.client(service_account_token(k8s, door.namespace, "reader", ["list", "get"]))
    nobody = door.client(service_account_token(k8s, door.namespace, "nobody", None))
    created = door.writer.create("quick", {"n": 1})

    for glance in (door.client(None), door.client("not-a-token")):
        for method, path in [
            ("GET", "/v2/tasks"),
            ("GET", f"/v2/tasks/{created['id']}"),
            ("POST", "/v2/tasks"),
            ("GET", "/v2/schemas/task"),
        ]:
            answer = glance.call(method, path, {"type": "quick", "input": {}})
            assert answer.status == 401, (method, path, answer)
            assert answer.body["code"] == "401 Unauthorized" and "token" in answer.message

    who = f"system:serviceaccount:{door.namespace}:nobody"
    for method, path, verb in [
        ("GET", "/v2/tasks", "list"),
        ("GET", f"/v2/tasks/{created['id']}", "get"),
        ("POST", "/v2/tasks", "create"),
    ]:
        answer = nobody.call(method, path, {"type": "quick", "input": {}})
        assert answer.status == 403, (method, path, answer)
        assert answer.message.startswith(f"{who} may not {verb} tasks.taskop.dev in namespace")

    assert reader.call("POST", "/v2/tasks", {"type": "quick", "input": {}}).status == 403
    assert (
        reader.get(created["id"]).body["owner"] == f"system:serviceaccount:{door.namespace}:writer"
    )
    assert [t["id"] for t in reader.call("GET", "/v2/tasks").body["tasks"]] == [created["id"]]
    assert nobody.call("GET", "/v2/schemas/tasks").status == 200  # schemas: any identity


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "the body is not JSON"),
        (b"[1, 2]", 400, "the body must be a JSON object"),
        (b'{"input": {}}', 400, "'type' is a required property"),
        (b'{"type": "quick"}', 400, "'input' is a required property"),
        (b'{"type": 7, "input": {}}', 400, "'type' must be a non-empty string"),
        (b'{"type": "quick", "input": [1]}', 400, "'input' must be a JSON object (got list)"),
        (b'{"type": "quick", "input": {}, "colour": "red"}', 400, "unknown field 'colour'"),
        (b'{"type": "quick", "input": {}, "status": "success"}', 400, "'status' is read-only"),
        (
            b'{"type": "import", "input": {}}',
            400,
            "unknown task type 'import'; known types: quick",
        ),
        (b'{"type": "quick", "input": {"x": "' + b"a" * 70_000 + b'"}}', 413, "at most 65536"),
    ],
)
def test_bad_creates_say_why_and_create_nothing(
    door: Door, k8s: Any, body: bytes, status: int, message: str
) -> None:
    answer = door.writer.call("POST", "/v2/tasks", raw=body)
    assert answer.status == status, answer
    assert message in answer.message, answer
    assert answer.headers["Content-Type"].startswith("application/json")
    nothing_created(k8s, door.namespace)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("marker=7f0e1a3c-0000-4000-8000-000000000000", "marker '7f0e1a3c-"),
        ("sort_key=id", "sort_key must be one of"),
        ("sort_dir=sideways", "sort_dir must be asc or desc"),
        ("status=done", "status must be one of pending, processing, success, failure"),
        ("type=import", "type 'import' is not a task type (known types: quick)"),
        ("limit=-3", "limit must be a whole number"),
    ],
)
def test_bad_listings_are_400_with_a_reason(door: Door, query: str, message: str) -> None:
    answer = door.writer.call("GET", f"/v2/tasks?{query}")
    assert answer.status == 400 and message in answer.message, answer


def test_tasks_are_not_deleted_and_unknown_ones_are_404(door: Door) -> None:
    created = door.writer.create("quick", {})
    answer = door.writer.call("DELETE", f"/v2/tasks/{created['id']}")
    assert (answer.status, answer.headers["Allow"]) == (405, "GET")
    assert door.writer.call("PUT", "/v2/tasks").headers["Allow"] == "GET, POST"
    assert door.writer.get(created["id"]).status == 200
    missing = door.writer.get("7f0e1a3c-0000-4000-8000-000000000000")
    assert missing.status == 404 and missing.body["title"] == "Not Found"


def bbs_task(door: Door, guid: str) -> models.Task | None:
    response = post(
        door.bbs_port, "/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid=guid)
    ).decode(models.TaskResponse)
    return response.task if response.HasField("task") else None


def test_one_task_through_three_doors(door: Door, k8s: Any) -> None:
    """Created here, it is a Task for kubectl and a BBS task; a BBS cancel is a failure here."""
    created = door.writer.create("quick", {"url": "http://example.invalid/a"})
    assert created["status"] == "pending" and created["result"] is None
    task_id = created["id"]

    obj = door.tasks.get(task_id)
    assert obj is not None and obj["spec"]["guid"] == task_id
    assert obj["metadata"]["labels"]["taskop.dev/glance-type"] == "quick"
    secret = client.CoreV1Api(k8s).read_namespaced_secret(f"{task_id}-input", door.namespace)
    assert [o.name for o in secret.metadata.owner_references] == [task_id]

    running = door.writer.wait_status(task_id, "processing")
    seen_by_bbs = wait_until(
        lambda: (t := bbs_task(door, task_id)) and t.state == models.Task.Running and t,
        timeout=30,
        what="the BBS API to see the task Running",
    )
    assert seen_by_bbs.domain == "glance"

    response = post(door.bbs_port, "/v1/tasks/cancel", models.TaskGuidRequest(task_guid=task_id))
    assert not response.decode(models.TaskLifecycleResponse).HasField("error")
    failed = door.writer.wait_status(task_id, "failure")
    assert failed["message"] == "task was cancelled" and failed["result"] is None
    assert failed["updated_at"] >= running["updated_at"] and "expires_at" in failed
    assert door.tasks.status(task_id)["failureReason"] == "task was cancelled"


def test_a_finished_task_expires(operator: OperatorFactory, k8s: Any, namespace: str) -> None:
    """expires_at = completion + the TTL; then 404, left out of lists, and the Task is gone."""
    door = open_door(
        operator,
        k8s,
        namespace,
        {"message": '{"sha256": "ab12"}'},
        glance_task_ttl_seconds=4,
    )
    created = door.writer.create("quick", {"file": "a"})
    done = door.writer.wait_status(created["id"], "success")
    assert done["result"] == {"sha256": "ab12"} and done["message"] == ""
    completed = door.tasks.status(created["id"])["firstCompletedAt"]
    assert done["expires_at"][:19] > completed[:19]
    listed = door.writer.call("GET", "/v2/tasks").body["tasks"]
    assert [t["id"] for t in listed] == [created["id"]] and "result" not in listed[0]

    wait_until(
        lambda: door.writer.get(created["id"]).status == 404, timeout=30, what="the task expiring"
    )
    assert door.writer.call("GET", "/v2/tasks").body["tasks"] == []
    wait_until(lambda: door.tasks.get(created["id"]) is None, timeout=60, what="the Task deleted")
    assert "Traceback" not in door.proc.logs()


def test_paging_survives_a_restart_of_taskop_and_new_tasks(
    operator: OperatorFactory, k8s: Any, namespace: str
) -> None:
    """The marker is an id, not server state: kill taskop (SIGKILL) between two pages, create
    more tasks meanwhile, and the walk still returns each task that existed once."""
    door = open_door(operator, k8s, namespace, {"complete": "never"})
    before = {door.writer.create("quick", {"i": i})["id"] for i in range(30)}
    first = door.writer.call("GET", "/v2/tasks?limit=10").body
    assert len(first["tasks"]) == 10 and first["next"].startswith("/v2/tasks?limit=10&marker=")

    door.proc.kill()
    proc = operator.start(
        glance_enabled="true",
        glance_listen_port=door.port,
        bbs_namespace=namespace,
    )
    wait_for_glance(door.port, door.writer.token or "")
    for i in range(5):
        door.writer.create("quick", {"late": i})

    seen = [t["id"] for t in first["tasks"]]
    link = first.get("next")
    while link:
        page = door.writer.call("GET", link).body
        seen += [t["id"] for t in page["tasks"]]
        link = page.get("next")
    assert len(seen) == len(set(seen)), "a task was listed twice"
    assert before <= set(seen)
    assert "Traceback" not in proc.logs()


def test_a_create_only_caller_sees_only_its_own_tasks(door: Door, k8s: Any) -> None:
    """Glance's rule on RBAC: allowed only ``create``, a caller lists and GETs its own tasks; a
    task of another owner is a 404 (and an unknown marker), as one that does not exist."""
    alice = door.client(service_account_token(k8s, door.namespace, "alice", ["create"]))
    bob = door.client(service_account_token(k8s, door.namespace, "bob", ["create"]))
    lister = door.client(service_account_token(k8s, door.namespace, "lister", ["list"]))
    mine = [alice.create("quick", {"of": "alice", "i": i})["id"] for i in range(2)]
    theirs = bob.create("quick", {"of": "bob", "password": "bobs-only"})["id"]
    writers = door.writer.create("quick", {"of": "writer"})["id"]

    assert sorted(t["id"] for t in alice.call("GET", "/v2/tasks").body["tasks"]) == sorted(mine)
    assert [t["id"] for t in bob.call("GET", "/v2/tasks").body["tasks"]] == [theirs]
    own = alice.get(mine[0])
    assert own.status == 200 and own.body["input"] == {"of": "alice", "i": 0}
    assert own.body["owner"] == f"system:serviceaccount:{door.namespace}:alice"

    unknown = "7f0e1a3c-0000-4000-8000-000000000000"
    for task_id in (theirs, writers):
        answer, missing = alice.get(task_id), alice.get(unknown)
        assert (answer.status, missing.status) == (404, 404), answer
        assert answer.body["title"] == missing.body["title"] == "Not Found"
        assert answer.message.replace(task_id, "ID") == missing.message.replace(unknown, "ID")
        assert "bobs-only" not in json.dumps(answer.body)
        marker = alice.call("GET", f"/v2/tasks?marker={task_id}")
        assert marker.status == 400 and "is not a task" in marker.message

    # Allowed ``list``: every task of the namespace, each with its input by id.
    everything = sorted([*mine, theirs, writers])
    for seer in (lister, door.writer):
        assert sorted(t["id"] for t in seer.call("GET", "/v2/tasks").body["tasks"]) == everything
        answer = seer.get(theirs)
        assert answer.status == 200 and answer.body["input"]["password"] == "bobs-only"


def view_client(k8s: Any, namespace: str) -> client.ApiClient:
    """An API client as a user with the cluster's ``view`` role in ``namespace`` (and get/list
    on Tasks, which the chart aggregates into ``view``) would have. Bound to the built-in rules
    ``view`` aggregates (``system:aggregate-to-view``: pods, jobs, … never Secrets): the local
    cluster runs no aggregation controller, so its ``view`` itself is empty."""
    token = service_account_token(k8s, namespace, "viewer", ["get", "list", "watch"])
    client.RbacAuthorizationV1Api(k8s).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "viewer-view"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:aggregate-to-view",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
        },
    )
    admin = k8s.configuration
    config = client.Configuration()
    config.host, config.ssl_ca_cert, config.verify_ssl = (
        admin.host,
        admin.ssl_ca_cert,
        admin.verify_ssl,
    )
    config.api_key = {"authorization": f"Bearer {token}"}
    viewer = client.ApiClient(config)

    def reads_jobs() -> bool:
        try:
            client.BatchV1Api(viewer).list_namespaced_job(namespace)
            return True
        except client.ApiException:
            return False  # the RoleBinding is not in the authorizer's cache yet

    wait_until(reads_jobs, timeout=30, what="the viewer's RoleBinding to take effect")
    return viewer


def test_a_tasks_input_is_on_nothing_view_can_read(door: Door, k8s: Any) -> None:
    """The input of a type with ``input.env`` and ``input.path`` is in the Task's Secret only:
    the Task (annotations, spec, env) and the Job and pod a ``view`` user reads name the Secret,
    the BBS API's view of the task and the Glance list do not carry it, and only the owner's
    GET answers it."""
    create_task_type(
        k8s,
        door.namespace,
        "secretive",
        {**QUICK, "input": {"path": "/input/task.json", "env": "TASK_INPUT"}},
    )
    wait_until(  # the door learns of a new type from its watch
        lambda: "secretive"
        in door.writer.call("GET", "/v2/schemas/task").body["properties"]["type"]["enum"],
        timeout=30,
        what="the Glance door to know the new task type",
    )
    password = f"pw-{uuid.uuid4().hex}"
    created = door.writer.create("secretive", {"password": password})
    task_id = created["id"]
    assert created["input"] == {"password": password}
    door.writer.wait_status(task_id, "processing")  # its Job and pod exist

    viewer = view_client(k8s, door.namespace)
    task = client.CustomObjectsApi(viewer).get_namespaced_custom_object(
        "taskop.dev", "v1alpha1", door.namespace, "tasks", task_id
    )
    job = client.BatchV1Api(viewer).read_namespaced_job(task_id, door.namespace)
    pods = client.CoreV1Api(viewer).list_namespaced_pod(door.namespace).items
    assert pods, "the task's pod"
    seen = [
        task,
        viewer.sanitize_for_serialization(job),
        *map(viewer.sanitize_for_serialization, pods),
    ]
    for obj in seen:
        assert password not in json.dumps(obj), obj
    assert "taskop.dev/glance-input" not in task["metadata"]["annotations"]
    secret_ref = {"name": f"{task_id}-input", "key": "input.json"}
    assert {"name": "TASK_INPUT", "valueFrom": {"secretKeyRef": secret_ref}} in task["spec"]["env"]
    env = {e.name: e for e in job.spec.template.spec.containers[0].env or []}
    assert env["TASK_INPUT"].value is None
    assert env["TASK_INPUT"].value_from.secret_key_ref.name == f"{task_id}-input"
    with pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(viewer).read_namespaced_secret(f"{task_id}-input", door.namespace)
    assert refused.value.status == 403  # view does not read Secrets: the input is safe there

    seen_by_bbs = bbs_task(door, task_id)
    assert seen_by_bbs is not None and password not in str(seen_by_bbs)
    listed = door.writer.call("GET", "/v2/tasks").body
    assert password not in json.dumps(listed)
    assert door.writer.get(task_id).body["input"] == {"password": password}
    stranger = door.client(service_account_token(k8s, door.namespace, "stranger", ["create"]))
    assert stranger.get(task_id).status == 404


def test_a_standby_replica_answers_503(
    kubeconfig: str, k8s: Any, namespace: str, crds: None, tmp_path: Any
) -> None:
    """Under kopf peering, the replica that is not the active one serves no Glance request
    (read-your-writes holds only through the one that writes): 503, Glance's JSON error."""
    create_task_type(k8s, namespace, "quick", QUICK)
    token = service_account_token(k8s, namespace, "writer", ["create", "list", "get"])
    port = free_port()
    proc = start_standby(
        kubeconfig,
        k8s,
        namespace,
        tmp_path / "standby.log",
        {"glance_enabled": "true", "glance_listen_port": port, "bbs_namespace": namespace},
        metrics_port=free_port(),
    )
    try:
        glance = GlanceClient(port, token)

        def answer() -> Any:
            try:
                return glance.call("GET", "/v2/tasks")
            except OSError:
                return None  # not listening yet

        listing = wait_until(answer, timeout=30, what="the Glance listener")
        for got in (
            listing,
            glance.call("POST", "/v2/tasks", {"type": "quick", "input": {"n": 1}}),
            glance.call("GET", "/v2/tasks/7f0e1a3c-0000-4000-8000-000000000000"),
            glance.call("GET", "/v2/schemas/task"),
        ):
            assert got.status == 503, got
            assert got.body["code"] == "503 Service Unavailable", got
            assert "this taskop replica is a standby" in got.message, got
        nothing_created(k8s, namespace)
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()[-5000:]
