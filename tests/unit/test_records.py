"""Slim typed records (`taskop.kube.records`): what taskop reads of a Task, Job or pod, decoded
straight from the JSON; managedFields and specs it never reads are not kept."""

from __future__ import annotations

import json
from typing import Any

from taskop.kube.records import decode_event, decode_page

MANAGED = [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:image": {}}}}]


def line(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}).encode()


def test_a_pod_event_keeps_what_a_pass_reads_and_nothing_else() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "5",
            "managedFields": MANAGED,
            "annotations": {"taskop.dev/task-name": "t"},
            "ownerReferences": [{"kind": "Job", "name": "j", "uid": "x", "controller": True}],
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "task", "image": "busybox"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "task", "state": {}}]},
    }
    event = decode_event("pods", line("MODIFIED", pod))
    assert event["type"] == "MODIFIED"
    assert "managedFields" not in event["object"]["metadata"]
    assert event["object"]["spec"] == {"nodeName": "n1"}
    assert event["object"]["status"] == pod["status"]
    assert event["object"]["metadata"]["ownerReferences"] == pod["metadata"]["ownerReferences"]


def test_a_task_keeps_its_spec_and_status_whole() -> None:
    task = {
        "metadata": {"name": "t", "generation": 2, "labels": {"a": "b"}, "managedFields": MANAGED},
        "spec": {"image": "busybox", "action": {"run": {"path": "true"}}},
        "status": {"state": "Pending"},
    }
    page = decode_page(
        "tasks", json.dumps({"metadata": {"resourceVersion": "9"}, "items": [task]}).encode()
    )
    assert page["metadata"] == {"resourceVersion": "9"}
    del task["metadata"]["managedFields"]  # type: ignore[attr-defined]
    assert page["items"] == [task]


def test_errors_bookmarks_other_kinds_and_odd_json_are_decoded_whole() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired"}
    assert decode_event("tasks", line("ERROR", status))["object"] == status
    bookmark = {"kind": "Task", "metadata": {"resourceVersion": "7", "annotations": {"k": "v"}}}
    assert decode_event("tasks", line("BOOKMARK", bookmark))["object"] == bookmark
    secret = {"metadata": {"name": "s", "managedFields": MANAGED}, "data": {"k": "dg=="}}
    assert decode_event("secrets", line("ADDED", secret))["object"] == secret
    odd = {"metadata": {"name": "j", "generation": "not a number"}}
    assert decode_event("jobs", line("ADDED", odd))["object"] == odd
