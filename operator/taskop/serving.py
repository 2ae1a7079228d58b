"""Serving one API (BBS, Glance, taskstore) on its own listener until cancelled."""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web


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
