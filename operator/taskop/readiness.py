"""Whether this replica should get traffic: it is the active one (kopf peering; a standalone
operator always is), and everything it serves from is synced (the BBS API's view of the Tasks,
whose watch is healthy). The pod's readiness probe (/readyz on the metrics port) and the BBS
API's Ping say the same thing, so a Service sends requests only to the replica that writes —
read-your-writes holds through it, as with BBS, which serves only from the instance holding its
lock.
"""

from __future__ import annotations

from collections.abc import Callable

STANDBY = (
    "this taskop replica is a standby: only the active replica serves the {api} (its Service"
    " sends requests there); try again"
)


class Readiness:
    def __init__(self) -> None:
        self.active = True
        self._checks: dict[str, Callable[[], bool]] = {}

    def add(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    def standby(self, api: str) -> str | None:
        """Why this replica must not serve ``api`` (e.g. "Glance API"): it is a standby, and two
        replicas taking requests would break what only one writer keeps (read-your-writes, the
        taskstore's all-or-nothing updates). None on the active replica."""
        return None if self.active else STANDBY.format(api=api)

    def failing(self) -> list[str]:
        """What keeps this replica from being ready; empty when it is."""
        failing = [] if self.active else ["standby: another replica is the active one"]
        return failing + [name for name, check in self._checks.items() if not check()]


READINESS = Readiness()
"""The process's one readiness."""
