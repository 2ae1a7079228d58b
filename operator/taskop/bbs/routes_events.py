"""The task event streams (spec §1, §8 item 9): Server-Sent Events fed by the watch.

``/v1/events/tasks.r1`` sends V3 tasks; the deprecated ``/v1/events/tasks`` sends them downgraded
like the ``.r2`` routes. The request body (``EventsByCellId``) is ignored, as BBS ignores it, and
no Content-Type is required. Each connection numbers its events from 0.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from taskop.bbs.events import EVENT_STREAM_CONTENT_TYPE, format_sse
from taskop.bbs.hub import Subscriber, TaskEvent
from taskop.bbs.keys import HUB

log = logging.getLogger("taskop.bbs")

routes = web.RouteTableDef()

DISCONNECT_CHECK_SECONDS = 10.0
"""How often an idle stream checks whether its client went away (aiohttp does not cancel it)."""

HEADERS = {
    "Content-Type": EVENT_STREAM_CONTENT_TYPE,
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Connection": "keep-alive",
}


async def _stream(request: web.Request, v2: bool) -> web.StreamResponse:
    hub = request.app[HUB]
    subscriber = hub.subscribe(v2=v2)
    response = web.StreamResponse(status=200, headers=HEADERS)
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        event_id = 0
        while (event := await _next(request, subscriber)) is not None:
            name, data = event.encoded(v2)
            await response.write(format_sse(event_id, name, data))
            event_id += 1
        if subscriber.dropped:
            log.info("ended the event stream of a subscriber that fell behind")
    except (ConnectionError, RuntimeError):  # the client went away
        pass
    finally:
        hub.unsubscribe(subscriber)
    return response


async def _next(request: web.Request, subscriber: Subscriber) -> TaskEvent | None:
    """The next event; None when the stream ends or the client has gone away."""
    while True:
        try:
            return await asyncio.wait_for(subscriber.get(), DISCONNECT_CHECK_SECONDS)
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                return None


@routes.post("/v1/events/tasks.r1")
async def task_events(request: web.Request) -> web.StreamResponse:
    return await _stream(request, v2=False)


@routes.post("/v1/events/tasks")
async def task_events_r0(request: web.Request) -> web.StreamResponse:
    return await _stream(request, v2=True)
