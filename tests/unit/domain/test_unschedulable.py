"""A task no node can take fails as Diego's auctioneer fails it, after the domain's grace.

Diego answers at once (``found no compatible cell``, ``insufficient resources: memory``) and
Cloud Controller shows it to the user of ``cf run-task``; Kubernetes keeps the pod pending. The
domain profile's ``unschedulableGracePeriod`` says how long taskop waits (a cluster autoscaler may
add a node) before it fails the task in Diego's words, followed by the scheduler's.
"""

from __future__ import annotations

from typing import Any

import pytest

from taskop.domain.decide import DecideSettings, Decision, Observation, decide
from taskop.domain.jobs import JobSettings
from taskop.domain.outcome import placement_failure
from taskop.domain.profiles import BBS_UNSCHEDULABLE_GRACE_PERIOD, ProfileError, parse_profiles
from taskop.domain.states import ConditionReason
from taskop.reconciler.cache import slim_pod

S = 10**9
SAID_NO = 1_800_000_000 * S  # 2027-01-15T08:00:00Z: when the scheduler first said no
SAID_NO_AT = "2027-01-15T08:00:00Z"
TASK_UID = "task-uid"
JOB_UID = "job-uid"

NO_MATCH = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
NO_MEMORY_VERDICT = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {taskop.dev/real-node: true},"
    " 2 Insufficient memory."
)
NO_MEMORY = (  # what the scheduler writes: the verdict, then its post-filter plugins' notes
    f"{NO_MEMORY_VERDICT} no new claims to deallocate, preemption: 0/3 nodes are available:"
    " 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
)

PROFILES = parse_profiles(
    {
        "domains": {
            "quick": {"unschedulableGracePeriod": 3},
            "patient": {"unschedulableGracePeriod": None},
            "described": {"unenforceable": "warn"},
        }
    }
)
SETTINGS = DecideSettings(jobs=JobSettings(profiles=PROFILES))


def task(domain: str = "quick", *, bbs: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {
        "state": "Pending",
        "jobName": "t",
        "createdAt": "2027-01-15T07:59:58.000000000Z",
    }
    if bbs:
        status["api"] = "bbs"  # written by the BBS API when it desired the Task
    return {
        "metadata": {"namespace": "ns", "name": "t", "uid": TASK_UID, "generation": 1},
        "spec": {"image": "busybox", "action": {"run": {"path": "sh"}}, "domain": domain},
        "status": status,
    }


def job() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "t",
            "uid": JOB_UID,
            "ownerReferences": [{"kind": "Task", "name": "t", "uid": TASK_UID}],
        },
        "status": {"conditions": []},
    }


def pending_pod(message: str = NO_MATCH, **status: Any) -> dict[str, Any]:
    """A pod as the API server shows it, through the reconciler's cache projection."""
    return slim_pod(
        {
            "metadata": {
                "name": "t-abc",
                "creationTimestamp": "2027-01-15T07:59:59Z",
                "ownerReferences": [{"kind": "Job", "name": "t", "uid": JOB_UID}],
            },
            "spec": {"containers": [{"name": "task"}]},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": SAID_NO_AT,
                    }
                ],
                **status,
            },
        }
    )


def at(seconds: float, t: dict[str, Any], pod: dict[str, Any] | None = None) -> Decision:
    """A pass ``seconds`` after the scheduler first said no, with nothing held in memory."""
    observed = Observation(
        task=t, job=job(), pods=[pod or pending_pod()], now=SAID_NO + round(seconds * S)
    )
    return decide(observed, SETTINGS)


def failure(d: Decision) -> tuple[bool, str, str]:
    assert d.status is not None
    completed = [c for c in d.status["conditions"] if c["type"] == "Completed"]
    return d.status["failed"], d.status["failureReason"], completed[-1]["reason"]


# --- Diego's words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(NO_MATCH, f"found no compatible cell: {NO_MATCH}", id="selector"),
        pytest.param(
            "0/2 nodes are available: 2 node(s) had untolerated taint {pool: cf}.",
            "found no compatible cell: 0/2 nodes are available: 2 node(s) had untolerated taint"
            " {pool: cf}.",
            id="taint",
        ),
        pytest.param(
            NO_MEMORY, f"insufficient resources: memory: {NO_MEMORY_VERDICT}", id="memory"
        ),
        pytest.param(
            # The Insufficient counted is the verdict's, never a later note's.
            "0/1 nodes are available: 1 node(s) had untolerated taint(s). preemption: 0/1 nodes"
            " are available: 1 Insufficient memory.",
            "found no compatible cell: 0/1 nodes are available: 1 node(s) had untolerated"
            " taint(s).",
            id="verdict-only",
        ),
        pytest.param(
            "0/2 nodes are available: 2 Insufficient cpu.",
            "insufficient resources: cpu: 0/2 nodes are available: 2 Insufficient cpu.",
            id="cpu",
        ),
        pytest.param(
            "0/2 nodes are available: 2 Insufficient ephemeral-storage.",
            "insufficient resources: disk: 0/2 nodes are available: 2 Insufficient"
            " ephemeral-storage.",
            id="disk",
        ),
        pytest.param(
            "0/3 nodes are available: 1 Insufficient memory, 1 Too many pods,"
            " 2 Insufficient ephemeral-storage.",
            "insufficient resources: containers, disk, memory: 0/3 nodes are available:"
            " 1 Insufficient memory, 1 Too many pods, 2 Insufficient ephemeral-storage.",
            id="sorted-like-diego",
        ),
        pytest.param(
            # A node short of memory passed the taint and selector checks: it matches the
            # placement, so Diego would say the resources, not the cell.
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node"
            " affinity/selector.",
            "insufficient resources: memory: 0/3 nodes are available: 1 Insufficient memory,"
            " 2 node(s) didn't match Pod's node affinity/selector.",
            id="some-match",
        ),
        pytest.param("", "found no compatible cell", id="no-message"),
    ],
)
def test_diegos_words_come_first_then_the_schedulers(message: str, reason: str) -> None:
    assert placement_failure(message) == reason


# --- the decision -------------------------------------------------------------------------------


def test_no_node_matching_the_placement_fails_as_no_compatible_cell_and_stops_the_job() -> None:
    d = at(3, task())

    assert failure(d) == (
        True,
        f"found no compatible cell: {NO_MATCH}",
        ConditionReason.UNSCHEDULABLE,
    )
    assert d.status is not None and d.status["state"] == "Completed"
    assert d.delete_job_uid == JOB_UID  # as other failures while the Job runs
    assert d.events == [("Warning", "Unschedulable", f"found no compatible cell: {NO_MATCH}")]


def test_nodes_short_of_memory_fail_it_as_insufficient_resources_memory() -> None:
    d = at(10, task(), pending_pod(NO_MEMORY))

    assert failure(d) == (
        True,
        f"insufficient resources: memory: {NO_MEMORY_VERDICT}",
        ConditionReason.UNSCHEDULABLE,
    )
    assert d.delete_job_uid == JOB_UID


def test_within_the_grace_it_stays_pending_with_the_schedulers_words_and_looks_again_then() -> None:
    d = at(1, task())

    assert d.status is not None and d.status["state"] == "Pending"
    assert d.status["failed"] is False
    running = [c for c in d.status["conditions"] if c["type"] == "Running"]
    assert running[-1]["message"] == NO_MATCH
    assert d.delete_job_uid is None and d.events == []
    assert d.recheck_in == pytest.approx(2, abs=0.02)  # at the deadline, not a resync later


def test_a_restart_keeps_the_deadline_it_comes_from_the_pod_not_from_memory() -> None:
    """Each pass starts from nothing (as after a restart): the deadline is the PodScheduled
    condition's lastTransitionTime + the grace, whenever taskop first looked, and whatever the
    scheduler's later attempts changed in the message."""
    first = at(0.5, task())
    after_restart = at(2.0, task(), pending_pod("0/4 nodes are available: 4 node(s) had taints."))
    assert first.recheck_in is not None and after_restart.recheck_in is not None
    assert 0.5 + first.recheck_in == pytest.approx(2.0 + after_restart.recheck_in)
    assert 0.5 + first.recheck_in == pytest.approx(3, abs=0.02)
    assert failure(at(3, task()))[0] is True


def test_a_domain_whose_profile_says_null_never_fails_early_not_even_bbs_tasks() -> None:
    for later in (3, 3600, 10**5):
        d = at(later, task("patient", bbs=True))
        assert d.status is None or d.status["state"] == "Pending", later
        assert d.delete_job_uid is None


def test_kubectl_tasks_wait_by_default_as_kubernetes_pods_do() -> None:
    for domain in ("taskop", "described"):  # the default profile, and one without the field
        for later in (BBS_UNSCHEDULABLE_GRACE_PERIOD, 1799):
            d = at(later, task(domain))
            assert d.status is None or d.status["state"] == "Pending", (domain, later)
            assert d.delete_job_uid is None
            assert d.recheck_in is None or d.recheck_in > 1  # no timer for this


def test_bbs_desired_tasks_fail_by_default_after_a_minute() -> None:
    assert BBS_UNSCHEDULABLE_GRACE_PERIOD == 60
    for domain in ("taskop", "described"):
        waiting = at(59, task(domain, bbs=True))
        assert waiting.status is None or waiting.status["state"] == "Pending"
        assert waiting.recheck_in == pytest.approx(1, abs=0.02)
        assert failure(at(60, task(domain, bbs=True)))[1].startswith("found no compatible cell: ")


def test_a_pod_preemption_makes_room_for_is_not_failed() -> None:
    nominated = pending_pod(NO_MEMORY, nominatedNodeName="kwok-node-0")
    d = at(600, task(), nominated)
    assert d.status is None or d.status["state"] == "Pending"
    assert d.delete_job_uid is None


def test_a_scheduling_gated_pod_is_not_unschedulable() -> None:
    gated = pending_pod()
    gated["status"]["conditions"][0]["reason"] = "SchedulingGated"
    d = at(600, task(), gated)
    assert d.status is None or d.status["state"] == "Pending"
    assert d.delete_job_uid is None


# --- the profile field --------------------------------------------------------------------------


def test_the_profile_field_absent_means_bbs_tasks_only_null_never_a_number_every_task() -> None:
    profiles = parse_profiles(
        {
            "domains": {
                "a": {},
                "b": {"unschedulableGracePeriod": None},
                "c": {"unschedulableGracePeriod": 0},
            }
        }
    )
    grace = {
        (domain, bbs): profiles.profile(domain).unschedulable_grace(desired_by_bbs=bbs)
        for domain in ("a", "b", "c", "undescribed")
        for bbs in (False, True)
    }
    assert grace == {
        ("a", False): None,
        ("a", True): BBS_UNSCHEDULABLE_GRACE_PERIOD,
        ("b", False): None,
        ("b", True): None,
        ("c", False): 0,
        ("c", True): 0,
        ("undescribed", False): None,
        ("undescribed", True): BBS_UNSCHEDULABLE_GRACE_PERIOD,
    }


def test_a_negative_grace_is_refused_naming_the_field() -> None:
    with pytest.raises(ProfileError, match=r"domains\.x\.unschedulableGracePeriod"):
        parse_profiles({"domains": {"x": {"unschedulableGracePeriod": -1}}})
