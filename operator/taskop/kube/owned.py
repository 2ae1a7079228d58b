"""Secrets made with a Task (a BBS task's image credentials and mounted files, a Glance task's
input): owned by the Task, so the garbage collector deletes them with it."""

from __future__ import annotations

import contextlib

from taskop.domain.owner import task_owner
from taskop.kube.client import Conflict, Kube, NotFound, Obj


class SecretNotCreated(Exception):
    """The Secret could not be created, and the Task was deleted again."""


async def create_owned_secret(kube: Kube, namespace: str, task: Obj, secret: Obj) -> Obj:
    """Create ``secret`` owned by ``task`` and return it as created. When that fails the Task is
    deleted again (it cannot run without it): a refused request leaves nothing behind. Raises
    `SecretNotCreated`."""
    meta = task["metadata"]
    secret["metadata"]["ownerReferences"] = [task_owner(meta["name"], meta["uid"])]
    try:
        return await kube.create_secret(namespace, secret)
    except Exception as e:
        kept = "the task was not kept"
        try:
            with contextlib.suppress(NotFound, Conflict):
                await kube.delete_task(namespace, meta["name"], uid=meta["uid"])
        except Exception as delete_error:  # the Task stays, without its Secret
            kept = f"deleting the task failed too ({delete_error})"
        raise SecretNotCreated(
            f"the task's Secret {secret['metadata']['name']} could not be created ({e}); {kept}"
        ) from None
