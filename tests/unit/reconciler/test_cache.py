"""No pass without news: the cache keeps every newer version (its resourceVersion is the next
write's precondition) but tells the controller to look again only when what a pass reads
changed. An echo of taskop's own write, or a change to fields it does not keep, queues nothing."""

from __future__ import annotations

import copy
from typing import Any

from taskop.reconciler.cache import Cache

KEY = ("ns", "t")


def task(rv: int, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "taskop.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"namespace": "ns", "name": "t", "uid": "u1", "resourceVersion": str(rv)},
        "spec": {"image": "busybox", "action": {"run": {"path": "sh"}}},
        "status": status,
    }


def pod(rv: int, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "t-abc", "uid": "p1", "resourceVersion": str(rv)},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase, **status},
    }


def test_the_echo_of_its_own_write_is_no_news_but_a_new_status_is() -> None:
    cache = Cache()
    assert cache.put_task(task(5)) is True
    written = task(6, state="Running")
    assert cache.put_task(written) is True  # the write's answer
    assert cache.put_task(copy.deepcopy(written)) is False  # its watch event: an echo
    assert cache.put_task(task(5)) is False  # older: not kept
    assert cache.task(KEY)["status"] == {"state": "Running"}


def test_a_change_to_what_it_does_not_keep_is_no_news_yet_its_version_is_kept() -> None:
    cache = Cache()
    cache.put_task(task(5))
    touched = task(7)
    touched["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert cache.put_task(touched) is False
    assert cache.task(KEY)["metadata"]["resourceVersion"] == "7"  # the next write's precondition


def test_a_pod_event_is_news_only_when_what_a_pass_reads_changed() -> None:
    cache = Cache()
    assert cache.put_pod(KEY, pod(1, "Pending")) is True
    assert cache.put_pod(KEY, pod(2, "Pending", podIP="10.0.0.7")) is False  # not kept
    assert cache.put_pod(KEY, pod(3, "Running")) is True
    assert cache.pods_of(KEY)[0]["metadata"]["resourceVersion"] == "3"
