"""The metrics taskop records when a Task's status changes."""

from __future__ import annotations

from taskop import metrics
from taskop.domain.timefmt import format_ns

T0 = 1_800_000_000


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels or {})
    return value or 0.0


def test_a_task_running_then_failing_is_timed_and_counted_by_reason() -> None:
    pending_before = sample("taskop_task_pending_seconds_count")
    running_before = sample("taskop_task_running_seconds_sum")
    failed = {"failed": "true", "reason": "ExitCode"}
    failed_before = sample("taskop_task_completions_total", failed)
    created = format_ns(T0 * 10**9)
    running = {
        "state": "Running",
        "createdAt": created,
        "conditions": [
            {"type": "Running", "status": "True", "lastTransitionTime": format_ns((T0 + 5) * 10**9)}
        ],
    }
    metrics.record_transition({"state": "Pending", "createdAt": created}, running, T0 + 5)
    completed = {
        "state": "Completed",
        "failed": True,
        "conditions": [{"type": "Completed", "status": "True", "reason": "ExitCode"}],
    }
    metrics.record_transition(running, completed, T0 + 12)
    metrics.record_transition(completed, completed, T0 + 13)  # no change: nothing counted

    assert sample("taskop_task_pending_seconds_count") == pending_before + 1
    assert sample("taskop_task_running_seconds_sum") == running_before + 7
    assert sample("taskop_task_completions_total", failed) == failed_before + 1


def test_tasks_by_state_are_counted_as_the_cache_changes_not_decoded_at_scrape_time() -> None:
    from taskop.reconciler.cache import Cache

    def task(name: str, rv: int, **status: str) -> dict[str, object]:
        meta = {"namespace": "ns", "name": name, "uid": name, "resourceVersion": str(rv)}
        return {"metadata": meta, "spec": {}, "status": status}

    cache = Cache()
    cache.put_task(task("a", 1, state="Running"))
    cache.put_task(task("b", 2))
    cache.put_task(task("c", 3))
    cache.put_task(task("c", 4, state="Completed"))  # moves from Pending
    cache.put_task(task("d", 5, state="Running"))
    cache.drop_task(("ns", "d"))
    cache.forget(("ns", "nothing"))
    live = metrics.Live()
    live.task_states = lambda: cache.states
    (tasks, depth, groups) = list(live.collect())
    counts = {s.labels["state"]: s.value for s in tasks.samples}
    assert counts == {"Pending": 1, "Running": 1, "Completed": 1, "Resolving": 0}
    assert depth.samples[0].value == 0
    assert groups.samples == []  # no taskstore API running


def test_taskstore_groups_are_counted_at_scrape_time() -> None:
    live = metrics.Live()
    live.taskstore_groups = lambda: {
        "jobs": {"total": 5, "claimed": 2, "available": 3, "future": 0}
    }
    groups = list(live.collect())[2]
    assert {(s.labels["group"], s.labels["kind"]): s.value for s in groups.samples} == {
        ("jobs", "claimed"): 2,
        ("jobs", "available"): 3,
        ("jobs", "future"): 0,
    }
