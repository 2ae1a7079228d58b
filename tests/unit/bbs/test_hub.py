"""EventHub: fan-out, the V2 payloads, and dropping a subscriber that falls behind."""

from __future__ import annotations

from taskop.bbs import events, models
from taskop.bbs.hub import EventHub, TaskEvent


def event(guid: str = "g") -> TaskEvent:
    return TaskEvent(events.TASK_CREATED, models.Task(task_guid=guid))


async def test_every_subscriber_gets_every_event() -> None:
    hub = EventHub()
    a, b = hub.subscribe(v2=False), hub.subscribe(v2=True)
    hub.publish(event("1"))
    assert (await a.get()) is (await b.get())


async def test_a_slow_subscriber_is_dropped_without_blocking_the_others() -> None:
    hub = EventHub(queue_size=2)
    slow, fast = hub.subscribe(v2=False), hub.subscribe(v2=False)
    for i in range(5):
        hub.publish(event(str(i)))
        assert await fast.get() is not None
    assert slow.dropped and hub.subscriber_count == 1
    assert await slow.get() is None  # its stream ends


async def test_close_ends_every_stream() -> None:
    hub = EventHub()
    subscriber = hub.subscribe(v2=False)
    hub.close()
    assert await subscriber.get() is None
    assert await hub.subscribe(v2=False).get() is None


def test_payloads_are_encoded_once_per_version() -> None:
    e = event()
    name, data = e.encoded(False)
    assert name == events.TASK_CREATED
    assert e.encoded(False) is e.encoded(False)
    assert e.encoded(True)[0] == events.TASK_CREATED and data
