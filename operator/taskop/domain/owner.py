"""The owner reference every object taskop makes for a Task carries (its Job, NetworkPolicy and
Secrets): the garbage collector deletes them with the Task."""

from __future__ import annotations

from typing import Any

API_VERSION = "taskop.dev/v1alpha1"
KIND = "Task"


def task_owner(task_name: str, task_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": task_name,
        "uid": task_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
