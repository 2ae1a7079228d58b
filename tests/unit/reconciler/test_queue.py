"""The work queue: one worker per key, nothing dropped, per-key exponential backoff."""

from __future__ import annotations

import asyncio
import random

import pytest

from taskop.reconciler.queue import ShutDown, WorkQueue


def queue(**kwargs: float) -> WorkQueue[str]:
    return WorkQueue(rng=random.Random(1), **kwargs)


async def test_a_key_added_many_times_is_handed_out_once() -> None:
    q = queue()
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert [await q.get(), await q.get()] == ["a", "b"]
    assert len(q) == 0


async def test_a_key_added_while_processed_is_processed_again_afterwards_never_concurrently() -> (
    None
):
    q = queue()
    q.add("a")
    key = await q.get()
    q.add("a")  # an event arrives during the pass
    assert len(q) == 0  # not handed to a second worker
    q.done(key)
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_failures_back_off_exponentially_up_to_the_cap_and_forget_resets() -> None:
    q = queue(base_delay=0.1, max_delay=1.0)
    delays = [q.add_rate_limited("a") for _ in range(6)]
    assert delays[0] == pytest.approx(0.1, rel=0.2)
    assert delays[3] == pytest.approx(0.8, rel=0.2)
    assert max(delays) <= 1.2 and delays[-1] == pytest.approx(1.0, rel=0.2)
    q.forget("a")
    assert q.add_rate_limited("a") == pytest.approx(0.1, rel=0.2)


async def test_the_earliest_timer_wins_and_fires() -> None:
    q = queue()
    q.add_after("a", 5.0)
    q.add_after("a", 0.01)
    q.add_after("a", 3.0)
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_shutdown_lets_the_pass_in_flight_finish() -> None:
    q = queue()
    q.add("a")
    key = await q.get()
    q.shut_down()
    with pytest.raises(ShutDown):
        await q.get()
    assert not await q.drain(0.01)  # "a" is still in flight
    q.done(key)
    assert await q.drain(0.01)


async def test_waiting_workers_wake_one_per_key_and_for_timers() -> None:
    q = queue()
    workers = [asyncio.ensure_future(q.get()) for _ in range(4)]
    await asyncio.sleep(0)
    q.add("a")
    q.add_after("b", 0.02)
    done, pending = await asyncio.wait(workers, timeout=0.01)
    assert [w.result() for w in done] == ["a"]  # one worker took "a"; three still wait
    done, pending = await asyncio.wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
    assert [w.result() for w in done] == ["b"]
    q.shut_down()
    for w in pending:
        with pytest.raises(ShutDown):
            await w


async def test_a_key_due_almost_at_once_then_one_due_later_are_both_handed_out_in_order() -> None:
    # uvloop arms a timer due in under half a millisecond as a plain Handle (no when()): the
    # queue must not ask the armed timer for its due time
    q = queue()
    q.add_after("now", 0.0001)
    q.add_after("later", 0.01)
    assert [await asyncio.wait_for(q.get(), 1) for _ in range(2)] == ["now", "later"]


async def test_keys_delayed_in_a_burst_share_the_timer_firings() -> None:
    """A burst: 40 keys, each delayed a little more than the one before (as watch events delay
    theirs by the coalescing delay). One timer serves them, firing at most every TICK (20 ms): a
    few firings, not one a key; each key comes out once, never before it is due."""
    q = queue()
    loop = asyncio.get_running_loop()
    firings = 0
    fire = q._on_timer

    def counted() -> None:
        nonlocal firings
        firings += 1
        fire()

    q._on_timer = counted  # type: ignore[method-assign]
    start = loop.time()
    for i in range(40):
        q.add_after(f"k{i}", 0.002 * (i + 1))  # due over 80 ms
    out: dict[str, float] = {}
    while len(out) < 40:
        key = await asyncio.wait_for(q.get(), 1)
        out[key] = loop.time() - start
        q.done(key)
    assert sorted(out) == sorted(f"k{i}" for i in range(40))
    assert firings <= 7, firings  # 80 ms / TICK, and one a key (40) without the tick
    for i in range(40):
        assert out[f"k{i}"] >= 0.002 * (i + 1) - 0.001  # never early
