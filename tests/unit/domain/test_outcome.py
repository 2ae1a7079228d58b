"""Every mapping from Job and Pod status to a task outcome."""

from __future__ import annotations

from typing import Any

import pytest

from taskop.domain.outcome import (
    RESULT_TOO_LARGE,
    Outcome,
    OutcomeSettings,
    read_outcome,
)
from taskop.domain.states import ConditionReason as CR
from taskop.domain.states import TaskState
from taskop.domain.timefmt import parse_ns

P, R, C = TaskState.PENDING, TaskState.RUNNING, TaskState.COMPLETED
CREATED = "2026-01-01T00:00:00Z"
NOW = parse_ns(CREATED) + 60 * 10**9  # a minute after the pod was created
SETTINGS = OutcomeSettings(image_pull_grace_period=30)


def job(condition: str | None = None, reason: str = "", message: str = "", **spec: Any) -> Any:
    conditions = (
        [{"type": "SuccessCriteriaMet", "status": "True"}] if condition == "Complete" else []
    )
    if condition:
        conditions.append(
            {"type": condition, "status": "True", "reason": reason, "message": message}
        )
    return {"metadata": {"name": "j"}, "spec": spec, "status": {"conditions": conditions}}


def pod(
    phase: str = "Running",
    *,
    name: str = "j-abcde",
    node: str | None = "node-1",
    created: str = CREATED,
    state: dict[str, Any] | None = None,
    last_state: dict[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if state is not None or last_state is not None:
        status["containerStatuses"] = [
            {"name": "sidecar", "state": {"terminated": {"exitCode": 9}}},
            {"name": "task", "state": state or {}, "lastState": last_state or {}},
        ]
    spec = {"nodeName": node} if node else {}
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": spec,
        "status": status,
    }


def terminated(code: int = 0, reason: str = "Completed", message: str | None = None) -> Any:
    body: dict[str, Any] = {"exitCode": code, "reason": reason}
    if message is not None:
        body["message"] = message
    return {"terminated": body}


def waiting(reason: str, message: str = "") -> Any:
    return {"waiting": {"reason": reason, "message": message}}


def outcome(job_: Any, pods: list[Any], now: int = NOW) -> Outcome:
    return read_outcome(job_, pods, now, SETTINGS)


def summary(o: Outcome) -> tuple[TaskState, CR, bool, str, str]:
    return o.state, o.reason, o.failed, o.failure_reason, o.result


@pytest.mark.parametrize(
    ("job_", "pods", "expected"),
    [
        # not finished
        (None, [], (P, CR.PENDING, False, "", "")),
        (job(), [], (P, CR.JOB_CREATED, False, "", "")),
        (job(), [pod("Pending", node=None)], (P, CR.JOB_CREATED, False, "", "")),
        (
            job(),
            [pod("Pending", state=waiting("ContainerCreating"))],
            (P, CR.JOB_CREATED, False, "", ""),
        ),
        (job(), [pod("Running", state={"running": {}})], (R, CR.POD_RUNNING, False, "", "")),
        # the pod finished but the Job controller has not said so yet
        (job(), [pod("Succeeded", state=terminated())], (R, CR.POD_RUNNING, False, "", "")),
        (job(), [pod("Failed", state=terminated(1, "Error"))], (R, CR.POD_RUNNING, False, "", "")),
        # success: the result is the task container's termination message
        (
            job("Complete"),
            [pod("Succeeded", state=terminated(message="42"))],
            (C, CR.SUCCEEDED, False, "", "42"),
        ),
        (job("Complete"), [pod("Succeeded", state=terminated())], (C, CR.SUCCEEDED, False, "", "")),
        (job("Complete"), [], (C, CR.SUCCEEDED, False, "", "")),
        (
            job("Complete"),
            [pod("Succeeded", state=terminated(message="x" * 4095))],
            (C, CR.SUCCEEDED, False, "", "x" * 4095),
        ),
        (
            job("Complete"),
            [pod("Succeeded", state=terminated(message="x" * 4096))],
            (C, CR.RESULT_TOO_LARGE, True, RESULT_TOO_LARGE, ""),
        ),
        (
            job("Complete"),
            [pod("Succeeded", state=terminated(message="é" * 2048))],
            (C, CR.RESULT_TOO_LARGE, True, RESULT_TOO_LARGE, ""),
        ),
        # failures
        (
            job("Failed", "BackoffLimitExceeded"),
            [pod("Failed", state=terminated(3, "Error"))],
            (C, CR.EXIT_CODE, True, "exit status 3", ""),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [pod("Failed", state=terminated(137, "OOMKilled"))],
            (C, CR.OOM_KILLED, True, "OOMKilled (exit status 137)", ""),
        ),
        (
            job(
                "Failed",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                activeDeadlineSeconds=30,
            ),
            [pod("Failed", state=terminated(143, "Error"))],
            (
                C,
                CR.DEADLINE_EXCEEDED,
                True,
                "DeadlineExceeded: the task ran longer than its timeout of 30 seconds"
                " (spec.timeoutSeconds)",
                "",
            ),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [pod("Failed", reason="Evicted", message="The node was low on resource: memory.")],
            (C, CR.EVICTED, True, "evicted: The node was low on resource: memory.", ""),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [pod("Failed", reason="NodeLost", message="node n1 is unreachable")],
            (C, CR.NODE_LOST, True, "node lost: node n1 is unreachable", ""),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [
                pod(
                    "Failed",
                    state=terminated(137, "Error"),
                    conditions=[
                        {
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "DeletionByTaintManager",
                            "message": "Taint manager: deleting due to NoExecute taint",
                        }
                    ],
                )
            ],
            (
                C,
                CR.NODE_LOST,
                True,
                "node lost: Taint manager: deleting due to NoExecute taint",
                "",
            ),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [
                pod(
                    "Failed",
                    conditions=[
                        {
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "PreemptionByScheduler",
                        }
                    ],
                )
            ],
            (C, CR.PREEMPTED, True, "preempted: PreemptionByScheduler", ""),
        ),
        (
            job("Failed", "BackoffLimitExceeded"),
            [
                pod(
                    "Failed",
                    conditions=[
                        {
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "EvictionByEvictionAPI",
                            "message": "Eviction API: evicting",
                        }
                    ],
                )
            ],
            (C, CR.EVICTED, True, "evicted: Eviction API: evicting", ""),
        ),
        (
            job("Failed", "PodFailurePolicy", "Container task exited with 42"),
            [],
            (C, CR.FAILED, True, "job failed: PodFailurePolicy: Container task exited with 42", ""),
        ),
        (job("Failed"), [], (C, CR.FAILED, True, "job failed: Failed", "")),
        # a previous attempt's exit status, from lastState
        (
            job("Failed", "BackoffLimitExceeded"),
            [pod("Failed", state={}, last_state=terminated(2, "Error"))],
            (C, CR.EXIT_CODE, True, "exit status 2", ""),
        ),
    ],
)
def test_read_outcome(job_: Any, pods: list[Any], expected: Any) -> None:
    assert summary(outcome(job_, pods)) == expected


def test_result_is_only_read_on_success() -> None:
    o = outcome(
        job("Failed", "BackoffLimitExceeded"), [pod("Failed", state=terminated(1, "Error", "half"))]
    )
    assert o.result == ""


def test_job_finished_and_where() -> None:
    o = outcome(job("Complete"), [pod("Succeeded", name="p1", node="n1", state=terminated())])
    assert (o.job_finished, o.cell_id, o.pod_name) == (True, "n1", "p1")
    o = outcome(job(), [pod("Running", name="p2", node="n2")])
    assert (o.job_finished, o.cell_id, o.pod_name) == (False, "n2", "p2")


def test_latest_pod_wins() -> None:
    old = pod("Failed", name="j-1", created="2026-01-01T00:00:00Z", state=terminated(1, "Error"))
    new = pod("Failed", name="j-2", created="2026-01-01T00:00:05Z", state=terminated(7, "Error"))
    for pods in ([old, new], [new, old]):
        o = outcome(job("Failed", "BackoffLimitExceeded"), pods)
        assert (o.failure_reason, o.pod_name) == ("exit status 7", "j-2")


def test_succeeded_pod_preferred_for_the_result() -> None:
    failed = pod("Failed", name="j-2", created="2026-01-01T00:00:05Z", state=terminated(1, "Error"))
    ok = pod("Succeeded", name="j-1", state=terminated(message="r"))
    o = outcome(job("Complete"), [ok, failed])
    assert (o.result, o.pod_name) == ("r", "j-1")


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]
)
def test_image_pull_failure_after_grace(reason: str) -> None:
    p = pod("Pending", state=waiting(reason, "pull access denied for nope"))
    early = outcome(job(), [p], now=parse_ns(CREATED) + 29 * 10**9)
    assert summary(early) == (P, CR.JOB_CREATED, False, "", "")
    assert early.message == "image pull failed: pull access denied for nope"
    late = outcome(job(), [p], now=parse_ns(CREATED) + 30 * 10**9)
    assert summary(late) == (
        C,
        CR.IMAGE_PULL_FAILED,
        True,
        "image pull failed: pull access denied for nope",
        "",
    )
    assert late.job_finished is False  # taskop decided: the reconciler must stop the Job


def test_image_pull_message_falls_back_to_reason() -> None:
    late = outcome(job(), [pod("Pending", state=waiting("ErrImagePull"))])
    assert late.failure_reason == "image pull failed: ErrImagePull"


def test_unschedulable_message() -> None:
    p = pod(
        "Pending",
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ],
    )
    o = outcome(job(), [p])
    assert (o.state, o.message) == (P, "0/3 nodes are available")


def test_failure_takes_the_job_condition_over_a_running_looking_pod() -> None:
    o = outcome(job("Failed", "DeadlineExceeded"), [pod("Running", state={"running": {}})])
    assert (
        o.failure_reason
        == "DeadlineExceeded: the task ran longer than its timeout (spec.timeoutSeconds)"
    )
