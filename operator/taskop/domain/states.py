"""Task states (BBS ``Task.State``) and the condition types and reasons taskop writes."""

from __future__ import annotations

import enum

_BBS_VALUES = {"Pending": 1, "Running": 2, "Completed": 3, "Resolving": 4}


class TaskState(enum.StrEnum):
    """The lifecycle state of a task, named as in BBS (``Invalid`` = 0 is never stored)."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    RESOLVING = "Resolving"

    @property
    def bbs_value(self) -> int:
        """The ``models.Task_State`` number on the BBS wire."""
        return _BBS_VALUES[self.value]

    @classmethod
    def from_bbs(cls, value: int) -> TaskState:
        """The state for a BBS wire number; ``ValueError`` for Invalid (0) or unknown numbers."""
        for state in cls:
            if state.bbs_value == value:
                return state
        raise ValueError(f"invalid BBS task state {value}")


class ConditionType(enum.StrEnum):
    """Types of ``status.conditions`` (``kubectl wait --for=condition=Completed task/x``)."""

    RUNNING = "Running"  # True while the task runs on a cell (node)
    COMPLETED = "Completed"  # True once the task finished, successfully or not
    SUCCEEDED = "Succeeded"  # True when completed without failure, False when failed
    FAILED = "Failed"  # True when completed with failure
    ENFORCED = "Enforced"  # False when the domain's warn policy ran a task not enforced exactly


class ConditionReason(enum.StrEnum):
    """Documented ``reason`` values of taskop's conditions and events."""

    # not finished
    PENDING = "Pending"  # accepted, not running yet
    JOB_CREATED = "JobCreated"  # the Job exists, its pod has not started
    EXTERNAL = "External"  # waiting for an external BBS cell to start the task
    REJECTED = "Rejected"  # a cell rejected the task; it is pending again
    QUEUED = "Queued"  # the Job waits in its Kueue queue (the message is Kueue's)
    ADMISSION_UNAVAILABLE = "AdmissionUnavailable"  # a webhook (e.g. Kueue's) could not be reached
    POD_RUNNING = "PodRunning"  # the Job's pod runs on a node
    STARTED = "Started"  # an external cell started the task
    # finished
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # failed for a reason not listed below
    EXIT_CODE = "ExitCode"  # the command exited non-zero ("exit status N")
    OOM_KILLED = "OOMKilled"
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # ran longer than spec.timeoutSeconds
    IMAGE_PULL_FAILED = "ImagePullFailed"
    EVICTED = "Evicted"
    NODE_LOST = "NodeLost"
    PREEMPTED = "Preempted"
    RESULT_TOO_LARGE = "ResultTooLarge"
    CANCELLED = "Cancelled"
    NOT_STARTED = "NotStarted"  # Pending longer than expire_pending_task_duration
    CELL_DISAPPEARED = "CellDisappeared"
    INVALID_SPEC = "InvalidSpec"  # the spec cannot be run on Kubernetes
    JOB_DELETED = "JobDeleted"  # the Task's Job vanished before it finished (never re-created)
    JOB_CONFLICT = "JobConflict"  # a Job of that name exists that this Task does not own
    POD_CREATE_FAILED = "PodCreateFailed"  # admission, quota or limit range refused the pod
    UNSCHEDULABLE = "Unschedulable"  # no node could take the pod (the domain profile's grace)
    CREATE_REFUSED = "CreateRefused"  # admission (quota, webhook, policy) refused the Job
    RESULT_LOST = "ResultLost"  # the pod was gone before its result file was read
    ACTION_FAILED = "ActionFailed"  # the in-pod executor reports why the action tree failed
    UNENFORCEABLE = "Unenforceable"  # (Enforced=False) what the message lists is not enforced
    # completion callback
    CALLBACK_PENDING = "CallbackPending"
    CALLBACK_DELIVERED = "CallbackDelivered"
    CALLBACK_FAILED = "CallbackFailed"
