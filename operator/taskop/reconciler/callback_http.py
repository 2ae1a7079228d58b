"""The HTTP client of completion callbacks: it connects only where the destination policy allows.

Whoever creates a Task chooses its callback URL, and the POST leaves from the operator's pod. So
the policy (`taskop.domain.callback.DestinationPolicy`, TASKOP_CALLBACK_DENIED_DESTINATIONS and
TASKOP_CALLBACK_ALLOWED_DESTINATIONS) is checked on the addresses actually connected to, not on
the URL's text:

- the resolver resolves the host and keeps only the allowed addresses; the connector connects to
  those only (and caches only those), so a name resolving to 127.0.0.1 is refused, and a name
  resolving to both allowed and denied addresses reaches an allowed one;
- an IP literal skips the resolver: the socket factory, called with the very address about to be
  connected to, refuses it (it sees every connection, so it guards the resolver too);
- redirects are not followed (`post_callback`), and no proxy from the environment is used.

A refusal raises `DestinationRefused`, which is no OSError: aiohttp passes it through unchanged
instead of trying the next address or wrapping it as a connection error.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import AddrInfoType
from aiohttp.resolver import DefaultResolver

from taskop.domain.callback import DestinationPolicy


class DestinationRefused(Exception):
    """The callback's host is, or resolves only to, addresses the policy refuses."""


class PolicyResolver(AbstractResolver):
    """Resolves with ``inner`` and keeps only the addresses ``policy`` allows."""

    def __init__(self, policy: DestinationPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        allowed = [
            r for r in await self.inner.resolve(host, port, family) if self.policy.allows(r["host"])
        ]
        if not allowed:
            raise DestinationRefused(host)
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def checked_socket_factory(policy: DestinationPolicy) -> Callable[[AddrInfoType], socket.socket]:
    """A socket for an address ``policy`` allows; DestinationRefused before any other."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not policy.allows(str(sockaddr[0])):
            raise DestinationRefused(str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def callback_session(
    ssl_context: ssl.SSLContext,
    policy: DestinationPolicy,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """A session whose every connection goes to an address ``policy`` allows."""
    connector = aiohttp.TCPConnector(
        ssl=ssl_context,
        resolver=PolicyResolver(policy, resolver),
        socket_factory=checked_socket_factory(policy),
        # One address after the other: a refusal from the socket factory ends the attempt at
        # once (happy eyeballs' parallel tries would swallow it).
        happy_eyeballs_delay=None,
    )
    return aiohttp.ClientSession(connector=connector, trust_env=False)
