"""The pure decision of a reconcile pass, one rule at a time (the simulation checks them all)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from taskop.domain.decide import (
    LEGACY_FINALIZER,
    WITNESS_FINALIZER,
    DecideSettings,
    Decision,
    Observation,
    decide,
)
from taskop.domain.states import ConditionReason

NOW = 1_800_000_000 * 10**9
SETTINGS = DecideSettings(pod_create_grace_period=30)
TASK_UID = "task-uid"
JOB_UID = "job-uid"


def task(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "t",
            "uid": TASK_UID,
            "resourceVersion": "10",
            "generation": 1,
        },
        "spec": {
            "image": "busybox",
            "action": {"run": {"path": "sh"}},
            "resultFile": "/tmp/result",
            **spec,
        },
        "status": status or {},
    }


PENDING = {"state": "Pending", "jobName": "t", "createdAt": "2027-01-15T08:00:00.000000000Z"}
RUNNING = {**PENDING, "state": "Running", "cellId": "node-1"}


def job(
    condition: str | None = None,
    *,
    owner: str = TASK_UID,
    finalizers: tuple[str, ...] = (),
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "t",
        "uid": JOB_UID,
        "ownerReferences": [{"kind": "Task", "name": "t", "uid": owner}] if owner else [],
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {"metadata": meta, "status": {"conditions": conditions}}


def pod(phase: str = "Running", terminated: dict[str, Any] | None = None) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {
        "metadata": {
            "name": "t-abc",
            "creationTimestamp": "2027-01-15T08:00:00Z",
            "ownerReferences": [{"kind": "Job", "name": "t", "uid": JOB_UID}],
        },
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": [{"name": "task", "state": state}]},
    }


def run(t: dict[str, Any], **observed: Any) -> Decision:
    return decide(Observation(task=t, now=NOW, **observed), SETTINGS)


def test_a_new_task_creates_its_job_with_the_witness_finalizer_and_writes_no_status_yet() -> None:
    """The Job being made is no news worth a write: the Running (or Completed) write names it,
    and until then its finalizer keeps it visible."""
    d = run(task())
    assert d.create_job is not None
    assert d.create_job["metadata"]["finalizers"] == [WITNESS_FINALIZER]
    assert d.status is None
    d = run(task(), job=job(finalizers=(WITNESS_FINALIZER,)))  # its pod not running yet
    assert d.create_job is None and d.status is None and d.release_job_uid is None


def test_the_running_write_names_the_job_and_keeps_its_finalizer_while_the_pod_runs() -> None:
    """A release while the pod runs would race the Job controller (deadline handling)."""
    d = run(task(), job=job(finalizers=(WITNESS_FINALIZER,)), pods=[pod()])
    assert d.status is not None and (d.status["state"], d.status["jobName"]) == ("Running", "t")
    assert d.release_job_uid is None
    d = run(task(RUNNING), job=job(finalizers=(WITNESS_FINALIZER,)), pods=[pod()])
    assert d.release_job_uid is None


def test_the_completed_write_names_a_finished_job_and_releases_it() -> None:
    done = pod("Succeeded", {"exitCode": 0, "message": "the result"})
    d = run(
        task(), job=job("Complete", finalizers=(WITNESS_FINALIZER,)), pods=[done], pods_read=True
    )
    assert d.status is not None and (d.status["state"], d.status["jobName"]) == ("Completed", "t")
    assert d.release_job_uid == JOB_UID  # after the write: a crash in between strands nothing


def test_a_cancelled_task_deletes_its_running_job_and_releases_it() -> None:
    d = run(task(RUNNING, cancelled=True), job=job(finalizers=(WITNESS_FINALIZER,)), pods=[pod()])
    assert d.status is not None and d.status["state"] == "Completed"
    assert d.delete_job_uid == JOB_UID and d.release_job_uid == JOB_UID


def test_a_deleted_job_is_witnessed_first_then_released() -> None:
    d = run(task(), job=job(deleting=True, finalizers=(WITNESS_FINALIZER,)))
    assert d.status is not None and d.status["jobName"] == "t"
    assert d.release_job_uid == JOB_UID


def test_a_job_deleted_while_it_ran_is_confirmed_then_fails_the_task_never_recreated() -> None:
    first = run(task(RUNNING))
    assert first.read_job and first.create_job is None and first.status is None
    d = run(task(RUNNING), job_absent_confirmed=True)
    assert d.create_job is None
    assert d.status is not None and d.status["failed"] is True
    assert d.status["failureReason"].startswith("Job t was deleted before the task finished")
    assert d.status["conditions"][-1]["reason"] == ConditionReason.JOB_DELETED


def test_a_job_being_deleted_fails_the_task_and_lets_the_job_go() -> None:
    d = run(task(RUNNING), job=job(deleting=True, finalizers=(WITNESS_FINALIZER,)))
    assert d.status is not None and d.status["failed"] is True
    assert d.release_job_uid == JOB_UID and d.create_job is None


def test_a_same_named_job_owned_by_nobody_fails_the_task_at_once_and_is_never_touched() -> None:
    d = run(task(), job=job(owner=""))
    assert d.create_job is None and d.delete_job_uid is None and d.release_job_uid is None
    assert d.status is not None and d.status["failed"] is True
    assert "exists and is not owned by this Task" in d.status["failureReason"]


def test_cancelling_a_task_never_deletes_a_job_it_does_not_own() -> None:
    d = run(task(PENDING, cancelled=True), job=job(owner="someone-else"))
    assert d.delete_job_uid is None
    assert d.status is not None and d.status["failureReason"] == "task was cancelled"


def test_cancelling_deletes_the_tasks_own_job_by_uid() -> None:
    d = run(task(RUNNING, cancelled=True), job=job(), pods=[pod()])
    assert d.delete_job_uid == JOB_UID
    assert d.events == [("Normal", "Cancelled", "task was cancelled")]  # one Event, not two


def test_the_job_of_an_earlier_task_of_the_same_name_is_waited_for() -> None:
    d = run(task(), job=job(owner="earlier-task-uid"))
    assert d.create_job is None and d.delete_job_uid is None
    assert d.status is not None and d.status["state"] == "Pending"
    assert "earlier Task named t" in d.status["conditions"][-1]["message"]
    assert d.recheck_in == SETTINGS.conflict_recheck


def test_a_complete_job_is_not_read_before_its_pods_terminated_state() -> None:
    d = run(task(RUNNING), job=job("Complete"), pods=[pod("Running")])
    assert d.read_pods and d.status is None
    done = pod("Succeeded", {"exitCode": 0, "message": "the result"})
    d = run(task(RUNNING), job=job("Complete"), pods=[done], pods_read=True)
    assert d.status is not None
    assert (d.status["state"], d.status["failed"], d.status["result"]) == (
        "Completed",
        False,
        "the result",
    )


def test_a_result_whose_pod_is_gone_is_a_stated_failure_never_an_empty_success() -> None:
    d = run(task(RUNNING), job=job("Complete"), pods=[], pods_read=True)
    assert d.status is not None and d.status["failed"] is True
    assert "result is lost" in d.status["failureReason"]


def test_without_a_result_file_a_complete_job_succeeds_even_if_its_pod_is_gone() -> None:
    d = run(task(RUNNING, resultFile=None), job=job("Complete"), pods=[], pods_read=True)
    assert d.status is not None and (d.status["failed"], d.status["result"]) == (False, "")


POD_SECURITY = 'pods "t-x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot'
QUOTA = 'pods "t-x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1'


def test_a_pod_security_refusal_fails_the_task_at_once_with_the_api_servers_message() -> None:
    d = run(task(PENDING), job=job(), create_failure=(NOW, POD_SECURITY))
    assert d.status is not None and d.status["failed"] is True
    assert d.status["failureReason"] == f"pod could not be created: {POD_SECURITY}"
    assert d.delete_job_uid == JOB_UID


def test_a_finished_task_is_not_written_again_and_keeps_its_reason() -> None:
    d = run(task(PENDING), job=job(), create_failure=(NOW, POD_SECURITY))
    assert d.status is not None
    finished = task({**PENDING, **d.status})
    again = run(finished, job=job(deleting=True), create_failure=(NOW, POD_SECURITY))
    assert again.status is None


def test_a_quota_refusal_fails_the_task_after_the_grace_period() -> None:
    d = run(task(PENDING), job=job(), create_failure=(NOW - 10 * 10**9, QUOTA))
    assert d.status is not None and d.status["state"] == "Pending"
    assert d.status["conditions"][-1]["message"] == f"pod not created yet: {QUOTA}"
    assert d.recheck_in == pytest.approx(20.01)
    d = run(task(PENDING), job=job(), create_failure=(NOW - 30 * 10**9, QUOTA))
    assert d.status is not None and d.status["failureReason"].endswith(QUOTA)


def test_nothing_is_written_when_nothing_a_user_sees_changed() -> None:
    first = run(task(PENDING), job=job(), pods=[pod()])
    assert first.status is not None
    settled = task({**PENDING, **first.status})
    assert run(settled, job=job(), pods=[pod()]).status is None


def test_a_task_being_deleted_loses_the_legacy_finalizer_and_its_own_job() -> None:
    t = task(RUNNING)
    t["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    t["metadata"]["finalizers"] = [LEGACY_FINALIZER]
    d = run(t, job=job())
    assert d.remove_finalizer and d.delete_job_uid == JOB_UID and d.status is None


def test_a_task_being_deleted_without_a_finalizer_needs_nothing() -> None:
    t = task(RUNNING)
    t["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    d = run(t, job=job())
    assert d == Decision()


# --- results reported by the in-pod executor -----------------------------------------------------


def executor_pod(report: dict[str, Any], phase: str = "Succeeded", code: int = 0) -> dict[str, Any]:
    message = json.dumps({"taskop": "executor/v1", **report}, separators=(",", ":"))
    return pod(phase, {"exitCode": code, "message": message})


BIG = "".join(f"{i}\n" for i in range(1, 20001))[:51_200]
BIG_REPORT = {
    "failed": False,
    "resultLog": {"bytes": 51_200, "sha256": hashlib.sha256(BIG.encode()).hexdigest()},
}


def sidecar_log(data: bytes) -> str:
    """What the result sidecar prints (executor/internal/result)."""
    encoded = base64.b64encode(data).decode()
    lines = [encoded[i : i + 4096] for i in range(0, len(encoded), 4096)]
    head = f"taskop-result v1 bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}"
    return "\n".join([head, *lines, "taskop-result end"]) + "\n"


def test_an_inline_executor_result_completes_the_task() -> None:
    done = executor_pod({"failed": False, "result": "hello\n"})
    d = run(task(RUNNING), job=job("Complete"), pods=[done])
    assert d.status is not None and (d.status["failed"], d.status["result"]) == (False, "hello\n")


def test_the_executors_failure_reason_is_the_tasks() -> None:
    failed = executor_pod({"failed": True, "failureReason": "exceeded 1s timeout"}, "Failed", 1)
    d = run(task(RUNNING), job=job("Failed"), pods=[failed])
    assert d.status is not None
    assert (d.status["failed"], d.status["failureReason"]) == (True, "exceeded 1s timeout")


def test_a_big_result_is_read_from_the_sidecar_log_then_completes_the_task() -> None:
    done = executor_pod(BIG_REPORT)
    d = run(task(RUNNING), job=job("Complete"), pods=[done])
    assert d.read_result_log == "t-abc" and d.status is None  # nothing written before the read
    d = run(task(RUNNING), job=job("Complete"), pods=[done], result_log=sidecar_log(BIG.encode()))
    assert d.status is not None and (d.status["failed"], d.status["result"]) == (False, BIG)


def test_a_big_result_whose_pod_is_gone_is_a_stated_failure() -> None:
    done = executor_pod(BIG_REPORT)
    d = run(task(RUNNING), job=job("Complete"), pods=[done], result_log_gone=True)
    assert d.status is not None and d.status["failed"] is True
    assert "result is lost" in d.status["failureReason"]


@pytest.mark.parametrize(
    ("log", "why"),
    [
        ("", "holds no result frame"),
        (sidecar_log(BIG.encode()[:-1] + b"x"), "no result frame"),  # another digest in the head
        (sidecar_log(b"other"), "no result frame"),
        (sidecar_log(BIG.encode()).replace("MQox", "MQoy", 1), "does not match"),  # body altered
    ],
)
def test_a_sidecar_log_that_does_not_match_the_executors_digest_is_never_taken(
    log: str, why: str
) -> None:
    done = executor_pod(BIG_REPORT)
    d = run(task(RUNNING), job=job("Complete"), pods=[done], result_log=log)
    assert d.status is not None and d.status["failed"] is True
    assert d.status["failureReason"].startswith("failed to fetch result: ")
    assert why in d.status["failureReason"]
    assert d.status.get("result", "") == ""


def test_under_the_warn_policy_the_job_is_made_and_what_it_does_not_enforce_is_recorded() -> None:
    from taskop.domain.jobs import JobSettings
    from taskop.domain.profiles import DomainProfile, DomainProfiles

    warn = DomainProfiles(domains={"cf-tasks": DomainProfile(unenforceable="warn")})
    settings = DecideSettings(pod_create_grace_period=30, jobs=JobSettings(profiles=warn))
    icmp = {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}}
    t = task(domain="cf-tasks", egressRules=[icmp])
    d = decide(Observation(task=t, now=NOW), settings)
    assert d.create_job is not None and d.create_network_policy is not None
    message = (
        "spec.egressRules[0]: icmp type 8 code 0 has no Kubernetes NetworkPolicy form"
        " (NetworkPolicy allows only TCP, UDP and SCTP)"
    )
    assert ("Warning", "Unenforceable", message) in d.events
    assert d.status is not None
    enforced = [c for c in d.status["conditions"] if c["type"] == "Enforced"]
    assert [(c["status"], c["reason"], c["message"]) for c in enforced] == [
        ("False", "Unenforceable", message)
    ]
    # Its write lost (a conflict): the next pass, the Job made, records it and says it again;
    # once recorded, never again.
    lost = decide(Observation(task=t, job=job(finalizers=(WITNESS_FINALIZER,)), now=NOW), settings)
    assert ("Warning", "Unenforceable", message) in lost.events
    assert lost.status is not None
    recorded = task({**PENDING, "conditions": lost.status["conditions"]}, **t["spec"])
    again = decide(Observation(task=recorded, job=job(), now=NOW), settings)
    assert not [e for e in again.events if e[1] == "Unenforceable"]
    # Under the default policy the same task fails, naming the rule.
    refused = run(t)
    assert refused.create_job is None and refused.status is not None
    assert refused.status["failureReason"].endswith(message)


COMPLETED = {
    **PENDING,
    "state": "Completed",
    "failed": False,
    "firstCompletedAt": "2027-01-15T08:00:00.000000000Z",
    "updatedAt": "2027-01-15T08:00:00.000000000Z",
}
COMPLETED_AT = 1_800_000_000  # 2027-01-15T08:00:00Z


def at(seconds_after_completion: float, t: dict[str, Any], **settings: Any) -> Decision:
    now = (COMPLETED_AT + seconds_after_completion) * 10**9
    return decide(
        Observation(task=t, now=int(now), job=job("Complete")),
        DecideSettings(pod_create_grace_period=30, **settings),
    )


def test_a_finished_task_goes_after_its_ttl_and_is_rechecked_then() -> None:
    t = task(COMPLETED, ttlSecondsAfterFinished=60)
    kept = at(59, t)
    assert not kept.delete_task and kept.recheck_in == pytest.approx(1, abs=0.01)
    assert at(61, t).delete_task


def test_the_operators_default_ttl_applies_to_tasks_without_their_own() -> None:
    assert at(3601, task(COMPLETED), ttl_seconds_after_finished=3600).delete_task
    assert not at(10**6, task(COMPLETED)).delete_task  # no TTL anywhere: kept
    own = task(COMPLETED, ttlSecondsAfterFinished=7200)
    assert not at(3601, own, ttl_seconds_after_finished=3600).delete_task


def test_bbs_tasks_keep_bbs_expiry_not_the_ttl() -> None:
    t = task(COMPLETED, ttlSecondsAfterFinished=10**6)
    t["metadata"]["labels"] = {"taskop.dev/api": "bbs"}
    assert at(121, t).delete_task  # expire_completed_task_duration, 120 s


def test_a_job_refused_for_good_fails_the_task_without_creating_anything() -> None:
    refused = (ConditionReason.INVALID_SPEC, "Kubernetes refused its Job: bad selector")
    d = decide(Observation(task=task(), now=NOW, create_refused=refused), SETTINGS)
    assert d.create_job is None and d.create_network_policy is None
    assert d.status is not None and d.status["failed"] is True
    assert d.status["failureReason"] == "invalid spec: Kubernetes refused its Job: bad selector"


def test_a_taskstore_task_is_never_touched_not_even_expired() -> None:
    """Its resourceVersion is its taskstore id: a write by the reconciler would change the id a
    worker holds. So no status, no Job, no convergence (expiry), however old."""
    from taskop.domain.jobs import JobSettings
    from taskop.domain.profiles import parse_profiles

    settings = DecideSettings(
        pod_create_grace_period=30,
        jobs=JobSettings(profiles=parse_profiles({"domains": {"work": {"run": "taskstore"}}})),
    )
    leased = task(domain="work", external=True)
    for later in (0, 10**9 * 3600 * 24 * 365):
        decided = decide(Observation(task=leased, now=NOW + later), settings)
        assert decided == Decision()
    # Cancelled through BBS, it is a completed BBS task: deleted once it expires.
    cancelled = task(
        {"state": "Completed", "failed": True, "failureReason": "task was cancelled",
         "firstCompletedAt": "2026-01-01T00:00:00Z", "createdAt": "2026-01-01T00:00:00Z",
         "updatedAt": "2026-01-01T00:00:00Z"},
        domain="work",
        external=True,
    )  # fmt: skip
    cancelled["metadata"]["labels"] = {"taskop.dev/api": "taskstore"}
    assert decide(Observation(task=cancelled, now=NOW), settings).delete_task


def test_a_task_never_written_expires_by_its_creation_time_without_a_job() -> None:
    """Every create refused by something that passes (RBAC) leaves no status: the pending expiry
    still counts from the Task's creation, and an expired Task gets no Job."""
    never_written = task()
    never_written["metadata"]["creationTimestamp"] = "2027-01-15T08:00:00Z"
    created = 1_800_000_000 * 10**9  # 2027-01-15T08:00:00Z

    late = created + 31 * 60 * 10**9
    first = decide(Observation(task=never_written, now=late), SETTINGS)
    # No Job in the cache is no proof: a pass may have made one and lost its witness write.
    assert first.read_job and first.create_job is None and first.status is None

    d = decide(Observation(task=never_written, now=late, job_absent_confirmed=True), SETTINGS)

    assert d.create_job is None
    assert d.status is not None and d.status["failureReason"] == "not started within time limit"
    assert d.status["createdAt"].startswith("2027-01-15T08:00:00")


def test_pending_expiry_finds_a_job_whose_witness_was_lost_and_does_not_expire() -> None:
    """The Job a pass made (its witness write lost) whose pod runs: read, then followed."""
    never_written = task()
    never_written["metadata"]["creationTimestamp"] = "2027-01-15T08:00:00Z"
    late = 1_800_000_000 * 10**9 + 31 * 60 * 10**9
    running = pod(phase="Running")
    d = decide(
        Observation(task=never_written, job=job(), pods=[running], pods_read=True, now=late),
        SETTINGS,
    )
    assert d.status is not None and d.status["state"] == "Running", d.status


def test_pending_expiry_with_a_job_confirms_with_the_api_server_first() -> None:
    late = NOW + 31 * 60 * 10**9
    asked = decide(Observation(task=task(PENDING), job=job(), now=late), SETTINGS)
    assert asked.read_job and asked.read_pods and asked.status is None

    ran = job()
    ran["status"]["failed"] = 1  # the Job controller counted a pod that ended: it ran
    kept = decide(Observation(task=task(PENDING), job=ran, pods_read=True, now=late), SETTINGS)
    assert kept.status is None or kept.status.get("state") != "Completed"

    expired = decide(Observation(task=task(PENDING), job=job(), pods_read=True, now=late), SETTINGS)
    assert expired.status is not None and expired.status["state"] == "Completed"
    assert expired.delete_job_uid == JOB_UID
