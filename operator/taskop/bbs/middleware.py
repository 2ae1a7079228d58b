"""The one error middleware: domain errors → HTTP 200 protobuf with the ``error`` field set.

A `BBSError` becomes the route's response message carrying only ``error`` (BBS answers every
handled request with 200). Any other exception is logged with its traceback and answered with
UnknownError and a generic message: internals never reach the client, and bad input never gets a
5xx. Router answers (404 unknown path, 405 wrong method with ``Allow``) pass through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from taskop.bbs.codec import error_response
from taskop.bbs.http import protobuf
from taskop.domain.errors import BBSError
from taskop.metrics import BBS_ERROR_KEY
from taskop.readiness import READINESS

log = logging.getLogger("taskop.bbs")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

RESPONSE_TYPE = "taskop.bbs.response_type"
"""Attribute naming a route handler's response message type (set by `responds_with`)."""

INTERNAL_ERROR = "taskop could not handle the request (internal error; see the taskop logs)"


def responds_with(response_type: type) -> Callable[[H], H]:
    """Decorator: the handler's errors are answered as ``response_type`` messages."""

    def mark(handler: H) -> H:
        setattr(handler, RESPONSE_TYPE, response_type)
        return handler

    return mark


@web.middleware
async def bbs_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except BBSError as error:
        request[BBS_ERROR_KEY] = error.type.name
        response_type = _response_type(request)
        if response_type is None:
            raise
        log.debug(
            "request refused: %s",
            error.message,
            extra={"path": request.path, "error_type": error.type.name},
        )
        return protobuf(error_response(response_type, error))
    except Exception:
        request[BBS_ERROR_KEY] = "UnknownError"
        log.exception("BBS request failed", extra={"path": request.path})
        response_type = _response_type(request)
        if response_type is None:
            raise web.HTTPInternalServerError() from None
        return protobuf(error_response(response_type, BBSError.unknown(INTERNAL_ERROR)))


def _response_type(request: web.Request) -> type | None:
    route = request.match_info.route
    handler = getattr(route, "handler", None)
    found: type | None = getattr(handler, RESPONSE_TYPE, None)
    return found


@web.middleware
async def active_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A standby replica serves no BBS request (DESIGN §10: a door is an authority, and two
    replicas writing would break read-your-writes): every route but Ping answers the BBS error
    saying so; Ping answers false, as a BBS that does not hold the lock is unavailable."""
    if request.path != "/v1/ping" and (why := READINESS.standby("BBS API")) is not None:
        if _response_type(request) is None:  # an event stream: no message to carry the error
            raise web.HTTPServiceUnavailable(text=why)
        raise BBSError.unknown(why)
    return await handler(request)
