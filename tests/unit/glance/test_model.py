"""A Task as a Glance task: status, message, result, timestamps and expiry."""

from __future__ import annotations

from typing import Any

import pytest

from taskop.glance.model import from_task, result_object

NS = 1_000_000_000


def task(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "2f1c0b7e-0000-4000-8000-000000000001",
            "creationTimestamp": "2026-12-02T05:00:00Z",
            "resourceVersion": "7",
            "labels": {"taskop.dev/glance-type": "checksum"},
            "uid": "0d1e2f30-0000-4000-8000-00000000000a",
            "annotations": {"taskop.dev/glance-owner": "system:serviceaccount:apps:ci"},
        },
        "spec": {
            "guid": "2f1c0b7e-0000-4000-8000-000000000001",
            "ttlSecondsAfterFinished": 60,
            **spec,
        },
        "status": status or {},
    }


@pytest.mark.parametrize(
    ("status", "glance"),
    [
        ({}, "pending"),
        ({"state": "Pending"}, "pending"),
        ({"state": "Running"}, "processing"),
        ({"state": "Completed", "failed": False}, "success"),
        ({"state": "Resolving", "failed": False}, "success"),
        ({"state": "Completed", "failed": True, "failureReason": "exit status 3"}, "failure"),
    ],
)
def test_states_map_onto_glance_statuses(status: dict[str, Any], glance: str) -> None:
    got = from_task(task(status))
    assert got is not None and got.status == glance


def test_a_task_without_a_type_label_is_not_a_glance_task() -> None:
    obj = task()
    obj["metadata"]["labels"] = {}
    assert from_task(obj) is None


def test_a_failure_carries_its_reason_and_no_result() -> None:
    failed = from_task(
        task({"state": "Completed", "failed": True, "failureReason": "boom", "result": "x"})
    )
    assert failed is not None
    assert failed.full(None)["message"] == "boom" and failed.full(None)["result"] is None


def test_a_success_carries_its_result_object_and_no_message() -> None:
    done = from_task(task({"state": "Completed", "result": '{"sha": "ab"}', "failureReason": ""}))
    assert done is not None
    assert done.full(None)["result"] == {"sha": "ab"} and done.full(None)["message"] == ""


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", {"output": "[1, 2]"}),
        ('"s"', {"output": '"s"'}),
        ("42\n", {"output": "42\n"}),
        ("not json", {"output": "not json"}),
        ("", {"output": ""}),
    ],
)
def test_results_that_are_not_objects_are_wrapped(text: str, result: dict[str, Any]) -> None:
    assert result_object(text) == result


def test_expires_at_is_completion_plus_the_task_ttl_and_only_once_final() -> None:
    running = from_task(task({"state": "Running"}))
    assert (
        running is not None and running.expires_at is None and "expires_at" not in running.sparse()
    )
    done = from_task(
        task({"state": "Completed", "firstCompletedAt": "2026-12-02T05:01:00.500000000Z"})
    )
    assert done is not None
    assert done.expires_at == "2026-12-02T05:02:00Z"
    assert not done.expired(done.expires_ns - 1)  # type: ignore[operator]
    assert done.expired(done.expires_ns)  # type: ignore[arg-type]


def test_the_full_task_has_glance_fields_in_whole_seconds() -> None:
    got = from_task(
        task(
            {
                "state": "Running",
                "createdAt": "2026-12-02T05:00:01.900000000Z",
                "updatedAt": "2026-12-02T05:00:03.100000000Z",
            }
        )
    )
    assert got is not None
    assert got.uid == "0d1e2f30-0000-4000-8000-00000000000a"
    assert got.full({"url": "http://x"}) == {
        "id": "2f1c0b7e-0000-4000-8000-000000000001",
        "type": "checksum",
        "status": "processing",
        "owner": "system:serviceaccount:apps:ci",
        "created_at": "2026-12-02T05:00:00Z",  # the Task's creationTimestamp, not status'
        "updated_at": "2026-12-02T05:00:03Z",
        "self": "/v2/tasks/2f1c0b7e-0000-4000-8000-000000000001",
        "schema": "/v2/schemas/task",
        "input": {"url": "http://x"},
        "result": None,
        "message": "",
    }
