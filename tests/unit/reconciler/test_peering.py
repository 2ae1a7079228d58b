"""kopf's peering rule, as the reconciler applies it (taskop.reconciler.peering)."""

from __future__ import annotations

import datetime

import pytest

from taskop.reconciler.peering import paused

NOW = datetime.datetime(2027, 1, 15, 8, 0, tzinfo=datetime.UTC)


def peer(priority: int, seen_ago: float = 1.0, lifetime: int = 60) -> dict[str, object]:
    lastseen = (NOW - datetime.timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen}


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        ({}, False),  # alone
        ({"b": peer(5)}, False),  # a lower priority stands by
        ({"b": peer(20)}, True),  # a higher priority reconciles
        ({"b": peer(10)}, True),  # the same priority: a conflict, kopf pauses both
        ({"b": peer(20, seen_ago=61)}, False),  # dead: lastseen + lifetime passed
        ({"b": peer(5), "c": peer(30)}, True),
    ],
)
def test_a_replica_acts_only_while_no_live_peer_has_a_priority_at_least_its_own(
    others: dict[str, object], expected: bool
) -> None:
    status = {"self": peer(10), **others}
    assert paused(status, "self", 10, NOW) is expected
