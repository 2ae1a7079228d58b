"""taskop's Tasks queued through the real Kueue manager (issue 25) on the local cluster.

The operator runs as `taskop run` with TASKOP_KUEUE_ENABLED=true; each test makes its own
ResourceFlavor(s), a ClusterQueue admitting only its namespace and a LocalQueue ``q`` there, and
removes the cluster-scoped ones afterwards. Quota is counted in the pods' requests: a Task with
``cpuWeight: 50`` asks 500m for its command, plus taskop's helper containers' few millicores (and
16Mi of memory), so "room for n Tasks" is ``500·n + 200`` millicores (`room_for`): n fit, n+1 do
not. Pods run on kwok's fake nodes (``kwok.taskop.dev/`` annotations say how) except in the
preemption test, which runs the victim's command on the real kubelet node.

Every pod of a queued Task's Job is watched from before the Task exists (`PodWatch`): the proofs
of "ran once" are the pods a node took (``spec.nodeName``), which are the only pods that can run.

All in the xdist group "kueue" (test_kueue_cluster.py's); the test that stops Kueue's manager is
also `exclusive`.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from taskop.bbs import models
from taskop.domain.names import task_name
from tests.bbsclient import free_port, post, wait_for_ping
from tests.conftest import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION, built_tool, cluster_tool
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorFactory, OperatorProcess
from tests.tasks import GROUP, VERSION, Tasks, task_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kueue")]

KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RELEASE_GATE = "taskop.dev/release"
CPU_WEIGHT = 50  # 500m for the command; the pod asks a little more (taskop's helpers)
QUOTA_MESSAGE = (
    "couldn't assign flavors to pod set main: insufficient unused quota for {} in flavor {}"
)


def room_for(tasks: int) -> str:
    """A cpu quota for exactly ``tasks`` Tasks of `CPU_WEIGHT` (each pod asks 500m to 600m)."""
    return f"{500 * tasks + 200}m"


def queued_task(
    name: str,
    *,
    kwok: dict[str, str] | None = None,
    priority: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Task in the LocalQueue ``q``; its kwok pod runs 1 s and reports ``done <name>``."""
    manifest = task_manifest(
        name,
        kwok=kwok if kwok is not None else {"duration": "1s", "message": f"done {name}"},
        spec={"queueName": "q", "cpuWeight": CPU_WEIGHT, **spec},
    )
    if priority:
        manifest["spec"]["priorityClassName"] = priority
    return manifest


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


def kueue_condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return next((c for c in conditions if c["type"] == type_), None)


# --- Kueue's objects ------------------------------------------------------------------------------


class Queues:
    """ResourceFlavors, a ClusterQueue for the test's namespace, its LocalQueue ``q`` and
    WorkloadPriorityClasses, named uniquely; the cluster-scoped ones are deleted by `cleanup`."""

    def __init__(self, k8s: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(k8s)
        self.namespace = namespace
        self.prefix = f"taskop-test-{uuid.uuid4().hex[:8]}"
        self.created: list[tuple[str, str]] = []

    def _create(self, plural: str, kind: str, name: str, body: dict[str, Any]) -> str:
        self.custom.create_cluster_custom_object(
            KUEUE_GROUP,
            KUEUE_VERSION,
            plural,
            {"apiVersion": f"{KUEUE_GROUP}/{KUEUE_VERSION}", "kind": kind, **body},
        )
        self.created.append((plural, name))
        return name

    def flavor(self, suffix: str = "flavor", node_labels: dict[str, str] | None = None) -> str:
        name = f"{self.prefix}-{suffix}"
        spec = {"nodeLabels": node_labels} if node_labels else {}
        return self._create(
            "resourceflavors", "ResourceFlavor", name, {"metadata": {"name": name}, "spec": spec}
        )

    def priority_class(self, suffix: str, value: int) -> str:
        name = f"{self.prefix}-{suffix}"
        return self._create(
            "workloadpriorityclasses",
            "WorkloadPriorityClass",
            name,
            {"metadata": {"name": name}, "value": value},
        )

    @staticmethod
    def resource_groups(flavor: str, cpu: str, memory: str) -> list[dict[str, Any]]:
        # Every resource a task pod requests must be covered: taskop's helpers ask cpu and
        # memory, a BBS task's disk_mb becomes an ephemeral-storage limit (so a request).
        quotas = {"cpu": cpu, "memory": memory, "ephemeral-storage": "1Ti"}
        return [
            {
                "coveredResources": list(quotas),
                "flavors": [
                    {
                        "name": flavor,
                        "resources": [{"name": k, "nominalQuota": v} for k, v in quotas.items()],
                    }
                ],
            }
        ]

    def queue(
        self,
        flavor: str,
        *,
        cpu: str,
        memory: str = "64Gi",
        preemption: dict[str, str] | None = None,
    ) -> str:
        """A ClusterQueue (for this namespace only) and the LocalQueue ``q`` on it, both Active."""
        name = f"{self.prefix}-cq"
        spec: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
            "resourceGroups": self.resource_groups(flavor, cpu, memory),
        }
        if preemption:
            spec["preemption"] = preemption
        self._create(
            "clusterqueues", "ClusterQueue", name, {"metadata": {"name": name}, "spec": spec}
        )
        self.custom.create_namespaced_custom_object(
            KUEUE_GROUP,
            KUEUE_VERSION,
            self.namespace,
            "localqueues",
            {
                "apiVersion": f"{KUEUE_GROUP}/{KUEUE_VERSION}",
                "kind": "LocalQueue",
                "metadata": {"name": "q"},
                "spec": {"clusterQueue": name},
            },
        )

        def active() -> bool:
            cq = self.custom.get_cluster_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, "clusterqueues", name
            )
            lq = self.custom.get_namespaced_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, self.namespace, "localqueues", "q"
            )
            return all(
                (c := kueue_condition(o, "Active")) is not None and c["status"] == "True"
                for o in (cq, lq)
            )

        wait_until(active, timeout=30, what=f"ClusterQueue {name} and LocalQueue q to be Active")
        return name

    def patch_queue(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_cluster_custom_object(
            KUEUE_GROUP, KUEUE_VERSION, "clusterqueues", name, {"spec": spec}
        )

    def workloads(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            KUEUE_GROUP, KUEUE_VERSION, self.namespace, "workloads"
        )["items"]
        return items

    def workloads_of(self, job_uid: str) -> list[dict[str, Any]]:
        """The Workloads Kueue made for the Job with ``job_uid`` (their controller owner)."""
        return [
            w
            for w in self.workloads()
            if any(o["uid"] == job_uid for o in w["metadata"].get("ownerReferences") or ())
        ]

    def cleanup(self) -> None:
        # The Workloads go with the namespace; Kueue then lets the ClusterQueue go.
        for plural, name in reversed(self.created):
            try:
                self.custom.delete_cluster_custom_object(KUEUE_GROUP, KUEUE_VERSION, plural, name)
            except client.ApiException as e:
                if e.status != 404:
                    raise


@pytest.fixture
def queues(k8s: client.ApiClient, namespace: str, kueue: None) -> Iterator[Queues]:
    made = Queues(k8s, namespace)
    yield made
    made.cleanup()


@pytest.fixture
def tasks(k8s: client.ApiClient, namespace: str) -> Tasks:
    return Tasks(k8s, namespace)


# --- every pod, from a watch ---------------------------------------------------------------------


@dataclass
class PodRecord:
    """One pod's life as the watch saw it."""

    name: str
    uid: str
    task: str
    created_gated: bool
    node: str = ""  # the node that took it (once set, a node may have run it)
    phase: str = ""
    deleted: bool = False


class PodWatch:
    """Follows every pod of the namespace (list, then watch from its resourceVersion; relists on
    410) and keeps each pod's record and the peak number of pods bound to a node and not yet
    terminal ("running") at once. Start it before the Tasks exist, so each pod's first version
    is the one it was created with."""

    def __init__(self, k8s: client.ApiClient, namespace: str) -> None:
        self.k8s = k8s
        self.core = client.CoreV1Api(k8s)
        self.namespace = namespace
        self.records: dict[str, PodRecord] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.peak_running = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PodWatch:
        listed = self.core.list_namespaced_pod(self.namespace)
        for pod in listed.items:
            self._see("ADDED", self.k8s.sanitize_for_serialization(pod))
        self._rv = listed.metadata.resource_version
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._watch.stop()
        self._thread.join(timeout=40)
        if self.error is not None and exc[0] is None:
            raise self.error

    def _run(self) -> None:
        try:
            while not self._done.is_set():
                try:
                    for event in self._watch.stream(
                        self.core.list_namespaced_pod,
                        self.namespace,
                        resource_version=self._rv,
                        timeout_seconds=5,  # __exit__ waits for the stream to end
                    ):
                        obj = self.k8s.sanitize_for_serialization(event["object"])
                        self._see(event["type"], obj)
                        self._rv = obj["metadata"]["resourceVersion"]
                except client.ApiException as e:
                    if e.status != 410:
                        raise
                    listed = self.core.list_namespaced_pod(self.namespace)
                    with self._lock:  # a pod deleted meanwhile: its last state is lost
                        self.live.clear()
                    for pod in listed.items:
                        self._see("ADDED", self.k8s.sanitize_for_serialization(pod))
                    self._rv = listed.metadata.resource_version
        except BaseException as e:  # reported by __exit__, not lost in the thread
            if not self._done.is_set():
                self.error = e

    def _see(self, type_: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        with self._lock:
            record = self.records.get(uid)
            if record is None:
                gates = [g["name"] for g in spec.get("schedulingGates") or ()]
                record = self.records[uid] = PodRecord(
                    name=meta["name"],
                    uid=uid,
                    task=(meta.get("labels") or {}).get("taskop.dev/task", ""),
                    created_gated=RELEASE_GATE in gates,
                )
            if spec.get("nodeName"):
                record.node = spec["nodeName"]
            record.phase = (pod.get("status") or {}).get("phase") or record.phase
            if type_ == "DELETED":
                record.deleted = True
                self.live.pop(uid, None)
            else:
                self.live[uid] = pod
            running = sum(
                1
                for p in self.live.values()
                if p["spec"].get("nodeName")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            )
            self.peak_running = max(self.peak_running, running)

    def of_task(self, name: str) -> list[PodRecord]:
        with self._lock:
            return [r for r in self.records.values() if r.task == name]

    def bound(self, name: str) -> list[PodRecord]:
        """The Task's pods a node took: the only ones that can have run its command."""
        return [r for r in self.of_task(name) if r.node]

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        return wait_until(check, timeout=timeout, what=what)


def start(operator: OperatorFactory, **settings: object) -> OperatorProcess:
    return operator.start(kueue_enabled="true", **settings)


def job_uid(tasks: Tasks, name: str) -> str:
    return str(tasks.batch.read_namespaced_job(name, tasks.namespace).metadata.uid)


def job_gone(tasks: Tasks, name: str) -> bool:
    try:
        tasks.batch.read_namespaced_job(name, tasks.namespace)
    except client.ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


# --- the tests ------------------------------------------------------------------------------------


def test_ten_tasks_in_a_queue_with_room_for_two_run_two_at_a_time_each_from_one_pod(
    operator: OperatorFactory, tasks: Tasks, queues: Queues, k8s: client.ApiClient, namespace: str
) -> None:
    queues.queue(queues.flavor(), cpu=room_for(2))
    start(operator)
    names = [f"task-{i}" for i in range(10)]
    with PodWatch(k8s, namespace) as pods:
        for name in names:
            tasks.create(queued_task(name))
        finals = {name: tasks.wait_state(name, "Completed", timeout=180) for name in names}
        pods.wait(
            lambda: all(r.phase == "Succeeded" for n in names for r in pods.bound(n)),
            "the watch to see every bound pod succeed",
        )

    for name, status in finals.items():
        assert (status["failed"], status["result"]) == (False, f"done {name}"), (name, status)
        records = pods.of_task(name)
        assert records and all(r.created_gated for r in records), (name, records)
        (ran,) = pods.bound(name)  # exactly one pod of its Job was ever taken by a node …
        assert ran.uid == status["releasedPod"]["uid"], (name, ran, status["releasedPod"])
        assert ran.phase == "Succeeded"
        assert not status.get("releasedPodFailures")
        # … and every other pod it made (none expected) stayed gated and never ran
        assert all(not r.node for r in records if r.uid != ran.uid), (name, records)
    # Never more than the quota's two at once, and the quota was used.
    assert pods.peak_running == 2, pods.peak_running


def test_a_queued_task_shows_kueues_reason_and_cancelling_it_removes_its_job_and_workload(
    operator: OperatorFactory,
    tasks: Tasks,
    queues: Queues,
    kubeconfig: str,
    namespace: str,
) -> None:
    flavor = queues.flavor()
    queues.queue(flavor, cpu=room_for(1))
    start(operator)
    tasks.create(queued_task("holder", kwok={"complete": "never"}))
    tasks.wait_state("holder", "Running")
    tasks.create(queued_task("waiting"))

    expected = QUOTA_MESSAGE.format("cpu", flavor)

    def queued() -> dict[str, Any] | None:
        running = condition(tasks.status("waiting"), "Running")
        if running and running["reason"] == "Queued" and running["message"].startswith(expected):
            return running
        return None

    running = wait_until(queued, timeout=60, what="the waiting Task to show Kueue's message")
    assert running["status"] == "False"
    assert tasks.status("waiting")["state"] == "Pending"
    header, *rows = kubectl(kubeconfig, "-n", namespace, "get", "tasks").stdout.splitlines()
    assert "MESSAGE" in header.split(), header
    (row,) = [r for r in rows if r.split()[0] == "waiting"]
    assert expected in row, row
    job = tasks.batch.read_namespaced_job("waiting", namespace)
    assert job.spec.suspend is True and job.metadata.labels[QUEUE_LABEL] == "q"
    uid = str(job.metadata.uid)
    (workload,) = queues.workloads_of(uid)
    reserved = kueue_condition(workload, "QuotaReserved")
    assert reserved is not None and reserved["message"] == running["message"]

    tasks.patch("waiting", {"spec": {"cancelled": True}})

    status = tasks.wait_state("waiting", "Completed", timeout=60)
    assert status["failed"] is True, status
    wait_until(lambda: job_gone(tasks, "waiting"), timeout=60, what="the cancelled Task's Job gone")
    wait_until(
        lambda: not queues.workloads_of(uid),
        timeout=60,
        what=f"the cancelled Task's Workload {workload['metadata']['name']} gone",
    )
    assert tasks.status("holder")["state"] == "Running"  # the admitted one is untouched


def test_a_task_evicted_after_its_pod_was_released_but_before_a_node_took_it_runs_once_later(
    operator: OperatorFactory,
    tasks: Tasks,
    queues: Queues,
    k8s: client.ApiClient,
    namespace: str,
) -> None:
    """Kueue evicts the Workload while the pod taskop released is still unbound; the Task is
    requeued (not failed) and, re-admitted, runs exactly once.

    Made deterministic with a ResourceFlavor whose ``nodeLabels`` match no node: on admission
    Kueue copies them into the pod template's nodeSelector, so the pod taskop releases stays
    Pending, unschedulable, for as long as the test likes (taskop's Task is untouched: the node
    selector is Kueue's). The ClusterQueue is then stopped with ``stopPolicy: HoldAndDrain``,
    which evicts every admitted Workload (reason ClusterQueueStopped): Kueue suspends the Job,
    the Job controller deletes the unbound pod, and Kueue's stop restores the template's node
    selector. While stopped, the ClusterQueue is switched to a flavor without node labels and
    then resumed: Kueue re-admits the Workload, the Job makes a new (gated) pod, taskop releases
    it, since the first one provably never ran, and it runs on a kwok node.
    """
    nowhere = queues.flavor("nowhere", node_labels={"taskop.dev/kueue-test": "nowhere"})
    anywhere = queues.flavor("anywhere")
    cq = queues.queue(nowhere, cpu=room_for(1))
    start(operator)
    with PodWatch(k8s, namespace) as pods:
        tasks.create(queued_task("requeued"))

        def released_and_unschedulable() -> tuple[str, dict[str, Any]] | None:
            released = tasks.status("requeued").get("releasedPod")
            if not released:
                return None
            try:
                pod = tasks.core.read_namespaced_pod(released["name"], namespace)
            except client.ApiException as e:
                if e.status == 404:
                    return None
                raise
            scheduled = next(
                (c for c in pod.status.conditions or () if c.type == "PodScheduled"), None
            )
            if (
                pod.metadata.uid == released["uid"]
                and not pod.spec.scheduling_gates
                and scheduled is not None
                and scheduled.reason == "Unschedulable"
            ):
                return released["uid"], k8s.sanitize_for_serialization(pod)
            return None

        first, pod = wait_until(
            released_and_unschedulable,
            timeout=60,
            what="taskop to release the pod, and the scheduler to find no node for it",
        )
        assert pod["spec"]["nodeSelector"]["taskop.dev/kueue-test"] == "nowhere"  # Kueue's
        assert not pod["spec"].get("nodeName")

        queues.patch_queue(cq, {"stopPolicy": "HoldAndDrain"})

        pods.wait(lambda: pods.records[first].deleted, "the unbound released pod to be deleted")

        def requeued() -> dict[str, Any] | None:
            status = tasks.status("requeued")
            running = condition(status, "Running")
            ok = running and running["reason"] == "Queued" and status["state"] == "Pending"
            return status if ok else None

        wait_until(requeued, timeout=60, what="the Task back in its queue, Pending, not failed")

        groups = queues.resource_groups(anywhere, room_for(1), "64Gi")
        queues.patch_queue(cq, {"stopPolicy": "None", "resourceGroups": groups})
        status = tasks.wait_state("requeued", "Completed", timeout=90)
        pods.wait(
            lambda: [r.phase for r in pods.bound("requeued")] == ["Succeeded"],
            "the watch to see the run pod succeed",
        )

    assert (status["failed"], status["result"]) == (False, "done requeued"), status
    records = pods.of_task("requeued")
    assert all(r.created_gated for r in records), records
    assert not pods.records[first].node  # the first released pod never reached a node
    (ran,) = pods.bound("requeued")  # one pod ever taken by a node: the run
    assert ran.uid == status["releasedPod"]["uid"] != first
    assert not status.get("releasedPodFailures")
    (workload,) = queues.workloads_of(job_uid(tasks, "requeued"))
    evictions = (workload["status"].get("schedulingStats") or {}).get("evictions") or []
    assert [e["reason"] for e in evictions] == ["ClusterQueueStopped"], evictions


@pytest.fixture
def counter(k8s: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A claim ``starts`` bound to a hostPath volume on the real node (this host): what a task
    appends under /data the test reads from the returned file, whatever happens to the pod."""
    core = client.CoreV1Api(k8s)
    directory = tmp_path / "starts"
    volume = f"pv-{namespace}"[:63]
    core.create_persistent_volume(
        {
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Mi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
                "claimRef": {"namespace": namespace, "name": "starts"},
                "persistentVolumeReclaimPolicy": "Retain",
            },
        }
    )
    try:
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": "starts"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Mi"}},
                    "volumeName": volume,
                },
            },
        )
        yield directory / "starts"
    finally:
        core.delete_persistent_volume(volume)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.realnode
def test_a_higher_priority_task_preempts_a_running_one_which_fails_and_never_runs_again(
    operator: OperatorFactory,
    tasks: Tasks,
    queues: Queues,
    k8s: client.ApiClient,
    namespace: str,
    real_node: str,
    operator_image: str,
    counter: Path,
) -> None:
    """Proof on the real kubelet node: the low priority Task's command appends its pod's name to
    a file on a hostPath volume (a claim, as examples/pvc-tasks.yaml) before it sleeps, and the
    test reads that file from this host. Each line is one real start of the command, so "started
    once" is counted where the command runs, not inferred from the API; the pods' records (one
    pod of the Job ever taken by a node) back it up. The preempting Task runs on kwok."""
    flavor = queues.flavor()
    low = queues.priority_class("low", 100)
    high = queues.priority_class("high", 10000)
    queues.queue(flavor, cpu=room_for(1), preemption={"withinClusterQueue": "LowerPriority"})
    start(operator)
    victim: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": "victim"},
        "spec": {
            "queueName": "q",
            "priorityClassName": low,
            "cpuWeight": CPU_WEIGHT,
            "image": "busybox",
            "action": {
                "run": {
                    "path": "sh",
                    "args": ["-c", 'echo "$(hostname)" >> /data/starts; exec sleep 3600'],
                }
            },
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "starts"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "podTemplate": {
                "nodeSelector": REAL_NODE_SELECTOR,
                "tolerations": [REAL_NODE_TOLERATION],
            },
        },
    }
    with PodWatch(k8s, namespace) as pods:
        tasks.create(victim)
        (started,) = wait_until(
            lambda: lines(counter), timeout=120, what="the victim's command to start on the node"
        )
        tasks.wait_state("victim", "Running", timeout=30)
        victim_job = job_uid(tasks, "victim")

        tasks.create(queued_task("urgent", priority=high))

        failed = tasks.wait_state("victim", "Completed", timeout=60)
        urgent = tasks.wait_state("urgent", "Completed", timeout=60)
        wait_until(lambda: job_gone(tasks, "victim"), timeout=60, what="the victim's Job deleted")
        time.sleep(30)  # long enough for Kueue to have re-admitted and re-run it, were it able to
        after = lines(counter)

    assert failed["failed"] is True, failed
    reasons = {c["type"]: c["reason"] for c in failed["conditions"]}
    assert reasons["Failed"] == "Preempted", failed["conditions"]
    assert failed["failureReason"].startswith("Preempted to accommodate a workload"), failed
    assert (urgent["failed"], urgent["result"]) == (False, "done urgent"), urgent
    (ran,) = pods.bound("victim")  # one pod of the victim's Job was ever taken by a node …
    assert after == [started] == [ran.name], (after, ran)  # … and it started the command once
    assert ran.node == real_node
    assert all(r.created_gated for r in pods.of_task("victim"))
    assert all(w["spec"].get("active") is False for w in queues.workloads_of(victim_job))


@pytest.mark.exclusive  # it stops the shared Kueue: no other test may meet its webhooks then
def test_a_task_created_while_kueue_is_down_waits_pending_and_runs_once_kueue_is_back(
    operator: OperatorFactory, tasks: Tasks, queues: Queues, namespace: str
) -> None:
    queues.queue(queues.flavor(), cpu=room_for(1))  # made while Kueue's webhooks can answer
    start(operator)
    cluster_tool("kueue", "stop")
    try:
        tasks.create(queued_task("patient"))

        def unavailable() -> dict[str, Any] | None:
            status = tasks.status("patient")
            running = condition(status, "Running")
            ok = running and running["reason"] == "AdmissionUnavailable"
            return status if ok else None

        status = wait_until(unavailable, timeout=60, what="the Task to say Kueue is unavailable")
        running = condition(status, "Running") or {}
        assert 'failed calling webhook "mjob.kb.io"' in running["message"], running
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # it stays so: Pending, nothing created
            status = tasks.status("patient")
            assert status["state"] == "Pending", status
            assert (condition(status, "Running") or {}).get("reason") == "AdmissionUnavailable"
            assert job_gone(tasks, "patient")
            time.sleep(0.5)
    finally:
        cluster_tool("kueue", "up", "--no-build")

    status = tasks.wait_state("patient", "Completed", timeout=120)
    assert (status["failed"], status["result"]) == (False, "done patient"), status
    pods = tasks.core.list_namespaced_pod(namespace, label_selector="taskop.dev/task=patient")
    assert [p.status.phase for p in pods.items] == ["Succeeded"]


@pytest.fixture(scope="session")
def bbsconformance() -> Path:
    """The Go BBS client's conformance program (tests/bbsconformance), built by hack/bootstrap."""
    binary = Path(built_tool("build-bbs-tools")) / "bbsconformance"
    assert binary.is_file(), f"no {binary}"
    return binary


def test_a_bbs_task_in_a_queued_domain_is_pending_while_queued_then_completes_with_its_result(
    operator: OperatorFactory,
    tasks: Tasks,
    queues: Queues,
    tmp_path: Path,
    namespace: str,
    bbsconformance: Path,
) -> None:
    """The Go BBS client (the conformance program's run-to-completion: DesireTask, TaskByGuid
    until Completed, its result, Resolving, Delete) against a domain whose profile queues its
    tasks in ``q``, while a kubectl Task holds the queue's memory. Meanwhile the test reads the
    task through the BBS API (the protobuf routes the Go client calls): Pending, and its Task
    says Queued with Kueue's message; the holder cancelled, the Go client sees it complete."""
    flavor = queues.flavor()
    # Memory is the scarce resource here: the holder's 1000Mi fit, a BBS task's 64Mi more do not.
    queues.queue(flavor, cpu="10", memory="1050Mi")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump({"domains": {"queued": {"queueName": "q"}}}))
    port = free_port()
    proc = start(
        operator,
        bbs_enabled="true",
        bbs_listen_port=port,
        bbs_namespace=namespace,
        domain_profiles_file=profiles,
        bbs_task_annotations=json.dumps({"kwok.taskop.dev/message": "hello"}),
    )
    wait_for_ping(port)
    holder = queued_task("holder", kwok={"complete": "never"}, memoryMb=1000, cpuWeight=0)
    tasks.create(holder)
    tasks.wait_state("holder", "Running")

    go_client = subprocess.Popen(
        [
            str(bbsconformance),
            "-url",
            f"http://127.0.0.1:{port}",
            "-domain",
            "queued",
            "-scenario",
            "run-to-completion",
            "-expect-result",
            "hello",
            "-timeout",
            "150s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    try:

        def desired() -> models.Task | None:
            listed = post(port, "/v1/tasks/list.r3", models.TasksRequest(domain="queued"))
            found = listed.decode(models.TasksResponse).tasks
            return found[0] if found else None

        bbs_task = wait_until(desired, timeout=30, what="the Go client's task to be desired")
        name = task_name(bbs_task.task_guid)
        expected = QUOTA_MESSAGE.format("memory", flavor)

        def queued() -> dict[str, Any] | None:
            running = condition(tasks.status(name), "Running")
            if running and running["reason"] == "Queued":
                return running if running["message"].startswith(expected) else None
            return None

        wait_until(queued, timeout=60, what=f"Task {name} to show Kueue's message")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # what the BBS client reads meanwhile
            answer = post(
                port,
                "/v1/tasks/get_by_task_guid.r3",
                models.TaskByGuidRequest(task_guid=bbs_task.task_guid),
            ).decode(models.TaskResponse)
            assert answer.task.state == models.Task.Pending, answer
            time.sleep(0.5)

        tasks.patch("holder", {"spec": {"cancelled": True}})
        out, err = go_client.communicate(timeout=180)
    finally:
        if go_client.poll() is None:
            go_client.kill()
            go_client.communicate()

    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    failed = [r for r in results if not r["ok"]]
    assert go_client.returncode == 0 and results and not failed, (
        f"bbsconformance exited {go_client.returncode}\n{out}\n{err}\n{proc.logs()[-4000:]}"
    )
    (reached,) = [r for r in results if r["check"] == "run-to-completion/reaches-completed"]
    assert reached["detail"].startswith("states seen [Pending "), reached
    (result,) = [r for r in results if r["check"] == "run-to-completion/result"]
    assert result["detail"] == 'result "hello"', result


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kueue"


def test_the_kueue_examples_queue_a_task_and_a_high_priority_one_preempts_it(
    operator: OperatorFactory,
    tasks: Tasks,
    kueue: None,
    kubeconfig: str,
    namespace: str,
) -> None:
    """examples/kueue as its README says: queues.yaml (1 CPU of quota), queued-task.yaml runs,
    high-priority-task.yaml preempts it; the preempted Task fails with Kueue's reason and the
    urgent one completes. The examples' cluster-scoped objects are removed afterwards."""
    queues = str(EXAMPLES / "queues.yaml")
    try:
        kubectl(kubeconfig, "apply", "-n", namespace, "-f", queues)
        start(operator)
        kubectl(kubeconfig, "apply", "-n", namespace, "-f", str(EXAMPLES / "queued-task.yaml"))
        tasks.wait_state("queued", "Running", timeout=60)
        kubectl(
            kubeconfig, "apply", "-n", namespace, "-f", str(EXAMPLES / "high-priority-task.yaml")
        )
        preempted = tasks.wait_state("queued", "Completed", timeout=60)
        urgent = tasks.wait_state("urgent", "Completed", timeout=60)
    finally:
        kubectl(kubeconfig, "delete", "-n", namespace, "--ignore-not-found", "-f", queues)

    assert preempted["failed"] is True, preempted
    assert {c["type"]: c["reason"] for c in preempted["conditions"]}["Failed"] == "Preempted"
    assert preempted["failureReason"].startswith("Preempted to accommodate a workload")
    assert (urgent["failed"], urgent["result"]) == (False, "urgent done"), urgent
