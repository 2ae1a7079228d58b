"""HTTP plumbing shared by the routes: bounded body reading and protobuf responses."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from taskop.bbs.codec import CONTENT_TYPE, M, decode_request, encode_response
from taskop.domain.errors import BBSError

T = TypeVar("T")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body; InvalidRequest when it is larger than ``limit`` bytes.

    The declared Content-Length is checked before reading; chunked bodies are read up to the
    limit and refused as soon as they exceed it, so an oversized body is never buffered whole.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> BBSError:
    return BBSError.invalid_request(
        [f"the request body is larger than {limit} bytes (TASKOP_BBS_MAX_BODY_BYTES)"]
    )


async def read_request(request: web.Request, message_type: type[M], limit: int) -> M:
    """The body decoded as ``message_type``; InvalidRequest for garbage or oversized bodies."""
    return decode_request(message_type, await read_body(request, limit))


def protobuf(message: object) -> web.Response:
    """HTTP 200 with the message's bytes and ``Content-Type: application/x-protobuf``."""
    body = encode_response(message)  # type: ignore[arg-type]
    return web.Response(body=body, status=200, headers={"Content-Type": CONTENT_TYPE})


def protobuf_bytes(body: bytes) -> web.Response:
    """HTTP 200 with an already encoded protobuf body."""
    return web.Response(body=body, status=200, headers={"Content-Type": CONTENT_TYPE})
