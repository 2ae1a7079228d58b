"""Queued Tasks (Kueue): the release gate, one rule at a time (the simulation checks them all).

A queued Task's Job is created suspended with every pod gated; taskop records one pod in
``status.releasedPod``, then removes its gate; it never releases another unless that one never
ran or failed on its own (a retry); one that may have run and was stopped fails the Task."""

from __future__ import annotations

import dataclasses
from typing import Any

from taskop.domain.decide import DecideSettings, Decision, Observation, decide
from taskop.domain.jobs import JobSettings
from taskop.domain.profiles import parse_profiles
from taskop.domain.queueing import PRIORITY_LABEL, QUEUE_LABEL, RELEASE_GATE
from taskop.domain.states import ConditionReason
from tests.unit.domain.test_decide import JOB_UID, NOW, PENDING, TASK_UID, task

KUEUE = DecideSettings(jobs=JobSettings(kueue=True))
QUEUED = {"queueName": "team-a"}
WAITING = (
    "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor"
    " default, 1 more needed"
)
RELEASED = {**PENDING, "releasedPod": {"name": "t-1", "uid": "pod-1"}}


def job(*, suspended: bool) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "t",
            "uid": JOB_UID,
            "ownerReferences": [{"kind": "Task", "name": "t", "uid": TASK_UID}],
            "finalizers": ["taskop.dev/witness"],
            "labels": {QUEUE_LABEL: "team-a"},
        },
        "spec": {"suspend": True} if suspended else {},
        "status": {},
    }


def pod(
    uid: str,
    *,
    gated: bool = False,
    node: str = "",
    phase: str = "Pending",
    deleting: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if gated:
        spec["schedulingGates"] = [{"name": RELEASE_GATE}]
    if node:
        spec["nodeName"] = node
    meta: dict[str, Any] = {
        "name": f"t-{uid.removeprefix('pod-')}",
        "uid": uid,
        "creationTimestamp": f"2027-01-15T08:00:0{uid[-1]}Z",
        "ownerReferences": [{"kind": "Job", "name": "t", "uid": JOB_UID}],
    }
    if deleting:
        meta["deletionTimestamp"] = "2027-01-15T08:01:00Z"
    state = {"running": {}} if phase == "Running" else {"waiting": {}}
    return {
        "metadata": meta,
        "spec": spec,
        "status": {"phase": phase, "containerStatuses": [{"name": "task", "state": state}]},
    }


def workload(*conditions: dict[str, str], active: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "job-t-abcde",
            "uid": "wl-1",
            "ownerReferences": [{"kind": "Job", "name": "t", "uid": JOB_UID}],
        },
        "spec": {"active": active},
        "status": {"conditions": list(conditions)},
    }


def run(t: dict[str, Any], settings: DecideSettings = KUEUE, **observed: Any) -> Decision:
    return decide(Observation(task=t, now=NOW, **observed), settings)


def reason(d: Decision) -> str:
    assert d.status is not None
    return str(next(c for c in d.status["conditions"] if c["type"] == "Running")["reason"])


def message(d: Decision) -> str:
    assert d.status is not None
    return str(next(c for c in d.status["conditions"] if c["type"] == "Running")["message"])


def test_a_queued_tasks_job_is_labelled_created_suspended_and_its_pods_gated() -> None:
    d = run(task(**QUEUED, priorityClassName="high"))
    assert d.create_job is not None
    assert d.create_job["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert d.create_job["metadata"]["labels"][PRIORITY_LABEL] == "high"
    assert d.create_job["spec"]["suspend"] is True
    assert d.create_job["spec"]["template"]["spec"]["schedulingGates"] == [{"name": RELEASE_GATE}]
    assert d.status is None  # the Job being made is no news


def test_a_task_without_a_queue_runs_as_before() -> None:
    d = run(task())
    assert d.create_job is not None
    assert "suspend" not in d.create_job["spec"]
    assert QUEUE_LABEL not in d.create_job["metadata"]["labels"]
    assert "schedulingGates" not in d.create_job["spec"]["template"]["spec"]


def test_the_domain_profiles_queue_applies_to_its_tasks_without_one() -> None:
    profiles = parse_profiles({"domains": {"cf": {"queueName": "cf-queue"}}})
    settings = DecideSettings(jobs=JobSettings(kueue=True, profiles=profiles))
    d = run(task(domain="cf"), settings)
    assert d.create_job is not None
    assert d.create_job["metadata"]["labels"][QUEUE_LABEL] == "cf-queue"


def test_a_queue_without_kueue_support_fails_the_task_naming_the_setting() -> None:
    d = run(task(**QUEUED), DecideSettings())
    assert d.create_job is None
    assert d.status is not None and d.status["failed"] is True
    assert "TASKOP_KUEUE_ENABLED" in d.status["failureReason"]
    assert "spec.queueName" in d.status["failureReason"]


def test_a_priority_class_without_a_queue_is_an_invalid_spec() -> None:
    d = run(task(priorityClassName="high"))
    assert d.status is not None and d.status["failed"] is True
    assert "spec.priorityClassName" in d.status["failureReason"]


def test_while_kueue_has_not_admitted_it_the_task_says_why_in_kueues_words() -> None:
    waiting = workload(
        {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": WAITING}
    )
    d = run(task(**QUEUED), job=job(suspended=True), pods=[], workload=waiting)
    assert d.status is not None and d.status["state"] == "Pending"
    assert reason(d) == ConditionReason.QUEUED and message(d) == WAITING
    assert d.release_pod is None


def test_without_a_word_from_kueue_a_queued_job_costs_no_write() -> None:
    d = run(task(**QUEUED), job=job(suspended=True), pods=[])
    assert d.status is None and d.release_pod is None


def test_admitted_one_pod_is_recorded_then_released() -> None:
    d = run(task(**QUEUED), job=job(suspended=False), pods=[pod("pod-1", gated=True)])
    assert d.status is not None
    assert d.status["releasedPod"] == {"name": "t-1", "uid": "pod-1"}
    assert d.status["jobName"] == "t"  # the witness rides along
    assert d.release_pod == ("t-1", "pod-1")  # after the status write


def test_a_release_recorded_but_not_made_is_made_again_never_another_pod() -> None:
    d = run(
        task(RELEASED, **QUEUED),
        job=job(suspended=False),
        pods=[pod("pod-1", gated=True), pod("pod-2", gated=True)],
    )
    assert d.release_pod == ("t-1", "pod-1")
    assert d.status is None or "releasedPod" not in d.status


def test_a_released_pod_running_is_followed_as_any_job() -> None:
    d = run(
        task(RELEASED, **QUEUED),
        job=job(suspended=False),
        pods=[pod("pod-1", node="node-1", phase="Running")],
    )
    assert d.status is not None and d.status["state"] == "Running"
    assert d.release_pod is None and d.delete_job_uid is None


def test_preempted_after_its_pod_started_the_task_fails_in_kueues_words_and_never_runs_again() -> (
    None
):
    preempted = workload(
        {
            "type": "Preempted",
            "status": "True",
            "reason": "InClusterQueue",
            "message": "Preempted to accommodate a workload (UID: u2, JobUID: j2) due to"
            " prioritization in the ClusterQueue",
        },
        {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "Preempted"},
    )
    d = run(
        task({**RELEASED, "state": "Running", "cellId": "node-1"}, **QUEUED),
        job=job(suspended=True),
        pods=[pod("pod-1", node="node-1", phase="Running")],
        workload=preempted,
    )
    assert d.status is not None and d.status["state"] == "Completed" and d.status["failed"]
    assert reason(d) == ConditionReason.PREEMPTED
    assert d.status["failureReason"].startswith("Preempted to accommodate a workload")
    assert "at most once" in d.status["failureReason"]
    assert d.delete_job_uid == JOB_UID
    assert d.deactivate_workload == "job-t-abcde"
    assert d.release_pod is None


def test_a_released_pod_deleted_while_its_job_runs_on_is_followed_then_counts_as_run() -> None:
    """Deleted by its deadline, a user or a lost node (not Kueue: the Job is not suspended), the
    Job controller counts it; once gone, the Task fails rather than release its replacement."""
    t = task({**RELEASED, "state": "Running", "cellId": "node-1"}, **QUEUED)
    deleting = run(t, job=job(suspended=False), pods=[pod("pod-1", node="node-1", deleting=True)])
    assert not (deleting.status or {}).get("failed") and deleting.delete_job_uid is None
    gone = run(
        t,
        job=job(suspended=False),
        pods=[pod("pod-2", gated=True)],
        pod_obituaries={"pod-1": "bound"},
    )
    assert gone.status is not None and gone.status["failed"] and gone.release_pod is None
    assert reason(gone) == ConditionReason.EVICTED
    assert "released pod t-1 was deleted after a node took it" in gone.status["failureReason"]
    assert gone.delete_job_uid == JOB_UID


def test_evicted_before_a_node_took_the_released_pod_the_next_pod_is_released_later() -> None:
    gone_unbound = {"pod-1": "unbound"}
    requeued = run(
        task(RELEASED, **QUEUED),
        job=job(suspended=True),
        pods=[pod("pod-2", gated=True)],
        pod_obituaries=gone_unbound,
    )
    assert requeued.release_pod is None and not (requeued.status or {}).get("failed")
    readmitted = run(
        task(RELEASED, **QUEUED),
        job=job(suspended=False),
        pods=[pod("pod-2", gated=True)],
        pod_obituaries=gone_unbound,
    )
    assert readmitted.release_pod == ("t-2", "pod-2")
    assert readmitted.status is not None
    assert readmitted.status["releasedPod"] == {"name": "t-2", "uid": "pod-2"}


def test_a_released_pod_gone_unseen_is_confirmed_then_counts_as_run() -> None:
    t = task({**RELEASED, "state": "Running", "cellId": "node-1"}, **QUEUED)
    asked = run(t, job=job(suspended=False), pods=[pod("pod-2", gated=True)])
    assert asked.read_pods and asked.status is None and asked.release_pod is None
    d = run(t, job=job(suspended=False), pods=[pod("pod-2", gated=True)], pods_read=True)
    assert d.status is not None and d.status["failed"] and d.release_pod is None
    assert d.status["failureReason"].startswith("taskop did not see released pod t-1 go")
    assert d.delete_job_uid == JOB_UID


def test_a_released_pod_that_failed_on_its_own_is_retried_within_spec_retries_only() -> None:
    pods = [pod("pod-1", node="node-1", phase="Failed"), pod("pod-2", gated=True)]
    retried = run(task(RELEASED, **QUEUED, retries=1), job=job(suspended=False), pods=pods)
    assert retried.release_pod == ("t-2", "pod-2")
    assert retried.status is not None and retried.status["releasedPodFailures"] == 1

    spent = {**RELEASED, "releasedPod": {"name": "t-2", "uid": "pod-2"}, "releasedPodFailures": 1}
    pods = [*pods, pod("pod-3", gated=True)]
    pods[1] = pod("pod-2", node="node-1", phase="Failed")
    d = run(task(spent, **QUEUED, retries=1), job=job(suspended=False), pods=pods)
    assert d.release_pod is None

    no_retries = run(task(RELEASED, **QUEUED), job=job(suspended=False), pods=pods[:2])
    assert no_retries.release_pod is None


def test_a_job_create_refused_by_an_unreachable_webhook_keeps_the_task_pending_saying_so() -> None:
    refused = 'Internal error occurred: failed calling webhook "mjob.kb.io": connection refused'
    d = run(task(**QUEUED), create_unavailable=(NOW - 10 * 10**9, refused))
    assert d.create_job is None
    assert d.status is not None and d.status["state"] == "Pending"
    assert "jobName" not in d.status  # nothing was made: no witness
    assert reason(d) == ConditionReason.ADMISSION_UNAVAILABLE
    assert refused in message(d)
    assert d.recheck_in is not None and 1 <= d.recheck_in <= 30
    # the next pass tries again
    again = run(task({"state": "Pending", "createdAt": PENDING["createdAt"]}, **QUEUED))
    assert again.create_job is not None


LATE = NOW + 31 * 60 * 10**9


def test_a_queued_task_with_no_pod_released_expires_without_reading_pods() -> None:
    d = decide(
        Observation(
            task=task(PENDING, **QUEUED),
            job=job(suspended=True),
            pods=[pod("pod-1", gated=True)],
            now=LATE,
        ),
        KUEUE,
    )
    assert not d.reads
    assert d.status is not None and d.status["failureReason"] == "not started within time limit"
    assert d.delete_job_uid == JOB_UID and d.release_pod is None


def test_an_admitted_queued_task_past_its_expiry_is_expired_not_released() -> None:
    d = decide(
        Observation(
            task=task(PENDING, **QUEUED),
            job=job(suspended=False),
            pods=[pod("pod-1", gated=True)],
            now=LATE,
        ),
        KUEUE,
    )
    assert d.release_pod is None
    assert d.status is not None and "releasedPod" not in d.status
    assert d.status["state"] == "Completed"


def test_a_queued_task_whose_pod_was_released_is_not_expired() -> None:
    d = decide(
        Observation(
            task=task(RELEASED, **QUEUED),
            job=job(suspended=False),
            pods=[pod("pod-1", node="node-1")],
            now=LATE,
        ),
        KUEUE,
    )
    assert d.status is None or d.status["state"] != "Completed"


def test_a_domain_may_let_its_queued_tasks_wait_past_the_pending_expiry() -> None:
    profiles = parse_profiles(
        {"domains": {"cf": {"queueName": "q", "expirePendingWhileQueued": False}}}
    )
    settings = dataclasses.replace(KUEUE, jobs=JobSettings(kueue=True, profiles=profiles))
    d = decide(
        Observation(
            task=task(PENDING, domain="cf"),
            job=job(suspended=True),
            pods=[pod("pod-1", gated=True)],
            now=LATE,
        ),
        settings,
    )
    assert d.status is None or d.status["state"] == "Pending"


def test_a_released_pod_gone_before_its_job_says_anything_is_waited_for_not_judged() -> None:
    """Gone with no replacement and the Job not suspended: it may have succeeded (its Job then
    completes); only a replacement, or Kueue's stop, means it was stopped."""
    t = task({**RELEASED, "state": "Running", "cellId": "node-1"}, **QUEUED)
    d = run(t, job=job(suspended=False), pods=[], pods_read=True)
    assert not (d.status or {}).get("failed") and d.delete_job_uid is None
    done = run(t, job=job(suspended=False), pods=[], pod_obituaries={"pod-1": "Succeeded"})
    assert not (done.status or {}).get("failed") and not done.reads


def test_an_admitted_tasks_retry_pod_that_cannot_be_created_fails_it_after_the_grace() -> None:
    """Nothing to release (its retry's pod refused by a quota): the Job's own story, as for any
    Task — never a queued Task waiting for ever."""
    t = task({**RELEASED, "state": "Running", "cellId": "node-1"}, **QUEUED, retries=1)
    refused = (NOW - 60 * 10**9, 'pods "t-2" is forbidden: exceeded quota: q')
    d = run(
        t,
        job=job(suspended=False),
        pods=[pod("pod-1", node="node-1", phase="Failed")],
        create_failure=refused,
    )
    assert d.status is not None and d.status["failed"]
    assert reason(d) == ConditionReason.POD_CREATE_FAILED
