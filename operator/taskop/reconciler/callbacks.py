"""Completion callbacks exactly as BBS delivers them (bbs-tasks.md §5), on their own bounded pool.

Completed → Resolving (with a resourceVersion precondition: if someone else resolved it, stop),
POST the JSON TaskCallbackResponse up to ``callback_attempts`` times (retrying on 503/504 and on
every failure short of an HTTP answer; a redirect, which is not followed, or a destination the
policy refuses gives up for this round), then delete the Task (uid precondition). Only callbacks
of Tasks the BBS API desired present taskop's client certificate (`presents_client_certificate`);
every connection goes where the destination policy allows (`callback_http`). When the round
fails the Task stays Resolving; convergence kicks it back to Completed after
``kick_task_duration`` and it is called back again.

Slow receivers never hold a reconcile worker: ``callback_workers`` deliveries run at once, the rest
wait in a queue (one entry per Task). An API error re-queues the Task's reconcile with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

from taskop import metrics
from taskop.domain import lifecycle
from taskop.domain.callback import (
    REFUSED_DESTINATION,
    UNREACHABLE,
    CallbackVerdict,
    callback_body,
    classify_callback,
    presents_client_certificate,
)
from taskop.domain.errors import BBSError
from taskop.domain.spec import SpecError, parse_spec
from taskop.domain.states import TaskState
from taskop.domain.status import record_from_status, record_to_status
from taskop.domain.urls import redact_url, redact_urls
from taskop.kube.client import Conflict, NotFound, Obj
from taskop.reconciler.callback_http import DestinationRefused, callback_session
from taskop.settings import Settings

log = logging.getLogger("taskop.callbacks")

Key = tuple[str, str]
Poster = Callable[[str, bytes], Awaitable[tuple[bool, str, int]]]
"""(url, body) → (delivered, last error, attempts made)."""


class TaskWriter(Protocol):
    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj: ...
    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None: ...


async def post_callback(
    session: aiohttp.ClientSession, url: str, body: bytes, attempts: int, per_attempt: float
) -> tuple[bool, str, int]:
    """(delivered, last error, attempts made); stops early on BBS's give-up verdict.

    The last error, kept in the Task's status, is an HTTP status or one of two fixed texts
    (`REFUSED_DESTINATION`, `UNREACHABLE`): whoever chose the URL learns whether an HTTP server
    answered there, never whether a port was closed, filtered, reset or spoke TLS. The operator's
    log, for the admin, has the cause.
    """
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
                allow_redirects=False,  # its target was never checked against the policy
            ) as resp:
                status = resp.status
                await resp.read()
        except DestinationRefused:
            log.warning(
                "callback refused by the destination policy", extra={"url": redact_url(url)}
            )
            return False, REFUSED_DESTINATION, attempt
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            error = e
        verdict = classify_callback(status, error)
        if verdict is CallbackVerdict.DELIVERED:
            return True, "", attempt
        if status is not None:
            last_error = f"HTTP {status}"
            if 300 <= status < 400:
                last_error += " (a redirect: taskop does not follow callback redirects)"
            cause = last_error
        else:
            last_error = UNREACHABLE
            cause = _why(error)
        log.info(
            "callback attempt failed",
            extra={"url": redact_url(url), "attempt": attempt, "error": cause},
        )
        if verdict is CallbackVerdict.GIVE_UP:
            return False, last_error, attempt
    return False, last_error, attempts


def _why(error: BaseException | None) -> str:
    """The error and what caused it, for the log: on uvloop's TLS transport a receiver that
    refuses the handshake (no client certificate) surfaces as "Can not write request body", the
    TLS alert or the reset only as its cause. aiohttp's errors may name the URL (InvalidURL,
    TooManyRedirects): never its secrets."""
    parts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen and len(parts) < 4:
        seen.add(id(error))
        parts.append(f"{type(error).__name__}: {redact_urls(str(error))}")
        error = error.__cause__ or error.__context__
    return "; caused by ".join(parts)


async def deliver(kube: TaskWriter, post: Poster, task: Obj, now: int) -> bool:
    """Resolve, call back and delete ``task``; True when delivered (the Task is then deleted)."""
    meta = task["metadata"]
    ns, name = meta["namespace"], meta["name"]
    try:
        spec = parse_spec(task["spec"])
    except SpecError:
        return False
    url = spec.completion_callback_url
    status: dict[str, Any] = task.get("status") or {}
    rec = record_from_status(spec.task_guid(name), spec.domain, status)
    if not url or rec.state is not TaskState.COMPLETED:
        return False
    try:
        resolving = lifecycle.resolving(rec, now)
        task = await kube.patch_task_status(
            ns, name, meta["resourceVersion"], record_to_status(resolving)
        )
    except (BBSError, Conflict, NotFound):
        return False  # someone else resolved or changed it first: they own it now
    delivered, error, attempts = await post(url, callback_body(resolving, spec.annotation))
    metrics.CALLBACK_DELIVERIES.labels("delivered" if delivered else "failed").inc()
    callback_status = dict(status.get("callback") or {})
    callback_status["attempts"] = int(callback_status.get("attempts", 0)) + attempts
    if delivered:
        lifecycle.check_delete(resolving)
        try:
            await kube.delete_task(ns, name, uid=meta["uid"])
        except NotFound:
            pass
        log.info(
            "callback delivered; task deleted",
            extra={"task": f"{ns}/{name}", "url": redact_url(url)},
        )
        return True
    callback_status["lastError"] = error
    try:
        await kube.patch_task_status(
            ns, name, task["metadata"]["resourceVersion"], {"callback": callback_status}
        )
    except (Conflict, NotFound):
        pass
    return False


class CallbackPool:
    """Bounded workers that deliver completion callbacks, apart from the reconcile workers."""

    def __init__(
        self,
        kube: TaskWriter,
        settings: Settings,
        on_error: Callable[[Key], None],
        post: Poster | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.settings = settings
        self.on_error = on_error
        self._post = post
        self._sessions: dict[bool, aiohttp.ClientSession] = {}  # with a client certificate?
        self._pending: collections.OrderedDict[Key, Callable[[], Obj | None]] = (
            collections.OrderedDict()
        )
        self._busy: set[Key] = set()
        self._wakeup: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []

    def _poster(self, task: Obj) -> Poster:
        """How ``task``'s callback is posted: with taskop's client certificate or without."""
        if self._post is not None:
            return self._post
        try:
            profile = self.settings.profiles.profile(parse_spec(task["spec"]).domain)
            certificate = presents_client_certificate(task.get("status"), profile)
        except (SpecError, KeyError):
            certificate = False  # deliver() will not post it either
        return functools.partial(self._default_post, client_certificate=certificate)

    async def _default_post(
        self, url: str, body: bytes, *, client_certificate: bool
    ) -> tuple[bool, str, int]:
        session = self._sessions.get(client_certificate)
        if session is None:
            # https callbacks verify the server (TASKOP_CALLBACK_TLS_CA_FILE or the system's CAs);
            # one session presents taskop's client certificate (when one is set), the other
            # never does; both connect only where the destination policy allows.
            session = callback_session(
                self.settings.callback_ssl(client_certificate=client_certificate),
                self.settings.callback_policy(),
            )
            self._sessions[client_certificate] = session
        return await post_callback(
            session,
            url,
            body,
            self.settings.callback_attempts,
            self.settings.callback_timeout,
        )

    def submit(self, key: Key, current: Callable[[], Obj | None]) -> None:
        """Deliver for ``key`` soon; ``current`` gives the Task as the cache holds it then."""
        if key in self._busy:
            return
        self._pending[key] = current
        if self._wakeup is not None:
            self._wakeup.set()

    def pending(self) -> list[Key]:
        return list(self._pending)

    async def run_one(self, key: Key) -> None:
        """Deliver for ``key`` now (the workers, and the simulation, call this)."""
        current = self._pending.pop(key, None)
        task = current() if current else None
        if task is None:
            return
        self._busy.add(key)
        try:
            await deliver(self.kube, self._poster(task), task, self.clock())
        except Exception as e:
            log.warning(
                "callback round failed; will look again",
                extra={"task": f"{key[0]}/{key[1]}", "error": repr(e)[:500]},
            )
            self.on_error(key)
        finally:
            self._busy.discard(key)

    async def _worker(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            key = next(iter(self._pending))
            await self.run_one(key)

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        if self._pending:
            self._wakeup.set()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"taskop-callback-{i}")
            for i in range(self.settings.callback_workers)
        ]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
