"""Small builders of BBS messages for the tests."""

from __future__ import annotations

from typing import Any

from taskop.bbs import models


def run(**fields: Any) -> models.Action:
    return models.Action(
        run_action=models.RunAction(**{"path": "/bin/true", "user": "root", **fields})
    )


def task_definition(**fields: Any) -> models.TaskDefinition:
    fields.setdefault("root_fs", "docker:///busybox")
    fields.setdefault("action", run())
    return models.TaskDefinition(**fields)


def desire(**fields: Any) -> models.DesireTaskRequest:
    fields.setdefault("task_guid", "task-1")
    fields.setdefault("domain", "cf-apps")
    if "task_definition" not in fields:
        fields["task_definition"] = task_definition()
    elif fields["task_definition"] is None:
        del fields["task_definition"]
    return models.DesireTaskRequest(**fields)


def download(**fields: Any) -> models.DownloadAction:
    defaults = {"from": "http://x/y.tgz", "to": "/tmp", "user": "vcap"}
    return models.DownloadAction(**{**defaults, **fields})
