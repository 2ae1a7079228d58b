"""``GET /v2/schemas/task`` and ``/v2/schemas/tasks``: Glance's JSON Schemas of a task and of a
list, with ``type`` enumerating the TaskTypes defined now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskop.glance.model import STATUSES

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)


def _properties(types: Sequence[str]) -> dict[str, Any]:
    return {
        "id": {
            "description": "An identifier for the task",
            "pattern": UUID_PATTERN,
            "type": "string",
        },
        "type": {
            "description": "The type of task represented by this content (a TaskType's name)",
            "enum": list(types),
            "type": "string",
        },
        "status": {
            "description": "The current status of this task",
            "enum": list(STATUSES),
            "type": "string",
        },
        "input": {
            "description": "The parameters required by task, JSON blob",
            "type": ["null", "object"],
        },
        "result": {
            "description": "The result of current task, JSON blob",
            "type": ["null", "object"],
        },
        "owner": {"description": "The Kubernetes identity that created the task", "type": "string"},
        "message": {
            "description": "Human-readable informative message only included when appropriate"
            " (usually on failure)",
            "type": "string",
        },
        "expires_at": {
            "description": "Datetime when this resource would be subject to removal",
            "type": ["null", "string"],
        },
        "created_at": {"description": "Datetime when this resource was created", "type": "string"},
        "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
        "self": {"type": "string"},
        "schema": {"type": "string"},
    }


def task_schema(types: Sequence[str]) -> dict[str, Any]:
    return {
        "name": "task",
        "properties": _properties(types),
        "required": ["type", "input"],
        "additionalProperties": False,
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def tasks_schema(types: Sequence[str]) -> dict[str, Any]:
    item = {k: v for k, v in _properties(types).items() if k not in ("input", "result", "message")}
    return {
        "name": "tasks",
        "properties": {
            "tasks": {
                "type": "array",
                "items": {"name": "task", "properties": item, "additionalProperties": False},
            },
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
