"""Helpers for tests of the BBS API: a free port, raw protobuf POSTs, waiting for the server."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any, TypeVar

from taskop.bbs import models

M = TypeVar("M")

PROTOBUF = "application/x-protobuf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def decode(self, message_type: type[M]) -> M:
        assert self.status == 200, (self.status, self.body[:200])
        assert self.headers.get("content-type") == PROTOBUF, self.headers
        message = message_type()
        message.ParseFromString(self.body)  # type: ignore[attr-defined]
        return message


def post(
    port: int,
    path: str,
    body: bytes | Any = b"",
    *,
    method: str = "POST",
    context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> RawResponse:
    """One request; ``body`` may be a message (serialized) or raw bytes."""
    data = body if isinstance(body, bytes) else body.SerializeToString()
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers={"Content-Type": PROTOBUF, **(headers or {})})
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def wait_for_ping(port: int, timeout: float = 60, context: ssl.SSLContext | None = None) -> None:
    """Until ``/v1/ping`` answers available=true."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            resp = post(port, "/v1/ping", context=context, timeout=5)
            if resp.status == 200 and resp.decode(models.PingResponse).available:
                return
            last = resp.status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"the BBS API on port {port} did not become available: {last!r}")
