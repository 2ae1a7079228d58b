"""The BBS API's edges that the Go conformance program cannot easily show.

Garbage, truncated and oversized bodies, invalid UTF-8, router answers, Job-run tasks refusing
cell operations, and concurrent CancelTask/CompleteTask races (exactly one wins).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from taskop.bbs import models
from taskop.domain.names import task_name
from tests.bbsclient import PROTOBUF, RawResponse, free_port, post, wait_for_ping
from tests.callbacks import callback_receiver
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorFactory, OperatorProcess
from tests.tasks import Tasks

pytestmark = pytest.mark.cluster

EXTERNAL = "cells"
MAX_BODY = 64 * 1024
INVALID = models.Error.InvalidRequest
BAD_REQUEST = "the request received is invalid"

ROUTES = {
    "/v1/tasks/list.r3": models.TasksResponse,
    "/v1/tasks/list.r2": models.TasksResponse,
    "/v1/tasks/get_by_task_guid.r3": models.TaskResponse,
    "/v1/tasks/get_by_task_guid.r2": models.TaskResponse,
    "/v1/tasks/desire.r2": models.TaskLifecycleResponse,
    "/v1/tasks/start": models.StartTaskResponse,
    "/v1/tasks/cancel": models.TaskLifecycleResponse,
    "/v1/tasks/fail": models.TaskLifecycleResponse,
    "/v1/tasks/reject": models.TaskLifecycleResponse,
    "/v1/tasks/complete": models.TaskLifecycleResponse,
    "/v1/tasks/resolving": models.TaskLifecycleResponse,
    "/v1/tasks/delete": models.TaskLifecycleResponse,
}


class BBS:
    def __init__(self, port: int, proc: OperatorProcess, tasks: Tasks) -> None:
        self.port = port
        self.proc = proc
        self.tasks = tasks

    def raw(self, path: str, body: Any = b"", **kwargs: Any) -> RawResponse:
        return post(self.port, path, body, **kwargs)

    def call(self, path: str, body: Any = b"") -> Any:
        return self.raw(path, body).decode(ROUTES[path])

    def ok(self, path: str, body: Any = b"") -> Any:
        response = self.call(path, body)
        assert not response.HasField("error"), (path, response.error)
        return response

    def task(self, guid: str) -> models.Task | None:
        response = self.call(
            "/v1/tasks/get_by_task_guid.r3", models.TaskByGuidRequest(task_guid=guid)
        )
        return response.task if response.HasField("task") else None

    def desire_external(self, guid: str) -> None:
        definition = models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
        )
        self.ok(
            "/v1/tasks/desire.r2",
            models.DesireTaskRequest(task_guid=guid, domain=EXTERNAL, task_definition=definition),
        )

    def running_external(self, guid: str, cell: str = "cell-a") -> None:
        self.desire_external(guid)
        assert self.ok(
            "/v1/tasks/start", models.StartTaskRequest(task_guid=guid, cell_id=cell)
        ).should_start


PROFILES = """
domains:
  lenient: {unenforceable: warn}
  quick: {unschedulableGracePeriod: 2}  # the default for BBS tasks is 60 s
"""


@pytest.fixture
def bbs(operator: OperatorFactory, k8s: Any, namespace: str, tmp_path: Path) -> Iterator[BBS]:
    port = free_port()
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    proc = operator.start(
        bbs_enabled="true",
        bbs_listen_port=port,
        bbs_namespace=namespace,
        bbs_external_domains=EXTERNAL,
        bbs_max_body_bytes=MAX_BODY,
        domain_profiles_file=profiles,
        callback_allowed_destinations="127.0.0.1",  # the callback receivers listen there
    )
    wait_for_ping(port)
    server = BBS(port, proc, Tasks(k8s, namespace))
    yield server
    assert "Traceback" not in proc.logs(), proc.logs()[-5000:]


def guid() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


def assert_error(response: Any, type_: int, message: str | None = None) -> None:
    assert response.HasField("error"), response
    assert response.error.type == type_, response.error
    if message is not None:
        assert response.error.message == message


# --- bodies ---------------------------------------------------------------------------------------


def test_garbage_body_is_invalid_request_on_every_route(bbs: BBS) -> None:
    for path, response_type in ROUTES.items():
        response = bbs.raw(path, b"\xff\xff\xff\xff\xff garbage \x00\x01")
        assert response.status == 200, path
        assert response.headers["content-type"] == PROTOBUF, path
        assert_error(response.decode(response_type), INVALID, BAD_REQUEST)


def test_truncated_desire_creates_nothing(bbs: BBS) -> None:
    g = guid()
    request = models.DesireTaskRequest(
        task_guid=g,
        domain=EXTERNAL,
        task_definition=models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
        ),
    ).SerializeToString()
    for cut in (len(request) - 1, len(request) // 2, 3):
        assert_error(
            bbs.raw("/v1/tasks/desire.r2", request[:cut]).decode(models.TaskLifecycleResponse),
            INVALID,
            BAD_REQUEST,
        )
    assert bbs.task(g) is None
    assert (
        bbs.tasks.custom.list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", bbs.tasks.namespace, "tasks"
        )["items"]
        == []
    )


def _big_desire(g: str) -> models.DesireTaskRequest:
    return models.DesireTaskRequest(
        task_guid=g,
        domain=EXTERNAL,
        task_definition=models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(
                run_action=models.RunAction(path="true", user="root", args=["x" * (2 * MAX_BODY)])
            ),
        ),
    )


def test_oversized_body_is_invalid_request(bbs: BBS) -> None:
    g = guid()
    response = bbs.raw("/v1/tasks/desire.r2", _big_desire(g)).decode(models.TaskLifecycleResponse)
    assert_error(response, INVALID)
    assert str(MAX_BODY) in response.error.message
    assert bbs.task(g) is None
    # The server still answers normally afterwards.
    wait_for_ping(bbs.port, timeout=5)


def test_oversized_chunked_body_is_invalid_request(bbs: BBS) -> None:
    import http.client

    g = guid()
    data = _big_desire(g).SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", bbs.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/tasks/desire.r2",
            body=iter([data[i : i + 8192] for i in range(0, len(data), 8192)]),
            headers={"Content-Type": PROTOBUF},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 200
        response = models.TaskLifecycleResponse.FromString(resp.read())
    except (BrokenPipeError, ConnectionResetError):
        response = None  # the server may close before reading everything; nothing was written
    finally:
        conn.close()
    if response is not None:
        assert_error(response, INVALID)
    assert bbs.task(g) is None


def test_empty_bodies_are_default_requests(bbs: BBS) -> None:
    assert bbs.raw("/v1/ping").body == b"\x08\x01"
    bbs.ok("/v1/tasks/list.r3")  # TasksRequest{}: 0 bytes, no filter
    assert_error(bbs.call("/v1/tasks/get_by_task_guid.r3"), INVALID, "Invalid field: task_guid")


# --- router ---------------------------------------------------------------------------------------


def test_unknown_path_and_wrong_method(bbs: BBS) -> None:
    for path in ("/v1/tasks/list", "/v1/tasks/desire", "/", "/v1/ping/"):
        response = bbs.raw(path)
        assert response.status == 404, path
        assert response.headers["content-type"].startswith("text/plain")
    for method in ("GET", "PUT", "DELETE"):
        for path in (*ROUTES, "/v1/ping", "/v1/events/tasks.r1", "/v1/events/tasks"):
            response = bbs.raw(path, method=method)
            assert response.status == 405, (method, path)
            assert response.headers["allow"] == "POST"


# --- UTF-8 ----------------------------------------------------------------------------------------


def _field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def test_invalid_utf8_result_is_stored_with_replacement_characters(bbs: BBS) -> None:
    g = guid()
    bbs.running_external(g)
    body = _field(1, g.encode()) + _field(2, b"cell-a") + _field(5, b"ok \xff\xfe end")
    bbs.ok("/v1/tasks/complete", body)
    task = bbs.task(g)
    assert task is not None and task.state == models.Task.Completed
    assert task.result.decode() == "ok \ufffd\ufffd end"


def test_invalid_utf8_failure_reason_is_replaced_and_truncated(bbs: BBS) -> None:
    g = guid()
    bbs.running_external(g)
    reason = b"\xff" + "é".encode() * 1000  # 2001 bytes, of which the first is invalid
    request = models.CompleteTaskRequest(
        task_guid=g, cell_id="cell-a", failed=True, failure_reason=reason
    )
    bbs.ok("/v1/tasks/complete", request)
    task = bbs.task(g)
    assert task is not None and task.failed
    text = task.failure_reason.decode()
    assert text.startswith("\ufffdé") and text.endswith("(truncated)")
    assert len(task.failure_reason) <= 1024


def test_invalid_utf8_in_a_string_field_leaves_the_task_unchanged(bbs: BBS) -> None:
    g = guid()
    bbs.running_external(g)
    # cell_id is a string field: invalid UTF-8 there makes the whole request unparseable.
    body = _field(1, g.encode()) + _field(2, b"cell-\xff") + _field(5, b"result")
    assert_error(
        bbs.raw("/v1/tasks/complete", body).decode(models.TaskLifecycleResponse),
        INVALID,
        BAD_REQUEST,
    )
    task = bbs.task(g)
    assert task is not None and task.state == models.Task.Running and task.cell_id == "cell-a"


# --- Job-run tasks --------------------------------------------------------------------------------


def test_cells_cannot_drive_job_run_tasks(bbs: BBS) -> None:
    g = guid()
    definition = models.TaskDefinition(
        root_fs="docker:///busybox",
        action=models.Action(run_action=models.RunAction(path="sleep", args=["1"], user="root")),
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain="jobs", task_definition=definition),
    )
    response = bbs.call("/v1/tasks/start", models.StartTaskRequest(task_guid=g, cell_id="cell-a"))
    assert_error(
        response,
        INVALID,
        f"task {g} is run by taskop as a Kubernetes Job; only external tasks accept StartTask",
    )


def test_job_run_domains_refuse_what_a_job_cannot_honour(bbs: BBS) -> None:
    g = guid()
    definition = models.TaskDefinition(
        root_fs="preloaded:cflinuxfs4",
        action=models.Action(run_action=models.RunAction(path="true", user="root")),
        volume_mounts=[models.VolumeMount(driver="nfs")],
    )
    response = bbs.call(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain="jobs", task_definition=definition),
    )
    assert_error(response, INVALID)
    assert "volume_mounts" in response.error.message
    assert bbs.task(g) is None


def test_external_domains_keep_any_definition(bbs: BBS) -> None:
    g = guid()
    definition = models.TaskDefinition(
        root_fs="preloaded:cflinuxfs4",
        action=models.Action(
            download_action=models.DownloadAction(to="/tmp", user="vcap", **{"from": "http://x/y"})
        ),
        egress_rules=[models.SecurityGroupRule(protocol="all", destinations=["0.0.0.0/0"])],
        result_file="relative/path",
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain=EXTERNAL, task_definition=definition),
    )
    task = bbs.task(g)
    assert task is not None and task.task_definition == definition
    assert task.state == models.Task.Pending and task.created_at > 0


def test_a_task_no_node_can_take_fails_as_diegos_auctioneer_says_it(bbs: BBS) -> None:
    """Diego fails a task whose placement tags no cell has at once, and Cloud Controller shows
    the reason, by its start, to the user of cf run-task; taskop after the domain's grace."""
    g = guid()
    definition = models.TaskDefinition(
        root_fs="docker:///busybox",
        action=models.Action(run_action=models.RunAction(path="true", user="root")),
        placement_tags=["isolation-segment-nobody-has"],
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain="quick", task_definition=definition),
    )

    def completed() -> models.Task | None:
        task = bbs.task(g)
        return task if task is not None and task.state == models.Task.Completed else None

    task = wait_until(completed, timeout=60, what=f"task {g} to fail")

    assert task.failed is True
    reason = task.failure_reason.decode()
    assert reason.startswith("found no compatible cell: 0/"), reason
    assert "didn't match Pod's node affinity/selector" in reason
    response = bbs.call("/v1/tasks/get_by_task_guid.r2", models.TaskByGuidRequest(task_guid=g))
    assert response.task.failure_reason.decode() == reason  # what Cloud Controller reads


# --- races ----------------------------------------------------------------------------------------


def test_concurrent_cancel_and_complete_exactly_one_wins(bbs: BBS) -> None:
    guids = [guid() for _ in range(20)]
    for g in guids:
        bbs.running_external(g)

    def cancel(g: str) -> Any:
        return bbs.call("/v1/tasks/cancel", models.TaskGuidRequest(task_guid=g))

    def complete(g: str) -> Any:
        return bbs.call(
            "/v1/tasks/complete",
            models.CompleteTaskRequest(task_guid=g, cell_id="cell-a", result=b"done"),
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        futures = {g: (pool.submit(cancel, g), pool.submit(complete, g)) for g in guids}
        results = {g: (c.result(), d.result()) for g, (c, d) in futures.items()}
    for g, (cancelled, completed) in results.items():
        winners = [r for r in (cancelled, completed) if not r.HasField("error")]
        assert len(winners) == 1, (g, cancelled, completed)
        loser = completed if winners[0] is cancelled else cancelled
        assert_error(
            loser,
            models.Error.InvalidStateTransition,
            "Cannot transition from Completed to Completed",
        )
        task = bbs.task(g)
        assert task is not None and task.state == models.Task.Completed
        if winners[0] is cancelled:
            assert (
                task.failed and task.failure_reason == b"task was cancelled" and task.result == b""
            )
        else:
            assert not task.failed and task.result == b"done"


# --- callbacks ------------------------------------------------------------------------------------


def test_a_task_completed_through_the_api_calls_back_at_once_and_is_deleted(bbs: BBS) -> None:
    g = guid()
    with callback_receiver([200]) as receiver:
        definition = models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
            completion_callback_url=receiver.url,
        )
        bbs.ok(
            "/v1/tasks/desire.r2",
            models.DesireTaskRequest(task_guid=g, domain=EXTERNAL, task_definition=definition),
        )
        bbs.ok("/v1/tasks/start", models.StartTaskRequest(task_guid=g, cell_id="cell-a"))
        bbs.ok(
            "/v1/tasks/complete",
            models.CompleteTaskRequest(task_guid=g, cell_id="cell-a", result=b"done"),
        )
        # Well before kick_task_duration (30 s), when convergence would retry the callback.
        wait_until(lambda: bbs.task(g) is None, timeout=15, what="the task to be deleted")

    payload = json.loads(receiver.requests[0][1])
    assert (payload["task_guid"], payload["failed"], payload["result"]) == (g, False, "done")


# --- domains --------------------------------------------------------------------------------------


def upsert(bbs: BBS, domain: str, ttl: int) -> models.UpsertDomainResponse:
    return bbs.raw("/v1/domains/upsert", models.UpsertDomainRequest(domain=domain, ttl=ttl)).decode(
        models.UpsertDomainResponse
    )


def fresh_domains(bbs: BBS) -> list[str]:
    response = bbs.raw("/v1/domains/list").decode(models.DomainsResponse)
    assert not response.HasField("error"), response.error
    return list(response.domains)


def test_domains_are_fresh_for_their_ttl_and_ttl_0_is_forever(bbs: BBS) -> None:
    for domain, ttl in (("cf-tasks", 120), ("brief", 1), ("forever", 0)):
        assert not upsert(bbs, domain, ttl).HasField("error")
    assert fresh_domains(bbs) == ["brief", "cf-tasks", "forever"]

    wait_until(lambda: "brief" not in fresh_domains(bbs), timeout=10, what="brief to expire")
    assert fresh_domains(bbs) == ["cf-tasks", "forever"]
    assert_error(upsert(bbs, "", 120), INVALID, "Invalid field: domain")


def test_domains_survive_an_operator_restart(
    bbs: BBS, operator: OperatorFactory, namespace: str
) -> None:
    assert not upsert(bbs, "cf-tasks", 120).HasField("error")
    bbs.proc.stop()
    port = free_port()
    operator.start(bbs_enabled="true", bbs_listen_port=port, bbs_namespace=namespace)
    wait_for_ping(port)
    response = post(port, "/v1/domains/list", b"").decode(models.DomainsResponse)
    assert list(response.domains) == ["cf-tasks"]


def test_image_credentials_and_mounted_files_become_secrets_owned_by_the_task_never_readable(
    bbs: BBS, k8s: Any, namespace: str
) -> None:
    g = guid()
    definition = models.TaskDefinition(
        root_fs="docker://registry.example.com/team/app#v1",
        action=models.Action(run_action=models.RunAction(path="true", user="root")),
        image_username="robot",
        image_password="s3cret-pw",
        volume_mounted_files=[models.File(path="/db/password", content="db-s3cret")],
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain="jobs", task_definition=definition),
    )

    core = client.CoreV1Api(k8s)
    secrets = {s.type: s for s in core.list_namespaced_secret(namespace).items}
    assert set(secrets) == {"kubernetes.io/dockerconfigjson", "Opaque"}
    task = bbs.tasks.get(task_name(g))
    assert task is not None
    for secret in secrets.values():
        assert [(o.kind, o.uid) for o in secret.metadata.owner_references] == [
            ("Task", task["metadata"]["uid"])
        ]
    pull = secrets["kubernetes.io/dockerconfigjson"].metadata.name
    assert task["spec"]["podTemplate"] == {"imagePullSecrets": [{"name": pull}]}
    assert task["spec"]["volumeMountedFiles"] == [{"path": "/db/password"}]
    assert secrets["Opaque"].data == {"file-0": "ZGItczNjcmV0"}  # base64 of db-s3cret
    for secret_value in ("s3cret-pw", "db-s3cret"):
        assert secret_value not in json.dumps(task)
        wire = bbs.task(g)
        assert wire is not None and secret_value not in str(wire)

    bbs.tasks.custom.delete_namespaced_custom_object(
        "taskop.dev", "v1alpha1", namespace, "tasks", task_name(g)
    )
    wait_until(
        lambda: not core.list_namespaced_secret(namespace).items,
        timeout=60,
        what="the garbage collector to delete the Task's Secrets",
    )


def viewer(k8s: Any, namespace: str) -> str:
    """A user with the namespace's ``view`` rights: the role the cluster's ``view`` aggregates
    (``system:aggregate-to-view``) and what the chart aggregates into it (Tasks and TaskTypes)."""
    rbac = client.RbacAuthorizationV1Api(k8s)
    user = f"viewer-{namespace}"
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "taskop-tasks-view"},
            "rules": [
                {
                    "apiGroups": ["taskop.dev"],
                    "resources": ["tasks", "tasks/status", "tasktypes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
    )
    for role_kind, role in (
        ("ClusterRole", "system:aggregate-to-view"),
        ("Role", "taskop-tasks-view"),
    ):
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"viewer-{role.replace(':', '-')}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": role_kind,
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )
    return user


def readable(obj: Any) -> str:
    """Every string in ``obj``, and what each decodes to when it is base64 (an encoded
    definition in an annotation is readable too)."""
    if isinstance(obj, dict):
        return "\n".join(readable(k) + "\n" + readable(v) for k, v in obj.items())
    if isinstance(obj, list):
        return "\n".join(readable(v) for v in obj)
    text = str(obj)
    try:
        return text + "\n" + base64.b64decode(text, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return text


def test_an_external_tasks_secrets_are_in_a_secret_it_owns_and_only_bbs_clients_get_them(
    bbs: BBS, k8s: Any, kubeconfig: str, namespace: str
) -> None:
    g = guid()
    services = '{"db":[{"credentials":{"password":"svc-s3cret"}}]}'
    env = [models.EnvironmentVariable(name="VCAP_SERVICES", value=services)]
    definition = models.TaskDefinition(
        root_fs="docker://registry.example.com/team/app#v1",
        action=models.Action(run_action=models.RunAction(path="true", user="root", env=env)),
        environment_variables=env,
        image_username="robot",
        image_password="s3cret-pw",
        volume_mounted_files=[models.File(path="/db/password", content="db-s3cret")],
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain=EXTERNAL, task_definition=definition),
    )
    bbs.ok("/v1/tasks/start", models.StartTaskRequest(task_guid=g, cell_id="cell-a"))
    name = task_name(g)
    wait_until(
        lambda: (bbs.tasks.get(name) or {}).get("status", {}).get("state") == "Running",
        timeout=30,
        what="the Task to say Running",
    )

    # What a `view` user of the namespace reads: the Task (metadata, spec, status) and the rest.
    user = viewer(k8s, namespace)
    as_viewer = ("-n", namespace, f"--as={user}")
    seen = kubectl(
        kubeconfig, "get", "tasks,events,configmaps,jobs,pods", "-o", "json", *as_viewer
    ).stdout
    assert name in seen  # the viewer does read the Task …
    for secret_value in ("s3cret-pw", "db-s3cret", "svc-s3cret"):
        assert secret_value not in readable(json.loads(seen)), secret_value  # … and none of these
    can_i = kubectl(kubeconfig, "auth", "can-i", "get", "secrets", *as_viewer, check=False)
    assert can_i.stdout.strip() == "no"

    # The Secret holding them is the Task's: deleted with it.
    task = bbs.tasks.get(name)
    assert task is not None
    (secret,) = client.CoreV1Api(k8s).list_namespaced_secret(namespace).items
    assert [(o.kind, o.uid) for o in secret.metadata.owner_references] == [
        ("Task", task["metadata"]["uid"])
    ]

    # BBS clients get the whole definition back, as from Diego's BBS.
    wire = bbs.task(g)
    assert wire is not None and wire.task_definition == definition
    assert wire.state == models.Task.Running
    listed = bbs.ok("/v1/tasks/list.r3", models.TasksRequest(domain=EXTERNAL)).tasks
    assert [t.task_definition for t in listed if t.task_guid == g] == [definition]


def test_a_job_run_tasks_env_values_are_in_a_secret_it_owns_and_only_bbs_clients_get_them(
    bbs: BBS, k8s: Any, kubeconfig: str, namespace: str
) -> None:
    """Cloud Controller's VCAP_SERVICES (service credentials) in the task's env and its run
    action's: a `view` user reads the Task, its Job and its pod, never the values."""
    g = guid()
    services = '{"db":[{"credentials":{"password":"svc-s3cret"}}]}'
    env = [models.EnvironmentVariable(name="VCAP_SERVICES", value=services)]
    action_env = [*env, models.EnvironmentVariable(name="DB_PASSWORD", value="run-s3cret")]
    run = models.RunAction(path="true", user="root", env=action_env)
    definition = models.TaskDefinition(
        root_fs="docker:///busybox",
        action=models.Action(
            serial_action=models.SerialAction(actions=[models.Action(run_action=run)])
        ),
        environment_variables=env,
    )
    bbs.ok(
        "/v1/tasks/desire.r2",
        models.DesireTaskRequest(task_guid=g, domain="jobs", task_definition=definition),
    )
    name = task_name(g)

    def with_pod() -> dict[str, Any] | None:
        status: dict[str, Any] = (bbs.tasks.get(name) or {}).get("status") or {}
        return status if status.get("podName") else None

    status = wait_until(with_pod, timeout=60, what="the Task's Job to run its pod")

    # What a `view` user of the namespace reads: the Task, its Job and pod, their events.
    user = viewer(k8s, namespace)
    as_viewer = ("-n", namespace, f"--as={user}")
    seen = kubectl(
        kubeconfig, "get", "tasks,events,configmaps,jobs,pods", "-o", "json", *as_viewer
    ).stdout
    assert name in seen and status["jobName"] in seen and status["podName"] in seen
    for secret_value in ("svc-s3cret", "run-s3cret"):
        assert secret_value not in readable(json.loads(seen)), secret_value

    # The values are in a Secret owned by the Task, which the pod's variables name.
    task = bbs.tasks.get(name)
    assert task is not None
    (secret,) = client.CoreV1Api(k8s).list_namespaced_secret(namespace).items
    assert [(o.kind, o.uid) for o in secret.metadata.owner_references] == [
        ("Task", task["metadata"]["uid"])
    ]
    ref = task["spec"]["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret.metadata.name
    assert base64.standard_b64decode(secret.data[ref["key"]]).decode() == services

    # BBS clients get the definition exactly as desired, values included.
    wire = bbs.task(g)
    assert wire is not None and wire.task_definition == definition
    listed = bbs.ok("/v1/tasks/list.r3", models.TasksRequest(domain="jobs")).tasks
    assert [t.task_definition for t in listed if t.task_guid == g] == [definition]


ICMP = models.SecurityGroupRule(
    protocol="icmp", destinations=["0.0.0.0/0"], icmp_info=models.ICMPInfo(type=8, code=0)
)
DNS_TCP = models.SecurityGroupRule(protocol="tcp", destinations=["0.0.0.0/0"], ports=[53])
ICMP_UNENFORCEABLE = (
    "spec.egressRules[1]: icmp type 8 code 0 has no Kubernetes NetworkPolicy form"
    " (NetworkPolicy allows only TCP, UDP and SCTP)"
)


def icmp_task(g: str, domain: str) -> models.DesireTaskRequest:
    return models.DesireTaskRequest(
        task_guid=g,
        domain=domain,
        task_definition=models.TaskDefinition(
            root_fs="docker:///busybox",
            action=models.Action(run_action=models.RunAction(path="true", user="root")),
            egress_rules=[DNS_TCP, ICMP],
            image_username="robot",
            image_password="pw",
        ),
    )


def test_the_refuse_policy_answers_invalid_request_naming_the_icmp_rule_and_keeps_nothing(
    bbs: BBS, k8s: Any, namespace: str
) -> None:
    g = guid()
    response = bbs.call("/v1/tasks/desire.r2", icmp_task(g, "strict"))
    assert_error(
        response, INVALID, f"{ICMP_UNENFORCEABLE} (this domain runs tasks as Kubernetes Jobs)"
    )
    assert bbs.tasks.get(task_name(g)) is None
    assert not client.CoreV1Api(k8s).list_namespaced_secret(namespace).items
    assert not client.NetworkingV1Api(k8s).list_namespaced_network_policy(namespace).items


def test_the_warn_policy_runs_the_task_and_records_the_icmp_rule_it_cannot_enforce(
    bbs: BBS, k8s: Any, namespace: str
) -> None:
    g = guid()
    bbs.ok("/v1/tasks/desire.r2", icmp_task(g, "lenient"))

    def enforced() -> dict[str, Any] | None:
        task = bbs.tasks.get(task_name(g)) or {}
        conditions = (task.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Enforced"), None)

    condition = wait_until(enforced, timeout=60, what="the Enforced condition")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "Unenforceable",
        ICMP_UNENFORCEABLE,
    )
    events = wait_until(
        lambda: (
            client.CoreV1Api(k8s)
            .list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={task_name(g)},reason=Unenforceable"
            )
            .items
        ),
        timeout=30,
        what="the Unenforceable Event",
    )
    assert [e.message for e in events] == [ICMP_UNENFORCEABLE]
    # Only the DNS rule is allowed: ICMP stays denied.
    policy = client.NetworkingV1Api(k8s).read_namespaced_network_policy(task_name(g), namespace)
    assert [[(p.protocol, p.port) for p in rule.ports or []] for rule in policy.spec.egress] == [
        [("TCP", 53)]
    ]
