"""BBS domains' freshness, as BBS's database keeps it (taskop.bbs.domains)."""

from __future__ import annotations

from taskop.bbs.domains import NEVER, fresh, upserted

S = 1_000_000_000


def test_an_upsert_sets_the_expiry_to_now_plus_ttl() -> None:
    assert upserted({}, "cf-tasks", 120, now=10 * S) == {"cf-tasks": 130 * S}


def test_ttl_0_never_expires() -> None:
    assert upserted({}, "forever", 0, now=10 * S) == {"forever": NEVER}


def test_an_upsert_renews_and_drops_what_expired_meanwhile() -> None:
    held = {"cf-tasks": 130 * S, "old": 50 * S}
    assert upserted(held, "cf-tasks", 120, now=100 * S) == {"cf-tasks": 220 * S}


def test_a_domain_is_fresh_until_its_expiry() -> None:
    held = {"b": 100 * S, "a": 101 * S}
    assert fresh(held, now=99 * S) == ["a", "b"]
    assert fresh(held, now=100 * S) == ["a"]
