"""Task event payloads: names, base64 protobuf, and the r0 stream's downgrade."""

from __future__ import annotations

import base64

from taskop.bbs import events, models


def layered_task(guid: str) -> models.Task:
    task = models.Task(task_guid=guid, state=models.Task.Pending)
    task.task_definition.image_layers.append(
        models.ImageLayer(
            url="http://l", destination_path="/l", layer_type=models.ImageLayer.SHARED
        )
    )
    return task


def test_task_created() -> None:
    name, data = events.task_created(layered_task("a"))
    assert name == "task_created"
    decoded = models.TaskCreatedEvent.FromString(base64.b64decode(data, validate=True))
    assert decoded.task == layered_task("a")


def test_task_changed_and_removed() -> None:
    before, after = layered_task("a"), layered_task("a")
    after.state = models.Task.Running
    name, data = events.task_changed(before, after)
    assert name == "task_changed"
    decoded = models.TaskChangedEvent.FromString(base64.b64decode(data))
    assert (decoded.before, decoded.after) == (before, after)
    name, data = events.task_removed(after)
    assert name == "task_removed"
    assert models.TaskRemovedEvent.FromString(base64.b64decode(data)).task == after


def test_r0_stream_payloads_are_downgraded() -> None:
    _, data = events.task_changed(layered_task("a"), layered_task("a"), v2=True)
    decoded = models.TaskChangedEvent.FromString(base64.b64decode(data))
    for task in (decoded.before, decoded.after):
        assert len(task.task_definition.image_layers) == 0
        assert task.task_definition.cached_dependencies[0].cache_key == "http://l"
    _, data = events.task_created(layered_task("a"), v2=True)
    assert (
        len(
            models.TaskCreatedEvent.FromString(
                base64.b64decode(data)
            ).task.task_definition.image_layers
        )
        == 0
    )


def test_payloads_are_never_empty() -> None:
    for _, data in (
        events.task_created(models.Task()),
        events.task_removed(models.Task()),
        events.task_changed(models.Task(), models.Task()),
    ):
        assert data  # a present task with a present task_definition is at least "CgIKAA==" etc.


def test_format_sse() -> None:
    assert (
        events.format_sse(0, "task_created", "CgA=")
        == b"id: 0\nevent: task_created\ndata: CgA=\n\n"
    )
