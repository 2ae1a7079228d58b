"""The BBS write service against an in-memory API server: Cancel and Fail a retry completes, and
tasks whose secrets (an external task's definition, a Job-run task's env values) live in a Secret
owned by the Task, never in the Task nor its Job."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, cast

import pytest

from taskop.bbs import events, models
from taskop.bbs.convert import DEFINITION_SECRET_LABEL, job_run_definition
from taskop.bbs.service import TaskService
from taskop.bbs.view import TaskView
from taskop.domain.decide import DecideSettings, Observation, decide
from taskop.domain.errors import BBSError, ErrorType
from taskop.domain.jobs import EXECUTOR_SPEC_ANNOTATION, JobSettings, build_job
from taskop.domain.names import definition_secret_name, job_name, task_name
from taskop.domain.owner import task_owner
from taskop.domain.spec import parse_spec
from taskop.kube.client import Kube
from taskop.settings import Settings
from tests.unit.bbs.builders import desire, run, task_definition
from tests.unit.bbs.fakekube import FakeKube, ServerError
from tests.unit.bbs.test_view import Recorder

EXTERNAL = "cells"
CANCELLED = "task was cancelled"


def service(kube: FakeKube, hub: Recorder | None = None) -> TaskService:
    view = TaskView(hub)
    view.replace_all([])
    settings = Settings(bbs_namespace="ns", bbs_external_domains=EXTERNAL)
    return TaskService(cast(Kube, kube), settings, view)


async def running_job_task(kube: FakeKube, svc: TaskService, guid: str = "job-1") -> str:
    """A Job-run task the reconciler has started: Running on a node, with its Job."""
    await svc.desire(desire(task_guid=guid, domain="jobs"))
    name = task_name(guid)
    obj = kube.tasks[name]
    running = {"state": "Running", "cellId": "node-1", "jobName": job_name(name)}
    svc.view.observe(
        await kube.patch_task_status("ns", name, obj["metadata"]["resourceVersion"], running)
    )
    return name


def the_job(kube: FakeKube, name: str) -> dict[str, Any]:
    """The Task's Job, still running."""
    owner = task_owner(name, kube.tasks[name]["metadata"]["uid"])
    return {
        "metadata": {"name": job_name(name), "uid": "job-uid", "ownerReferences": [owner]},
        "status": {"active": 1},
    }


def reconcile(kube: FakeKube, name: str) -> tuple[str | None, dict[str, Any]]:
    """One reconciler pass over the Task as stored, its Job running: (the Job uid it deletes,
    the Task's status after the pass)."""
    task = kube.tasks[name]
    decision = decide(
        Observation(task=task, job=the_job(kube, name), now=task_ns()), DecideSettings()
    )
    status = {**(task.get("status") or {}), **(decision.status or {})}
    return decision.delete_job_uid, status


def task_ns() -> int:
    return 1_767_225_700_000_000_000  # 2026-01-01, a minute after the Tasks were created


def assert_cancelled(status: dict[str, Any], reason: str = CANCELLED) -> None:
    assert (status["state"], status["failed"], status["failureReason"]) == (
        "Completed",
        True,
        reason,
    )


# --- Cancel and Fail: two writes, and a retry (or the reconciler) completes them --------------


async def test_a_cancel_whose_second_write_fails_is_completed_by_a_retry() -> None:
    kube = FakeKube()
    svc = service(kube)
    name = await running_job_task(kube, svc)
    kube.fail_write(2)
    with pytest.raises(ServerError):
        await svc.cancel("job-1")

    await svc.cancel("job-1")  # the client retries: it completes the cancel, no error

    task = kube.tasks[name]
    assert task["spec"]["cancelled"] is True
    assert_cancelled(task["status"])
    assert reconcile(kube, name)[0] == "job-uid"  # and the Job is stopped
    entry = svc.view.get("job-1")
    assert entry is not None and entry.task.failure_reason == CANCELLED.encode()


async def test_a_cancel_whose_second_write_fails_stops_the_job_without_a_retry() -> None:
    kube = FakeKube()
    svc = service(kube)
    name = await running_job_task(kube, svc)
    kube.fail_write(2)
    with pytest.raises(ServerError):
        await svc.cancel("job-1")

    # Nobody retries. Whatever the Task says now, it says it together with a stopped Job: the
    # reconciler deletes the Job and records (or has) the cancel.
    deleted, status = reconcile(kube, name)
    assert deleted == "job-uid"
    assert_cancelled(status)


async def test_a_fail_whose_second_write_fails_is_completed_by_a_retry() -> None:
    kube = FakeKube()
    svc = service(kube)
    name = await running_job_task(kube, svc)
    kube.fail_write(2)
    with pytest.raises(ServerError):
        await svc.fail("job-1", b"the cell gave up")

    await svc.fail("job-1", b"the cell gave up")

    assert kube.tasks[name]["spec"]["cancelled"] is True
    assert_cancelled(kube.tasks[name]["status"], "the cell gave up")
    assert reconcile(kube, name)[0] == "job-uid"


async def test_a_cancel_the_reconciler_recorded_between_its_two_writes_succeeds() -> None:
    kube = FakeKube()
    svc = service(kube)
    name = await running_job_task(kube, svc)

    def reconciler_records_the_cancel(k: FakeKube) -> None:
        task = k.tasks[name]
        assert task["spec"].get("cancelled") is True  # it acts on the spec written first
        _, status = reconcile(k, name)
        task["status"] = status
        task["metadata"]["resourceVersion"] = k._next_rv()

    kube.before_write(2, reconciler_records_the_cancel)
    await svc.cancel("job-1")  # its status write conflicts; the cancel it committed happened

    assert_cancelled(kube.tasks[name]["status"])


async def test_cancel_again_after_a_cancel_is_an_invalid_transition() -> None:
    kube = FakeKube()
    svc = service(kube)
    await running_job_task(kube, svc)
    await svc.cancel("job-1")
    with pytest.raises(BBSError) as info:
        await svc.cancel("job-1")
    assert info.value.type is ErrorType.InvalidStateTransition
    assert info.value.message == "Cannot transition from Completed to Completed"


async def test_cancelling_an_external_task_is_one_write() -> None:
    kube = FakeKube()
    svc = service(kube)
    await svc.desire(desire(task_guid="ext-1", domain=EXTERNAL))
    await svc.start("ext-1", "cell-a")
    kube.writes.clear()
    await svc.cancel("ext-1")
    assert kube.writes == ["patch_task_status"]
    task = kube.tasks[task_name("ext-1")]
    assert_cancelled(task["status"])
    assert not task["spec"].get("cancelled")


# --- External tasks: the definition in a Secret owned by the Task ----------------------------


def readable(obj: Any) -> str:
    """Every string in ``obj``, and what each decodes to when it is base64 (an encoded
    definition in an annotation counts as readable too)."""
    if isinstance(obj, dict):
        return "\n".join(readable(k) + "\n" + readable(v) for k, v in obj.items())
    if isinstance(obj, list):
        return "\n".join(readable(v) for v in obj)
    text = str(obj)
    try:
        return text + "\n" + base64.b64decode(text, validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return text


PASSWORD, CONTENT = "s3cret-pw", "db-s3cret"
SERVICES = '{"db":[{"credentials":{"password":"svc-s3cret"}}]}'


def secret_definition(
    action: models.Action | None = None, env: list[models.EnvironmentVariable] | None = None
) -> models.TaskDefinition:
    """A definition holding every kind of secret BBS carries: image credentials, a mounted file,
    VCAP_SERVICES in the task's env and (by default) its run action's."""
    env = env or [models.EnvironmentVariable(name="VCAP_SERVICES", value=SERVICES)]
    return task_definition(
        root_fs="docker://registry.example.com/team/app",
        action=action or run(env=env),
        environment_variables=env,
        image_username="robot",
        image_password=PASSWORD,
        volume_mounted_files=[models.File(path="/db/password", content=CONTENT)],
    )


async def test_an_external_task_keeps_its_secrets_in_a_secret_it_owns_and_bbs_reads_them() -> None:
    kube = FakeKube()
    hub = Recorder()
    svc = service(kube, hub)
    td = secret_definition()
    await svc.desire(desire(task_guid="ext-1", domain=EXTERNAL, task_definition=td))

    name = task_name("ext-1")
    task = kube.tasks[name]
    seen = readable(task)  # metadata, spec, status: what a `view` user reads
    for secret_value in (PASSWORD, CONTENT, "svc-s3cret"):
        assert secret_value not in seen
    (secret,) = kube.secrets.values()
    assert secret["metadata"]["ownerReferences"] == [task_owner(name, task["metadata"]["uid"])]
    assert secret["metadata"]["labels"] == {DEFINITION_SECRET_LABEL: "true"}

    entry = svc.view.get("ext-1")  # TaskByGuid, Tasks: exactly the definition desired
    assert entry is not None and entry.task.task_definition == td
    assert [t.task_definition for t in svc.view.tasks()] == [td]

    # A watch-fed view (another replica, a restart) gets it from the Secret's own watch, whatever
    # the order of the two watches; events carry it too.
    fresh = TaskView(hub, watch_definitions=True)
    fresh.replace_all([task])
    assert fresh.get("ext-1") is None and not fresh.ready
    fresh.definition_feed.replace_all([secret])
    assert fresh.ready
    entry = fresh.get("ext-1")
    assert entry is not None and entry.task.task_definition == td
    created = [e for e in hub.events if e.name == events.TASK_CREATED]
    assert [e.task.task_definition for e in created] == [td]


def job_run_definition_with_services() -> models.TaskDefinition:
    """What Cloud Controller desires of a Job-run (buildpack) task: VCAP_SERVICES in the task's
    env and in its run action's (nested in a Serial), besides image credentials and a file."""
    env = [
        models.EnvironmentVariable(name="VCAP_SERVICES", value=SERVICES),
        models.EnvironmentVariable(name="EMPTY", value=""),
    ]
    action_env = [
        models.EnvironmentVariable(name="VCAP_SERVICES", value=SERVICES),
        models.EnvironmentVariable(name="DATABASE_URL", value="$(HOME) svc-s3cret-2"),
    ]
    inner = run(env=action_env)
    serial = models.Action(serial_action=models.SerialAction(actions=[run(), inner]))
    return secret_definition(action=serial, env=env)


async def test_a_job_run_tasks_env_values_are_in_a_secret_it_owns_and_bbs_reads_them() -> None:
    kube = FakeKube()
    hub = Recorder()
    svc = service(kube, hub)
    td = job_run_definition_with_services()
    await svc.desire(desire(task_guid="job-1", domain="jobs", task_definition=td))

    name = task_name("job-1")
    task = kube.tasks[name]
    hidden = (PASSWORD, CONTENT, "svc-s3cret", "svc-s3cret-2")
    seen = readable(task)  # metadata, spec, status: what a `view` user reads
    for secret_value in hidden:
        assert secret_value not in seen, secret_value
    # … nor in the Job the reconciler builds from it (and so in its pods: env literals and the
    # executor's spec in the pod annotation)
    job = build_job(
        name,
        "ns",
        task["metadata"]["uid"],
        parse_spec(task["spec"]),
        JobSettings(),
        annotations=task["metadata"].get("annotations"),
    )
    for secret_value in hidden:
        assert secret_value not in readable(job), secret_value

    # The Secret holding the values is the Task's, and the pod's variables resolve to them.
    secret = kube.secrets[definition_secret_name(name)]
    assert secret["metadata"]["ownerReferences"] == [task_owner(name, task["metadata"]["uid"])]
    assert secret["metadata"]["labels"] == {DEFINITION_SECRET_LABEL: "true"}

    def resolve(var: dict[str, Any]) -> str:
        if "valueFrom" not in var:
            return str(var["value"])
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        return base64.standard_b64decode(secret["data"][ref["key"]]).decode()

    (container,) = job["spec"]["template"]["spec"]["containers"]
    pod_env = {var["name"]: resolve(var) for var in container["env"]}
    assert pod_env["VCAP_SERVICES"] == SERVICES and pod_env["EMPTY"] == ""
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    tree = json.loads(annotations[EXECUTOR_SPEC_ANNOTATION])["action"]["serial"]["actions"]
    run_env = tree[1]["run"]["env"]
    assert [(var["name"], pod_env[var["fromEnv"]]) for var in run_env] == [
        (e.name, e.value) for e in td.action.serial_action.actions[1].run_action.env
    ]

    # BBS clients get the definition as desired, the values included (the image credentials and
    # the file's content, in their own Secrets, are never shown of a Job-run task, as before).
    shown = job_run_definition(td)
    assert shown.environment_variables == td.environment_variables
    assert shown.action == td.action
    assert PASSWORD not in str(shown) and CONTENT not in str(shown)
    entry = svc.view.get("job-1")
    assert entry is not None and entry.task.task_definition == shown
    assert [t.task_definition for t in svc.view.tasks()] == [shown]

    # A watch-fed view (another replica, a restart) gets it from the Secret's own watch; events
    # carry it too.
    fresh = TaskView(hub, watch_definitions=True)
    fresh.replace_all([task])
    assert fresh.get("job-1") is None
    fresh.definition_feed.replace_all([secret])
    entry = fresh.get("job-1")
    assert entry is not None and entry.task.task_definition == shown
    created = [e for e in hub.events if e.name == events.TASK_CREATED]
    assert [e.task.task_definition for e in created] == [shown]


async def test_a_job_run_task_without_env_values_needs_no_definition_secret() -> None:
    kube = FakeKube()
    svc = service(kube)
    td = task_definition(environment_variables=[models.EnvironmentVariable(name="EMPTY")])
    await svc.desire(desire(task_guid="job-1", domain="jobs", task_definition=td))
    task = kube.tasks[task_name("job-1")]
    assert kube.secrets == {}
    assert task["spec"]["env"] == [{"name": "EMPTY", "value": ""}]
    entry = svc.view.get("job-1")
    assert entry is not None and entry.task.task_definition == td


async def test_a_job_run_desire_whose_definition_secret_cannot_be_created_keeps_nothing() -> None:
    kube = FakeKube()
    svc = service(kube)
    kube.fail_write(4)  # create_task, the registry and files Secrets, then the definition Secret
    with pytest.raises(BBSError) as info:
        await svc.desire(
            desire(
                task_guid="job-1", domain="jobs", task_definition=job_run_definition_with_services()
            )
        )
    assert info.value.type is ErrorType.UnknownError
    assert kube.tasks == {} and kube.secrets == {}
    assert svc.view.get("job-1") is None


async def test_an_external_desire_whose_secret_cannot_be_created_keeps_nothing() -> None:
    kube = FakeKube()
    svc = service(kube)
    kube.fail_write(2)  # create_task, then create_secret
    with pytest.raises(BBSError) as info:
        await svc.desire(
            desire(task_guid="ext-1", domain=EXTERNAL, task_definition=secret_definition())
        )
    assert info.value.type is ErrorType.UnknownError
    assert kube.tasks == {} and kube.secrets == {}
    assert svc.view.get("ext-1") is None
    await svc.desire(desire(task_guid="ext-1", domain=EXTERNAL))  # a retry desires it whole
    assert svc.view.get("ext-1") is not None and len(kube.secrets) == 1
