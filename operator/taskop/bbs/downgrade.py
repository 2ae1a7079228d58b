"""The V3 → V2 task downgrade of the deprecated ``.r2`` routes and the ``/v1/events/tasks`` stream.

BBS's ``Task.VersionDownTo(V2)`` (``models/task.go``, ``models/image_layer.go``): image layers
become cached dependencies (SHARED) and download actions (EXCLUSIVE), then are cleared.
"""

from __future__ import annotations

from taskop.bbs import models

_DIGEST_INVALID = models.ImageLayer.DigestAlgorithmInvalid


def downgrade_v2(task: models.Task) -> models.Task:
    """A copy of ``task`` as the ``.r2`` routes return it; ``task`` itself is not changed."""
    downgraded = models.Task()
    downgraded.CopyFrom(task)
    downgraded.task_definition.CopyFrom(downgrade_task_definition_v2(task.task_definition))
    return downgraded


def downgrade_task_definition_v2(td: models.TaskDefinition) -> models.TaskDefinition:
    """A copy of ``td`` with its image layers turned into cached dependencies and downloads."""
    out = models.TaskDefinition()
    out.CopyFrom(td)
    out.SetInParent()
    if not td.image_layers:
        return out
    shared = [layer for layer in td.image_layers if layer.layer_type == models.ImageLayer.SHARED]
    exclusive = [
        layer for layer in td.image_layers if layer.layer_type == models.ImageLayer.EXCLUSIVE
    ]
    del out.cached_dependencies[:]
    out.cached_dependencies.extend([_cached_dependency(layer) for layer in shared])
    out.cached_dependencies.extend(td.cached_dependencies)
    if exclusive:
        parallel = models.ParallelAction(
            actions=[
                models.Action(download_action=_download(layer, td.legacy_download_user))
                for layer in exclusive
            ]
        )
        action = models.Action()
        if td.HasField("action"):
            action.serial_action.actions.add(parallel_action=parallel)
            action.serial_action.actions.append(td.action)
        else:
            action.parallel_action.CopyFrom(parallel)
        out.action.CopyFrom(action)
    del out.image_layers[:]
    return out


def _algorithm_name(value: int) -> str:
    """Go's ``strings.ToLower(alg.String())``: the enum name, or the number when unknown."""
    try:
        return str(models.ImageLayer.DigestAlgorithm.Name(value)).lower()
    except ValueError:
        return str(value)


def _cached_dependency(layer: models.ImageLayer) -> models.CachedDependency:
    algorithm = (
        "" if layer.digest_algorithm == _DIGEST_INVALID else _algorithm_name(layer.digest_algorithm)
    )
    return models.CachedDependency(
        name=layer.name,
        to=layer.destination_path,
        cache_key=f"{algorithm}:{layer.digest_value}" if layer.digest_value else layer.url,
        checksum_algorithm=algorithm,
        checksum_value=layer.digest_value,
        **{"from": layer.url},
    )


def _download(layer: models.ImageLayer, user: str) -> models.DownloadAction:
    algorithm = _algorithm_name(layer.digest_algorithm)
    return models.DownloadAction(
        artifact=layer.name,
        to=layer.destination_path,
        cache_key=f"{algorithm}:{layer.digest_value}",
        user=user,
        checksum_algorithm=algorithm,
        checksum_value=layer.digest_value,
        **{"from": layer.url},
    )
