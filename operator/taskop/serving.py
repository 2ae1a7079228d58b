"""Serving one API (BBS, Glance, taskstore) on its own listener until cancelled, and the one
rule every door keeps: a standby replica serves none (`active_only`)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from taskop.readiness import READINESS


def active_only(api: str, refusal: Callable[[str], Exception]) -> Middleware:
    """A middleware answering every request of ``api`` with ``refusal(why)`` (the door's own
    error for "unavailable") while this replica is a standby (`Readiness.standby`)."""

    @web.middleware
    async def refuse_on_standby(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (why := READINESS.standby(api)) is not None:
            raise refusal(why)
        return await handler(request)

    return refuse_on_standby


async def serve_app(
    app: web.Application,
    what: str,
    address: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    **extra: object,
) -> None:
    """Serve ``app`` on ``address:port`` until cancelled; log where, as ``what``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, address, port, ssl_context=ssl_context).start()
        logging.getLogger("taskop").info(
            "%s listening on %s://%s:%d",
            what,
            "https" if ssl_context else "http",
            address,
            port,
            extra={**extra, "tls": ssl_context is not None},
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
