"""Completion callbacks exactly as BBS delivers them (bbs-tasks.md §5).

Completed → Resolving (with a resourceVersion precondition: if someone else resolved it, stop),
POST the JSON TaskCallbackResponse up to ``callback_attempts`` times (retrying only on 503/504,
timeouts and dropped connections), then delete the Task. When every attempt fails the Task stays
Resolving; convergence kicks it back to Completed after ``kick_task_duration`` and it is retried.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp

from taskop.domain import lifecycle
from taskop.domain.callback import CallbackVerdict, callback_body, classify_callback
from taskop.domain.errors import BBSError
from taskop.domain.spec import parse_spec
from taskop.domain.states import TaskState
from taskop.domain.status import record_from_status, record_to_status
from taskop.kube.client import Conflict, Kube, NotFound, Obj
from taskop.settings import Settings

log = logging.getLogger("taskop.callbacks")


async def post_callback(
    session: aiohttp.ClientSession, url: str, body: bytes, attempts: int, per_attempt: float
) -> tuple[bool, str, int]:
    """(delivered, last error, attempts made)."""
    last_error = ""
    for attempt in range(1, attempts + 1):
        status: int | None = None
        error: BaseException | None = None
        try:
            async with session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=per_attempt),
            ) as resp:
                status = resp.status
                await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            error = e
        verdict = classify_callback(status, error)
        if verdict is CallbackVerdict.DELIVERED:
            return True, "", attempt
        last_error = f"HTTP {status}" if status is not None else f"{type(error).__name__}: {error}"
        log.info(
            "callback attempt failed", extra={"url": url, "attempt": attempt, "error": last_error}
        )
    return False, last_error, attempts


async def deliver(
    kube: Kube, session: aiohttp.ClientSession, settings: Settings, task: Obj
) -> bool:
    """Resolve, call back and delete ``task``; True when delivered (the Task is then deleted)."""
    meta = task["metadata"]
    ns, name = meta["namespace"], meta["name"]
    spec = parse_spec(task["spec"])
    url = spec.completion_callback_url
    if not url:
        return False
    status: dict[str, Any] = task.get("status") or {}
    rec = record_from_status(spec.task_guid(name), spec.domain, status)
    if rec.state is not TaskState.COMPLETED:
        return False
    try:
        resolving = lifecycle.resolving(rec, lifecycle_now())
        task = await kube.patch_task_status(
            ns, name, meta["resourceVersion"], record_to_status(resolving)
        )
    except (BBSError, Conflict, NotFound):
        return False  # someone else resolved or changed it first: they own it now
    body = callback_body(resolving, spec.annotation)
    delivered, error, attempts = await post_callback(
        session, url, body, settings.callback_attempts, settings.callback_timeout
    )
    callback_status = dict(status.get("callback") or {})
    callback_status["attempts"] = int(callback_status.get("attempts", 0)) + attempts
    if delivered:
        try:
            lifecycle.check_delete(resolving)
            await kube.delete_task(ns, name, uid=meta["uid"])
        except NotFound:
            pass
        log.info("callback delivered; task deleted", extra={"task": f"{ns}/{name}", "url": url})
        return True
    callback_status["lastError"] = error
    try:
        await kube.patch_task_status(
            ns, name, task["metadata"]["resourceVersion"], {"callback": callback_status}
        )
    except (Conflict, NotFound):
        pass
    return False


def lifecycle_now() -> int:
    return time.time_ns()
