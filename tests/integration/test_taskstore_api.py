"""The taskstore API on the real cluster, through a client written from the protocol
(tests/taskstoreclient.py; the Go client module is refused by the module proxy).

Leases: each task is held by one worker at a time, an unrenewed lease frees its task, renewal
keeps it. Updates: all or nothing with every unmet condition by cause, ids grow on every change.
Crashes: taskop is SIGKILLed at random points during 200 multi-task updates; every update ends
fully applied or not at all. And BBS sees the same tasks, and a standby replica serves none.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from taskop.bbs import models
from taskop.taskstore.intents import INTENT_LABEL
from tests.bbsclient import free_port, post, wait_for_ping
from tests.kubeutil import wait_until
from tests.operatorproc import OperatorFactory, OperatorProcess
from tests.standby import readyz, start_standby
from tests.taskstoreclient import SECOND, TaskstoreClient, TaskstoreError

pytestmark = pytest.mark.cluster

DOMAIN = "work"


@dataclass
class Store:
    port: int
    proc: OperatorProcess
    namespace: str
    bbs_port: int
    operator: OperatorFactory
    settings: dict[str, Any]

    def client(self, client_id: int | None = None) -> TaskstoreClient:
        return TaskstoreClient(self.port, client_id)

    def restart(self) -> None:
        self.proc = self.operator.start(**self.settings)
        wait_for_store(self.port)


def wait_for_store(port: int, timeout: float = 60) -> None:
    def answers() -> bool:
        try:
            TaskstoreClient(port).groups()
            return True
        except (OSError, urllib.error.HTTPError):
            return False

    wait_until(answers, timeout=timeout, what="the taskstore API to answer")


@pytest.fixture
def store(operator: OperatorFactory, namespace: str, tmp_path: Path) -> Iterator[Store]:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(f"domains: {{{DOMAIN}: {{run: taskstore}}}}\n")
    port, bbs_port = free_port(), free_port()
    settings: dict[str, Any] = {
        "taskstore_listen_port": port,
        "metrics_port": free_port(),
        "bbs_enabled": "true",
        "bbs_listen_port": bbs_port,
        "bbs_namespace": namespace,
        "domain_profiles_file": profiles,
    }
    proc = operator.start(**settings)
    wait_for_ping(bbs_port)
    wait_for_store(port)
    opened = Store(port, proc, namespace, bbs_port, operator, settings)
    yield opened
    assert "Traceback" not in opened.proc.logs(), opened.proc.logs()[-5000:]


def add(
    worker: TaskstoreClient, group: str, data: list[str], **fields: Any
) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    for i in range(0, len(data), 50):
        done += worker.update(
            adds=[{"group": group, "data": d, **fields} for d in data[i : i + 50]]
        )
    return done


def test_twenty_workers_claim_five_hundred_tasks_each_held_by_one(store: Store, k8s: Any) -> None:
    add(store.client(), "jobs", [f"item-{i}" for i in range(500)])
    workers = [store.client(client_id=1000 + w) for w in range(20)]
    held: dict[str, int] = {}
    lock = threading.Lock()

    def work(worker: TaskstoreClient) -> int:
        claims = 0
        while (task := worker.claim("jobs", 600 * SECOND)) is not None:
            claims += 1
            with lock:
                assert task["data"] not in held, f"{task['data']} claimed twice"
                held[task["data"]] = worker.id
            assert task["ownerid"] == worker.id
        return claims

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        counts = list(pool.map(work, workers))
    elapsed = time.monotonic() - started
    print(f"\n500 claims by 20 workers in {elapsed:.2f} s: {500 / elapsed:.0f} claims/s")
    assert sum(counts) == 500 and len(held) == 500
    assert sum(1 for c in counts if c) > 1  # they really competed

    # The Tasks agree: each is held by the worker that got it, until its lease ends.
    tasks = client.CustomObjectsApi(k8s).list_namespaced_custom_object(
        "taskop.dev", "v1alpha1", store.namespace, "tasks"
    )["items"]
    owners = {
        t["metadata"]["annotations"]["taskstore.taskop.dev/data"]: int(
            t["metadata"]["annotations"]["taskstore.taskop.dev/owner"]
        )
        for t in tasks
    }
    assert owners == held
    stats = store.client().stats()["jobs"]
    assert stats == {"total": 500, "claimed": 500, "available": 0, "future": 0}
    port = store.settings["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        scraped = response.read().decode()
    assert 'taskop_taskstore_tasks{group="jobs",kind="claimed"} 500.0' in scraped
    assert 'taskop_taskstore_claims_total{outcome="claimed"} 500.0' in scraped
    assert store.client().claim("jobs", SECOND) is None  # nothing left: no error, no task


def test_an_unrenewed_lease_frees_its_task_and_a_renewed_one_is_kept(store: Store) -> None:
    a, b = store.client(), store.client()
    add(a, "lease", ["one"])
    claimed = a.claim("lease", 2 * SECOND)
    assert claimed is not None and b.claim("lease", SECOND) is None
    time.sleep(2.2)  # no write happens: availability is computed from the clock
    taken = b.claim("lease", 3 * SECOND)
    assert taken is not None and taken["data"] == "one" and taken["ownerid"] == b.id
    with pytest.raises(TaskstoreError) as refused:
        a.update(updates=[{"id": taken["id"], "data": "mine"}])
    assert refused.value.error["owned"] == [taken["id"]]

    # b renews before its lease ends (duration < 0: relative to now): a still cannot claim it.
    time.sleep(1.5)
    renewed = b.update(updates=[{"id": taken["id"], "data": "one", "duration": -5 * SECOND}])[0]
    assert renewed["id"] > taken["id"]
    time.sleep(2.0)  # past the first lease's end
    assert a.claim("lease", SECOND) is None
    # Releasing (at ≤ now: an absolute time in the past) frees it at once.
    b.update(updates=[{"id": renewed["id"], "data": "one", "duration": 1}])
    assert a.claim("lease", SECOND) is not None


def test_a_claim_with_a_missing_dependency_fails_listing_it(store: Store) -> None:
    worker = store.client()
    present = add(worker, "deps", ["x"])[0]["id"]
    with pytest.raises(TaskstoreError) as refused:
        worker.claim("deps", SECOND, depends=[present, 999_999_999])
    assert refused.value.error["depends"] == [999_999_999]
    assert worker.claim("deps", SECOND, depends=[present]) is not None


def test_an_update_with_one_task_held_by_another_changes_none(store: Store) -> None:
    mine, theirs = store.client(), store.client()
    added = add(mine, "batch", [f"t{i}" for i in range(10)])
    held = theirs.claim("batch", 60 * SECOND)
    assert held is not None
    current = {t["data"]: t for t in mine.group("batch", owned=True)}
    before = sorted((t["id"], t["data"]) for t in current.values())

    with pytest.raises(TaskstoreError) as refused:
        mine.update(updates=[{"id": t["id"], "data": t["data"] + "!"} for t in current.values()])
    assert refused.value.error == {
        "changes": [],
        "deletes": [],
        "depends": [],
        "owned": [held["id"]],
        "bugs": [],
    }
    assert sorted((t["id"], t["data"]) for t in mine.group("batch", owned=True)) == before
    assert len(added) == 10


def test_ids_grow_on_every_change_and_old_ids_are_not_found(store: Store) -> None:
    worker = store.client()
    first = add(worker, "ids", ["v1"])[0]
    time.sleep(1)  # nothing else writes to it: its id stays
    assert worker.task(first["id"]) == first
    second = worker.update(updates=[{"id": first["id"], "data": "v2"}])[0]
    third = worker.claim("ids", SECOND)
    assert third is not None
    assert first["id"] < second["id"] < third["id"]
    assert worker.task(first["id"]) is None and worker.task(second["id"]) is None
    assert worker.tasks(first["id"], third["id"]) == [third]
    with pytest.raises(TaskstoreError) as refused:
        worker.update(updates=[{"id": first["id"], "data": "stale"}], depends=[second["id"]])
    assert refused.value.error["changes"] == [first["id"]]
    assert refused.value.error["depends"] == [second["id"]]
    worker.update(deletes=[third["id"]])
    assert worker.group("ids", owned=True) == [] and "ids" not in worker.groups()


def test_a_worker_and_a_bbs_client_see_the_same_tasks(store: Store, k8s: Any) -> None:
    worker = store.client()
    added = add(worker, "shared", ["a", "b", "c"])
    custom = client.CustomObjectsApi(k8s)

    def bbs_tasks() -> dict[str, models.Task]:
        request = models.TasksRequest(domain=DOMAIN)
        got = post(store.bbs_port, "/v1/tasks/list.r3", request).decode(models.TasksResponse)
        return {t.task_guid: t for t in got.tasks}

    def by_id() -> dict[int, str]:
        """taskstore id → the Task's name (the BBS guid): the id is its resourceVersion."""
        items = custom.list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", store.namespace, "tasks"
        )["items"]
        return {int(t["metadata"]["resourceVersion"]): t["metadata"]["name"] for t in items}

    names = by_id()
    # The BBS view follows the Tasks' watch: it sees another door's writes a moment later.
    wanted = {names[t["id"]] for t in added}
    wait_until(lambda: set(bbs_tasks()) == wanted, timeout=10, what="BBS to see the worker's tasks")
    seen = bbs_tasks()
    assert all(t.state == models.Task.Pending and t.domain == DOMAIN for t in seen.values())

    # Done through the worker: gone for BBS. Cancelled through BBS: gone for the worker.
    worker.update(deletes=[added[0]["id"]])
    wait_until(lambda: names[added[0]["id"]] not in bbs_tasks(), timeout=10, what="BBS to see it")
    cancelled = names[added[1]["id"]]
    response = post(store.bbs_port, "/v1/tasks/cancel", models.TaskGuidRequest(task_guid=cancelled))
    assert not response.decode(models.TaskLifecycleResponse).HasField("error")
    wait_until(
        lambda: [t["data"] for t in worker.group("shared", owned=True)] == ["c"],
        timeout=10,
        what="the worker to see only c",
    )

    # BBS cannot desire into the taskstore API's domain.
    definition = models.TaskDefinition(
        root_fs="docker:///busybox",
        action=models.Action(run_action=models.RunAction(path="true", user="root")),
    )
    request = models.DesireTaskRequest(task_guid="bbs-1", domain=DOMAIN, task_definition=definition)
    desired = post(store.bbs_port, "/v1/tasks/desire.r2", request)
    error = desired.decode(models.TaskLifecycleResponse).error
    assert error.type == models.Error.InvalidRequest and "taskstore API" in error.message


def test_every_update_survives_sigkill_whole_or_not_at_all(store: Store, k8s: Any) -> None:
    """200 updates, each adding 2 tasks, changing 2 and deleting 1, with taskop SIGKILLed at
    random moments and restarted. Afterwards each update's five effects are all there or none."""
    rng = random.Random(20261202)
    worker = store.client(client_id=7)
    n = 200
    seeds = [f"p{k}-c{j}" for k in range(n) for j in range(2)] + [f"p{k}-d" for k in range(n)]
    add(worker, "crash", seeds)
    answered: set[int] = set()
    kills = 0
    log: list[str] = []
    k = 0
    while k < n:
        current = {t["data"]: t["id"] for t in worker.group("crash", owned=True)}
        request = {
            "adds": [{"group": "crash", "data": f"u{k}-a{i}"} for i in range(2)],
            "updates": [
                {"id": current[f"p{k}-c{j}"], "data": f"u{k}-c{j}"}
                for j in range(2)
                if f"p{k}-c{j}" in current
            ],
            "deletes": [current[f"p{k}-d"]] if f"p{k}-d" in current else [],
        }
        if len(request["updates"]) < 2 or not request["deletes"]:
            log.append(f"update {k}: already applied before a crash (no response seen)")
            k += 1
            continue
        killer = None
        if rng.random() < 0.15:
            delay = rng.uniform(0, 0.08)
            killer = threading.Timer(delay, store.proc.kill)
            killer.start()
        try:
            worker.update(**request)
            answered.add(k)
        except (OSError, urllib.error.HTTPError) as e:
            log.append(f"update {k}: {type(e).__name__} (taskop killed)")
        if killer is not None:
            killer.join()
            if store.proc.proc.poll() is not None:
                kills += 1
                store.restart()
        k += 1

    final = Counter(t["data"] for t in worker.group("crash", owned=True))
    assert all(count == 1 for count in final.values()), "a task exists twice"
    whole, none = 0, 0
    for k in range(n):
        effects = [
            final[f"u{k}-a0"] == 1,
            final[f"u{k}-a1"] == 1,
            final[f"u{k}-c0"] == 1 and final[f"p{k}-c0"] == 0,
            final[f"u{k}-c1"] == 1 and final[f"p{k}-c1"] == 0,
            final[f"p{k}-d"] == 0,
        ]
        assert all(effects) or not any(effects), f"update {k} is half applied: {effects}"
        if k in answered:
            assert all(effects), f"update {k} was answered but is not applied"
        whole, none = whole + all(effects), none + (not any(effects))
    replays = sum(p.logs().count("replaying an update interrupted") for p in store.operator.started)
    print(
        f"\n{kills} SIGKILLs; {whole} updates applied, {none} not; {len(answered)} answered;"
        f" {replays} interrupted mid-way and replayed on restart"
    )
    print("\n".join(log))
    assert kills >= 5 and replays >= 1, "too few crashes (or none mid-update) to prove anything"
    # Every intent a crash left was replayed and deleted before the door served again.
    left = client.CoreV1Api(k8s).list_namespaced_config_map(
        store.namespace, label_selector=INTENT_LABEL
    )
    assert not left.items


def test_bad_requests_are_refused_as_bugs(store: Store) -> None:
    worker = store.client()
    with pytest.raises(TaskstoreError) as empty:
        worker.update()
    assert empty.value.error["bugs"] == ["empty update requested"]
    with pytest.raises(TaskstoreError) as no_group:
        worker.update(adds=[{"group": "", "data": "x"}])
    assert "empty group" in no_group.value.error["bugs"][0]
    with pytest.raises(TaskstoreError) as huge:
        worker.update(adds=[{"group": "g", "data": "x" * (64 * 1024 + 1)}])
    assert "data is over 65536 bytes" in huge.value.error["bugs"][0]
    assert worker.groups() == []
    json.dumps(worker.stats())


def test_a_standby_replica_refuses_every_request(
    kubeconfig: str, k8s: Any, namespace: str, crds: None, tmp_path: Path
) -> None:
    """Under kopf peering, the replica that is not the active one takes no update (two replicas
    committing and replaying intents would break all-or-nothing) and serves no read: 503, the
    protocol's "unavailable", saying why. Nothing is written."""
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(f"domains: {{{DOMAIN}: {{run: taskstore}}}}\n")
    port = free_port()
    settings = {
        "taskstore_listen_port": port,
        "bbs_namespace": namespace,
        "domain_profiles_file": profiles,
    }
    metrics_port = free_port()
    proc = start_standby(
        kubeconfig, k8s, namespace, tmp_path / "standby.log", settings, metrics_port=metrics_port
    )
    try:
        # Synced and replayed: nothing but being the standby keeps it from serving.
        wait_until(
            lambda: "standby" in (why := readyz(metrics_port)[1]) and "taskstore" not in why,
            timeout=60,
            what="the standby's taskstore view to be synced",
        )
        worker = TaskstoreClient(port)

        def refusal(call: Any) -> tuple[int, str]:
            try:
                call()
            except urllib.error.HTTPError as e:
                with e:
                    return e.code, e.read().decode()
            raise AssertionError("a standby answered")

        for call in (
            worker.groups,
            lambda: worker.group("jobs"),
            lambda: worker.task(1),
            lambda: worker.tasks(1, 2),
            lambda: worker.update(adds=[{"group": "jobs", "data": "x"}]),
            lambda: worker.claim("jobs", 60 * SECOND),
        ):
            code, text = refusal(call)
            assert code == 503 and "this taskop replica is a standby" in text, (code, text)
        tasks = client.CustomObjectsApi(k8s).list_namespaced_custom_object(
            "taskop.dev", "v1alpha1", namespace, "tasks"
        )
        assert tasks["items"] == []
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()[-5000:]
