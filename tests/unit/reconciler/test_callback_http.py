"""Completion callbacks connect only where the destination policy allows, say nothing in status
about what listens where, and present taskop's client certificate only for BBS-desired Tasks.

Real aiohttp sessions (`callback_session`) against real servers on loopback addresses: what is
refused must never even be connected to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from taskop.domain.callback import (
    DEFAULT_DENIED_DESTINATIONS,
    REFUSED_DESTINATION,
    UNREACHABLE,
    DestinationPolicy,
)
from taskop.reconciler.callback_http import callback_session
from taskop.reconciler.callbacks import CallbackPool, post_callback
from taskop.settings import Settings
from tests.bbscerts import make_certs

DEFAULT = DestinationPolicy.parse(DEFAULT_DENIED_DESTINATIONS)
LOOPBACK_OK = DestinationPolicy.parse(DEFAULT_DENIED_DESTINATIONS, "127.0.0.1")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Server:
    """A TCP server on ``host`` that counts connections and requests and answers ``reply``
    (None: closes at once; b"": never answers)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.reply is None:
                return
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            self.requests.append(head + await reader.readexactly(length))
            if self.reply == b"":
                await asyncio.sleep(30)
            writer.write(self.reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the test is over
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(
    reply: bytes | None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server(reply)
    srv = await asyncio.start_server(server.handle, host, 0, ssl=tls)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()


class FakeResolver(AbstractResolver):
    """Names resolve to the addresses the test says (as a hostile DNS record would)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.names[host]
        ]

    async def close(self) -> None:
        pass


async def post(
    url: str,
    policy: DestinationPolicy = DEFAULT,
    names: dict[str, list[str]] | None = None,
    attempts: int = 3,
    per_attempt: float = 2.0,
) -> tuple[bool, str, int]:
    resolver = FakeResolver(names) if names is not None else None
    async with callback_session(ssl.create_default_context(), policy, resolver) as session:
        return await post_callback(session, url, b"{}", attempts, per_attempt)


async def test_an_allowed_destination_gets_the_callback() -> None:
    async with serving(OK) as server:
        assert await post(f"http://127.0.0.1:{server.port}/cb", LOOPBACK_OK) == (True, "", 1)
    assert len(server.requests) == 1


async def test_a_loopback_ip_is_refused_without_connecting() -> None:
    async with serving(OK) as server:
        result = await post(f"http://127.0.0.1:{server.port}/cb")
    assert result == (False, REFUSED_DESTINATION, 1)
    assert server.connections == 0


@pytest.mark.parametrize(
    "host", ["[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "[::]", "169.254.169.254", "[fe80::1]"]
)
async def test_denied_ip_literals_are_refused(host: str) -> None:
    assert await post(f"http://{host}:9/cb") == (False, REFUSED_DESTINATION, 1)


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["::1", "127.0.0.1"], ["169.254.169.254"], ["::ffff:127.0.0.1"]],
    ids=["loopback", "both-loopbacks", "metadata", "ipv4-mapped"],
)
async def test_a_name_resolving_to_denied_addresses_is_refused_without_connecting(
    addresses: list[str],
) -> None:
    async with serving(OK) as server:
        names = {"callback.attacker.example": addresses}
        result = await post(f"http://callback.attacker.example:{server.port}/cb", names=names)
    assert result == (False, REFUSED_DESTINATION, 1)
    assert server.connections == 0


async def test_localhost_through_the_real_resolver_is_refused() -> None:
    async with serving(OK) as server:
        result = await post(f"http://localhost:{server.port}/cb")
    assert result == (False, REFUSED_DESTINATION, 1)
    assert server.connections == 0


async def test_a_name_with_denied_and_allowed_addresses_connects_only_to_an_allowed_one() -> None:
    async with serving(OK) as allowed:
        twin = Server(OK)  # the same port on the denied address, listed first
        srv = await asyncio.start_server(twin.handle, "127.0.0.2", allowed.port)
        try:
            names = {"cc.example": ["127.0.0.2", "127.0.0.1"]}
            result = await post(f"http://cc.example:{allowed.port}/cb", LOOPBACK_OK, names)
        finally:
            srv.close()
    assert result == (True, "", 1)
    assert (twin.connections, len(allowed.requests)) == (0, 1)


async def test_a_redirect_is_not_followed() -> None:
    async with serving(OK, "127.0.0.2") as inside:
        redirect = (
            "HTTP/1.1 307 Temporary Redirect\r\n"
            f"Location: http://127.0.0.2:{inside.port}/admin\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
        async with serving(redirect) as outside:
            delivered, error, attempts = await post(
                f"http://127.0.0.1:{outside.port}/cb", LOOPBACK_OK
            )
    assert (delivered, attempts) == (False, 1)
    assert error.startswith("HTTP 307 (a redirect")
    assert inside.connections == 0


async def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/cb"


@asynccontextmanager
async def _server_url(reply: bytes | None) -> AsyncIterator[str]:
    async with serving(reply) as server:
        yield f"http://127.0.0.1:{server.port}/cb"


@pytest.mark.parametrize(
    "answer",
    ["closed port", "connection closed at once", "not HTTP", "no answer (timeout)", "TLS to HTTP"],
)
async def test_failures_short_of_an_http_answer_read_alike(
    answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Task's creator learns from its status whether an HTTP server answered, not whether the
    port was closed, reset, timed out or spoke something else: one text, the same attempts."""
    caplog.set_level(logging.INFO, logger="taskop.callbacks")
    replies: dict[str, bytes | None] = {
        "connection closed at once": None,
        "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n",
        "no answer (timeout)": b"",
        "TLS to HTTP": OK,
    }
    if answer == "closed port":
        url = await _closed_port()
        result = await post(url, LOOPBACK_OK, per_attempt=0.5)
    else:
        async with _server_url(replies[answer]) as url:
            if answer == "TLS to HTTP":
                url = url.replace("http://", "https://")
            result = await post(url, LOOPBACK_OK, per_attempt=0.5)
    assert result == (False, UNREACHABLE, 3)
    causes = [r.__dict__["error"] for r in caplog.records if "error" in r.__dict__]
    assert causes and all(c != UNREACHABLE for c in causes)  # the admin's log has the cause


# --- the client certificate -------------------------------------------------------------------


class FakeKube:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.statuses: list[dict[str, Any]] = []

    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.statuses.append(status)
        return {"metadata": {"resourceVersion": str(int(resource_version) + 1)}}

    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None:
        self.deleted.append(name)


def completed_task(name: str, url: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "labels": {"taskop.dev/api": "bbs"},  # anyone who creates a Task may set it
        },
        "spec": {
            "image": "busybox",
            "action": {"run": {"path": "true"}},
            "domain": "cf-tasks",
            "completionCallbackUrl": url,
        },
        "status": {"state": "Completed", "createdAt": "2026-12-01T00:00:00Z", **status},
    }


async def _deliver_all(
    pool: CallbackPool, tasks: list[dict[str, Any]], run: Callable[[], Awaitable[None]]
) -> None:
    for task in tasks:
        key = ("ns", task["metadata"]["name"])
        pool.submit(key, lambda task=task: task)
        await pool.run_one(key)
    await run()


async def test_only_a_bbs_desired_task_presents_the_client_certificate(tmp_path: Path) -> None:
    """A receiver that requires taskop's client certificate (Cloud Controller's) gets the callback
    of the Task the BBS API desired, never one of a Task anyone created with kubectl, even with
    the taskop.dev/api: bbs label."""
    certs = make_certs(tmp_path / "certs")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
    server_tls.load_cert_chain(certs.server_cert, certs.server_key)
    server_tls.verify_mode = ssl.CERT_REQUIRED
    settings = Settings(
        callback_tls_cert_file=str(certs.client_cert),
        callback_tls_key_file=str(certs.client_key),
        callback_tls_ca_file=str(certs.ca),
        callback_allowed_destinations="127.0.0.1",
        callback_timeout=2.0,
    )
    kube = FakeKube()
    pool = CallbackPool(kube, settings, on_error=lambda key: None)  # type: ignore[arg-type]
    async with serving(OK, tls=server_tls) as cc:
        url = f"https://127.0.0.1:{cc.port}/internal/v4/tasks/completed"
        kubectl = completed_task("kubectl", url, {})
        desired = completed_task("desired", url, {"api": "bbs"})
        await _deliver_all(pool, [kubectl, desired], pool.stop)

    assert kube.deleted == ["desired"]
    assert len(cc.requests) == 1
    failed = [s["callback"] for s in kube.statuses if "callback" in s]
    assert failed == [{"attempts": 3, "lastError": UNREACHABLE}]
