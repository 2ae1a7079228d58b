"""The completion callback (spec §5): its JSON body, byte for byte as Go's, its retry rules,
where it may connect and whether it presents taskop's client certificate."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskop.domain.addresses import cidrs
from taskop.domain.lifecycle import TaskRecord
from taskop.domain.profiles import DomainProfile

_HEX = "0123456789abcdef"
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_json_string(text: str) -> str:
    """A JSON string literal as Go's ``encoding/json`` writes it (HTML-safe escaping).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\u`` escapes; other control characters
    ``\\u00XX``; non-ASCII stays raw; invalid UTF-8 (lone surrogates here) becomes ``\\ufffd``.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT:
            out.append(_SHORT[char])
        elif code < 0x20 or char in "<>&":
            out.append(f"\\u00{_HEX[code >> 4]}{_HEX[code & 0xF]}")
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def callback_body(rec: TaskRecord, annotation: str) -> bytes:
    """``json.Marshal(TaskCallbackResponse{…})`` of BBS: fixed key order, no spaces."""
    parts = [
        f'"task_guid":{go_json_string(rec.guid)}',
        f'"failed":{"true" if rec.failed else "false"}',
        f'"failure_reason":{go_json_string(rec.failure_reason)}',
        f'"result":{go_json_string(rec.result)}',
    ]
    if annotation:
        parts.append(f'"annotation":{go_json_string(annotation)}')
    parts.append(f'"created_at":{rec.created_at}')
    return ("{" + ",".join(parts) + "}").encode()


class CallbackVerdict(enum.StrEnum):
    DELIVERED = "Delivered"  # done: the task can be deleted
    RETRY = "Retry"  # transient: try again (up to the attempt limit)
    GIVE_UP = "GiveUp"  # not deliverable this round; convergence tries again later


def classify_callback(status: int | None, error: BaseException | None) -> CallbackVerdict:
    """Any HTTP status but 503/504 is delivered (4xx and 500 included, as in BBS), except a
    redirect: taskop does not follow one (its target was never checked against the destination
    policy), so the callback was not delivered and convergence tries again.

    Every failure short of an HTTP answer (timeout, refused or reset connection, DNS, TLS) is
    retried alike, so the number of attempts does not tell a closed port from a filtered one or
    from a server that is not HTTP.
    """
    if error is not None:
        return CallbackVerdict.RETRY
    if status is None or 300 <= status < 400:
        return CallbackVerdict.GIVE_UP
    return CallbackVerdict.RETRY if status in (503, 504) else CallbackVerdict.DELIVERED


# --- where callbacks may go, and with which identity --------------------------------------------
#
# Whoever may create a Task chooses its completionCallbackUrl, and taskop POSTs to it from the
# operator's pod (DESIGN.md §10: doors are authorities). Two things keep that from being a door
# into the network: the destination policy below, checked on every address taskop connects to,
# and the client certificate, presented only to callbacks of Tasks the BBS API desired.

DEFAULT_DENIED_DESTINATIONS = (
    "127.0.0.0/8,::1/128,"  # the operator's own loopback (its APIs, metrics, sidecars)
    "0.0.0.0/8,::/128,"  # "this host": connecting to 0.0.0.0 or :: reaches loopback
    "169.254.0.0/16,fe80::/10,"  # link-local, cloud metadata (169.254.169.254) included
    "fd00:ec2::254/128,100.100.100.200/32"  # AWS's IPv6 and Alibaba Cloud's metadata services
)
"""Refused unless `callback_allowed_destinations` allows them (TASKOP_CALLBACK_DENIED_DESTINATIONS
default)."""

REFUSED_DESTINATION = (
    "callback URL refused: its destination is not allowed by the operator's callback policy"
)
"""status.callback.lastError of a callback whose host is, or resolves only to, denied addresses."""

UNREACHABLE = "cannot reach the callback URL: no HTTP answer (the operator's log has the cause)"
"""status.callback.lastError of every failure short of an HTTP answer (refused or reset connection,
timeout, DNS, TLS): one text, so that a Task's status does not map what listens where."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(setting: str, text: str) -> tuple[_Network, ...]:
    networks: list[_Network] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.extend(ipaddress.ip_network(c) for c in cidrs(entry))
        except ValueError as e:
            raise ValueError(
                f"{setting}: {entry!r} is not an IP address, CIDR or range: {e}"
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of a resolved host or socket address; an IPv4-mapped IPv6 one as IPv4."""
    address = ipaddress.ip_address(text.partition("%")[0])  # fe80::1%eth0: the zone says no more
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on the wire
    return address


@dataclass(frozen=True)
class DestinationPolicy:
    """Where callbacks may connect: an address in a denied network and in no allowed one is
    refused. So the allowed networks are exceptions: deny ``0.0.0.0/0,::/0`` and allow
    Cloud Controller's network to let callbacks go there only."""

    denied: tuple[_Network, ...]
    allowed: tuple[_Network, ...] = ()

    @classmethod
    def parse(cls, denied: str, allowed: str = "") -> DestinationPolicy:
        """From comma-separated IP addresses, CIDRs and a-b ranges; ValueError naming a bad one."""
        return cls(
            _networks("TASKOP_CALLBACK_DENIED_DESTINATIONS", denied),
            _networks("TASKOP_CALLBACK_ALLOWED_DESTINATIONS", allowed),
        )

    def allows(self, address: str) -> bool:
        """Whether taskop may connect to ``address`` (an IP address; anything else is refused)."""
        try:
            ip = _address(address)
        except ValueError:
            return False  # a name: only its resolved addresses are ever checked, never the name
        if any(ip in network for network in self.allowed):
            return True
        return not any(ip in network for network in self.denied)


def presents_client_certificate(status: Mapping[str, Any] | None, profile: DomainProfile) -> bool:
    """Whether a Task's callback carries taskop's client certificate (the one Cloud Controller
    trusts): per its domain's profile, ``callbackClientCertificate``.

    ``bbs`` (the default): only for Tasks the BBS API desired. The BBS API records that in
    ``status.api`` and only taskop writes status (the status subresource; no role for Task
    creators grants it). The ``taskop.dev/api: bbs`` label cannot say it: whoever may create a
    Task sets its labels, and a CRD's validation rules cannot see them. Nor can the domain alone:
    ``spec.domain`` is the creator's choice too.
    """
    if profile.callback_client_certificate == "all":
        return True
    if profile.callback_client_certificate == "none":
        return False
    return (status or {}).get("api") == "bbs"
