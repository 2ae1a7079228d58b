"""The watch cache of Jobs and pods that spares a reconcile pass its API calls."""

from __future__ import annotations

from typing import Any

from taskop.kube.client import Kube
from taskop.reconciler.observed import Observed
from taskop.reconciler.reconcile import TaskReconciler
from taskop.settings import Settings

KEY = ("ns", "task")


def pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "ownerReferences": [{"kind": "Job", "uid": "job-uid"}],
            "managedFields": [{"big": "x" * 1000}],
            "labels": {"a": "b"},
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "task"}]},
        "status": {"phase": phase},
    }


def test_pods_are_kept_slim_with_what_the_outcome_reader_needs() -> None:
    observed = Observed()
    observed.pod_event(KEY, "ADDED", pod("p1"))

    (kept,) = observed.pods(KEY)

    assert kept["spec"] == {"nodeName": "node-1"}
    assert kept["status"] == {"phase": "Running"}
    assert kept["metadata"]["ownerReferences"] == [{"kind": "Job", "uid": "job-uid"}]
    assert "managedFields" not in kept["metadata"]


def test_the_newest_event_wins_and_deleted_objects_go() -> None:
    observed = Observed()
    observed.pod_event(KEY, None, pod("p1", "Pending"))
    observed.pod_event(KEY, "MODIFIED", pod("p1", "Running"))
    observed.pod_event(KEY, "ADDED", pod("p2"))
    assert sorted((p["metadata"]["name"], p["status"]["phase"]) for p in observed.pods(KEY)) == [
        ("p1", "Running"),
        ("p2", "Running"),
    ]

    observed.pod_event(KEY, "DELETED", pod("p1"))
    observed.pod_event(KEY, "DELETED", pod("p2"))
    observed.job_event(KEY, "ADDED", {"metadata": {"name": "j"}, "status": {}})
    observed.job_event(KEY, "DELETED", {"metadata": {"name": "j"}})

    assert observed.pods(KEY) == []
    assert observed.job(KEY) is None
    assert len(observed) == 0


def test_the_reconciler_reads_the_engines_cache_even_while_it_is_empty() -> None:
    observed = Observed()  # empty, hence falsy: it must still be the one shared
    reconciler = TaskReconciler(Kube.__new__(Kube), Settings(), observed)

    assert reconciler.observed is observed
