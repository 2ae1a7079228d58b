"""The .r2 downgrade (spec §1): image layers → cached dependencies and download actions."""

from __future__ import annotations

from taskop.bbs import models
from taskop.bbs.downgrade import downgrade_task_definition_v2, downgrade_v2
from tests.unit.bbs.builders import run

IL = models.ImageLayer


def shared(name: str, **fields: object) -> models.ImageLayer:
    return IL(
        name=name,
        url=f"http://blobs/{name}",
        destination_path=f"/{name}",
        layer_type=IL.SHARED,
        media_type=IL.TGZ,
        **fields,  # type: ignore[arg-type]
    )


def exclusive(name: str, algorithm: int = IL.SHA256) -> models.ImageLayer:
    return IL(
        name=name,
        url=f"http://blobs/{name}",
        destination_path=f"/{name}",
        layer_type=IL.EXCLUSIVE,
        media_type=IL.ZIP,
        digest_algorithm=algorithm,  # type: ignore[arg-type]
        digest_value=f"{name}-digest",
    )


def dl(name: str, algorithm: str = "sha256") -> models.Action:
    return models.Action(
        download_action=models.DownloadAction(
            artifact=name,
            to=f"/{name}",
            cache_key=f"{algorithm}:{name}-digest",
            user="vcap",
            checksum_algorithm=algorithm,
            checksum_value=f"{name}-digest",
            **{"from": f"http://blobs/{name}"},
        )
    )


def cached(name: str, *, algorithm: str = "", digest: str = "") -> models.CachedDependency:
    return models.CachedDependency(
        name=name,
        to=f"/{name}",
        cache_key=f"{algorithm}:{digest}" if digest else f"http://blobs/{name}",
        checksum_algorithm=algorithm,
        checksum_value=digest,
        **{"from": f"http://blobs/{name}"},
    )


def test_shared_layers_become_cached_dependencies_before_the_existing_ones() -> None:
    existing = models.CachedDependency(to="/old", cache_key="old", **{"from": "http://old"})
    td = models.TaskDefinition(
        root_fs="docker:///x",
        action=run(),
        cached_dependencies=[existing],
        image_layers=[
            shared("a", digest_algorithm=IL.SHA256, digest_value="da"),
            shared("b"),
            shared("c", digest_algorithm=IL.SHA512, digest_value="dc"),
        ],
    )
    out = downgrade_task_definition_v2(td)
    assert list(out.cached_dependencies) == [
        cached("a", algorithm="sha256", digest="da"),
        cached("b"),
        cached("c", algorithm="sha512", digest="dc"),
        existing,
    ]
    assert out.action == run()  # no exclusive layer: the action is unchanged
    assert len(out.image_layers) == 0


def test_exclusive_layers_become_parallel_downloads_before_the_action() -> None:
    td = models.TaskDefinition(
        action=run(),
        legacy_download_user="vcap",
        image_layers=[exclusive("x"), shared("s"), exclusive("y", IL.SHA512)],
    )
    out = downgrade_task_definition_v2(td)
    parallel = models.Action(
        parallel_action=models.ParallelAction(actions=[dl("x"), dl("y", "sha512")])
    )
    assert out.action == models.Action(serial_action=models.SerialAction(actions=[parallel, run()]))
    assert list(out.cached_dependencies) == [cached("s")]
    assert len(out.image_layers) == 0


def test_exclusive_layers_without_an_action_are_the_parallel_alone() -> None:
    td = models.TaskDefinition(legacy_download_user="vcap", image_layers=[exclusive("x")])
    out = downgrade_task_definition_v2(td)
    assert out.action == models.Action(parallel_action=models.ParallelAction(actions=[dl("x")]))


def test_a_task_without_layers_is_unchanged_and_the_original_is_not_modified() -> None:
    task = models.Task(
        task_guid="g",
        state=models.Task.Running,
        task_definition=models.TaskDefinition(root_fs="docker:///x", action=run()),
    )
    assert downgrade_v2(task) == task
    layered = models.Task(task_guid="g")
    layered.task_definition.image_layers.append(shared("s"))
    before = layered.SerializeToString()
    down = downgrade_v2(layered)
    assert layered.SerializeToString() == before
    assert len(down.task_definition.image_layers) == 0
    assert down.task_guid == "g"


def test_the_downgrade_keeps_task_definition_present() -> None:
    assert downgrade_v2(models.Task()).HasField("task_definition")
