"""Which replica reconciles: kopf's peering rule, applied to taskop's own reconciler.

With ``--peering``, kopf pauses its own resource watches (taskop registers none) while a live
peer of a higher priority exists, but it tells no handler: the pause is a private toggle
(``kopf._core.engines.peering.process_peering_event``'s ``conflicts_found``). taskop's reconciler
runs on its own informers and work queue, so without this a replica that kopf paused kept
reconciling the Tasks it had already seen. This module follows the same peering object and
applies kopf's rule to the reconciler: **act only while no live peer other than this replica has
a priority at least ours** (a higher one wins; an equal one is a conflict, and kopf pauses both).
Peers are live until ``lastseen + lifetime``, as kopf's ``Peer.is_dead`` says.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from taskop.kube.client import Kube, Obj
from taskop.kube.informer import Stream, inform

log = logging.getLogger("taskop.peering")

RECHECK_SECONDS = 5.0
"""How often the rule is re-applied without news (a silent peer expires by the clock)."""


def paused(status: Mapping[str, Any], identity: str, priority: int, now: datetime.datetime) -> bool:
    """Whether a replica of ``identity`` and ``priority`` must pause, given the peering status."""
    for peer, info in status.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        lastseen = info.get("lastseen")
        seen = datetime.datetime.fromisoformat(str(lastseen)) if lastseen else now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if seen + datetime.timedelta(seconds=int(info.get("lifetime", 60))) <= now:
            continue  # dead
        if int(info.get("priority", 0)) >= priority:
            return True
    return False


async def follow(
    kube: Kube,
    *,
    name: str,
    namespace: str | None,
    identity: str,
    priority: int,
    set_active: Callable[[bool], None],
) -> None:
    """Watch the peering object ``name`` (KopfPeering in ``namespace``, or ClusterKopfPeering)
    and call ``set_active`` with kopf's verdict whenever it may have changed. Runs until
    cancelled; the caller starts paused."""
    kind = "kopfpeerings" if namespace else "clusterkopfpeerings"
    status: Mapping[str, Any] = {}

    def judge() -> None:
        set_active(not paused(status, identity, priority, datetime.datetime.now(datetime.UTC)))

    async def recheck() -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            judge()

    async def replace(pages: AsyncIterator[Obj]) -> tuple[str, set[tuple[str, str]]]:
        nonlocal status
        rv, status = "", {}
        async for page in pages:
            rv = rv or str((page.get("metadata") or {}).get("resourceVersion") or "")
            for item in page.get("items") or ():
                status = item.get("status") or {}
        judge()
        return rv, set()

    def on_event(type_: str, obj: Obj) -> None:
        nonlocal status
        status = {} if type_ == "DELETED" else (obj.get("status") or {})
        judge()

    rechecking = asyncio.create_task(recheck(), name="taskop-peering-recheck")
    selector = f"metadata.name={name}"
    try:  # the informers' LIST+WATCH loop (re-list after 410 Gone or any failure)
        await inform(kube, namespace, Stream(kind, None, selector, replace, on_event))
    finally:
        rechecking.cancel()
