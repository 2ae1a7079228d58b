"""A deterministic simulation of the reconcile core under seeded schedules.

It drives the real `Controller` (cache, pure `decide`, writes, callbacks) against `FakeCluster`,
choosing at every step, from a seeded RNG, one of:

- the watches: deliver the next event of a stream, deliver one twice, stall a stream for a while
  (its events come late), drop a stream's pending events and re-list (410 Gone) — in pages whose
  continue token may expire after the first (410 Gone again, mid-list);
- the reconciler: run a queued pass, run a callback, advance the clock (now and then past the
  pending expiry, as after a long outage), restart the operator (a new Controller that knows
  nothing, whose caches then fill in any order while passes are asked for), hand over to the
  peering standby (its Task watch stood still while the other replica worked — the harder case:
  taskop's own Task feed keeps a standby watching; its Job, pod and Event informers kept
  running), inject API faults (5xx that change nothing, timeouts after the
  change);
- Kubernetes: step the Job controller (pods tracked by its finalizer; ``backoffLimit`` =
  ``spec.retries``: a failed, evicted, OOM-killed or deleted pod is replaced after the back-off,
  until the limit: BackoffLimitExceeded; ``activeDeadlineSeconds``: DeadlineExceeded), the kubelet
  (a pod runs, exits 1, is OOM-killed, or stays Pending on ImagePullBackOff), the garbage collector
  (dependents deleted later, as background propagation does; the pods of a deleted node failed and
  deleted by the pod GC);
- Kueue, for the Tasks with a queue (their own, or their domain profile's): it makes a Workload
  for the suspended Job, admits it when its ClusterQueue has room (two at a time) and unsuspends
  the Job, evicts an admitted one at any moment (preempted, a PodsReady timeout, its queue
  stopped): the Job suspended, its pods deleted uncounted (a bound one runs out its grace period
  while the Job controller makes its replacement at once), the quota released, requeued and
  admitted again; taskop's deactivation evicts it for good; the scheduler binds no gated pod.
  Kueue's manager stops and comes back (its webhooks, failing closed, refuse a labelled Job's
  create and update meanwhile);
- users: delete a Job or a pod, evict a pod, delete a node (``Controller.node_event``), cancel a
  Task (``spec.cancelled``), delete a Task and create it again under the same name (a new uid,
  while the earlier one's Job and NetworkPolicy wait for the GC), exhaust a quota while a Task
  runs (its retry's pod cannot be created), delete the whole namespace (everything in it goes, new
  content refused, while taskop works);
- the doors: BBS Cancel and Fail through the real `TaskService` (``spec.cancelled`` first, then
  the status — a fault, or reconcile passes, between the two writes), a Glance create (a Task with
  the TaskType label and a TTL), a taskstore update (a metadata write to a leased task).

Some Tasks' creates are refused for good (a 403 from a quota or a webhook, a 422). Then faults
stop and everything settles.

Invariants checked after every schedule:
- at most one Job per Task uid, ever (retries happen inside the one Job; a Task deleted and
  created again under its name is another Task, with its own one Job);
- a Task that Completed successfully holds exactly the result its own Job's (final, succeeded)
  pod wrote; a failed one says why, with a reason the world justifies (`_explained`): the kubelet
  or Job controller of *its own* Job (exit status, OOMKilled, evicted, node lost, image pull,
  DeadlineExceeded, BackoffLimitExceeded — a pod's reason only from the last pod, or the last one
  the API server still holds), a deletion, a cancel, a BBS Fail, an expiry; never an outcome
  read from a Job it does not own;
- a Task cancelled (``spec.cancelled``) while Pending or Running ends cancelled (or failed with
  the BBS Fail's reason); the Job of a completed Task (cancelled or not) is stopped: finished,
  or being deleted;
- every Task ends Completed (or Resolving, or deleted after its callback or expiry — a Task taskop
  deletes was Completed, and its outcome holds the promises above);
- every callback is delivered, or the Task expired as BBS's do;
- a Job taskop does not own is never deleted;
- a task of the taskstore API's domain is never written by taskop (reconciler or callbacks)
  while it is Pending or Running, deleted or given a Job (its resourceVersion is the id a worker
  holds): only the doors write it;
- a Task expired as "not started" had no pod that started before it was expired;
- a Task whose creates are refused for good fails with the API server's message;
- no Job being deleted is kept by taskop's witness finalizer (and so a deleted namespace empties);
- no Task's command ever runs in two pods at once, and it runs at most ``1 + spec.retries`` times,
  whatever Kueue does (a queued Task evicted after a node took its pod fails, in Kueue's words);
- checked at the step: a LIST that fails part-way (410 Gone after some pages, or a 5xx) never
  drops from a cache an object that still exists.

Each new kind of move is counted, and the run asserts that every one of them happened.

A failing seed is printed; ``SIM_SEED=<n> pytest tests/unit/reconciler/test_simulation.py``
replays it.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest

from taskop.bbs.service import TaskService
from taskop.domain.decide import TASK_NAME_ANNOTATION
from taskop.domain.errors import BBSError
from taskop.domain.jobs import API_LABEL
from taskop.domain.lifecycle import REASON_CANCELLED
from taskop.domain.names import job_name
from taskop.domain.queueing import QUEUE_LABEL
from taskop.domain.timefmt import parse_ns
from taskop.kube.client import Gone
from taskop.reconciler.callbacks import CallbackPool
from taskop.reconciler.controller import LISTED_KINDS, Controller
from taskop.settings import Settings
from tests.unit.reconciler.fakecluster import (
    ClientTimeout,
    FakeCluster,
    JobTruth,
    Obj,
    PodTruth,
    ServerError,
)

REFUSALS = (
    'jobs.batch "x" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1',
    'admission webhook "deny.example.com" denied the request: no',
    'Job.batch "x" is invalid: spec.template: Invalid value',
    # taskop's own RBAC: retried (an admin fixes it), until the pending expiry fails the Task
    'jobs.batch is forbidden: User "taskop" cannot create resource "jobs" in API group "batch"',
)

NS = "sim"
EPOCH = 1_800_000_000 * 10**9
SCHEDULES = int(os.environ.get("SIM_SCHEDULES", "2000"))
_PROFILES = Path(tempfile.mkdtemp(prefix="taskop-sim-")) / "profiles.yaml"
_PROFILES.write_text(
    "domains:\n  lenient: {unenforceable: warn}\n  work: {run: taskstore}\n"
    "  queued: {queueName: cf}\n"
)
ICMP = {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}}
SETTINGS = Settings(
    domain_profiles_file=str(_PROFILES),
    namespace=NS,
    pod_create_grace_period=5.0,
    kick_task_duration=30.0,
    expire_completed_task_duration=120.0,
    image_pull_grace_period=60.0,
    bbs_namespace=NS,
    kueue_enabled=True,
)
GLANCE_TYPE_LABEL = "taskop.dev/glance-type"  # taskop.glance.model.TYPE_LABEL
STORE_GROUP = "taskstore.taskop.dev/group"  # taskop.taskstore.model.GROUP
STORE_DATA = "taskstore.taskop.dev/data"
LIVE = ("Pending", "Running")
NEW_MOVES = (
    "pod deleted",
    "evicted",
    "node deleted",
    "node added",
    "image pull failure",
    "oom",
    "deadline",
    "pod replaced",  # retries: a second pod of one Job
    "recreated",
    "recreated over its old Job",
    "namespace deleted",
    "list gone",
    "bbs cancel",
    "bbs fail",
    "cancel split",  # spec.cancelled written, the status write not
    "door interleaved",
    "glance create",
    "taskstore update",
    "quota exhausted",
    "watch stalled",
    "kueue admitted",
    "pod released",
    "kueue evicted before start",
    "kueue evicted after start",
    "kueue down",
)

Key = tuple[str, str]


class SimQueue:
    """The work queue, on the simulation's clock (same interface as `WorkQueue`)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.ready: set[Key] = set()
        self.timers: dict[Key, int] = {}
        self.failures: dict[Key, int] = {}

    def add(self, key: Key) -> None:
        self.ready.add(key)

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        due = self.sim.now + int(delay * 1e9)
        if key not in self.timers or self.timers[key] > due:
            self.timers[key] = due

    def add_rate_limited(self, key: Key) -> float:
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        delay = min(300.0, 0.1 * 2.0**n)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        self.failures.pop(key, None)

    def cancel_timer(self, key: Key) -> None:
        self.timers.pop(key, None)

    def release_due(self) -> None:
        for key, due in list(self.timers.items()):
            if due <= self.sim.now:
                del self.timers[key]
                self.ready.add(key)


class Receiver:
    """Completion callback receivers: some fail for a while, some give up, then all recover."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.healthy = False
        self.delivered: dict[str, bytes] = {}  # url → body

    async def post(self, url: str, body: bytes) -> tuple[bool, str, int]:
        if self.healthy or self.rng.random() < 0.4:
            self.delivered[url] = body
            return True, "", 1
        if self.rng.random() < 0.5:
            return False, "ClientError: give up", 1
        return False, "HTTP 503", 3


class NoView:
    """The BBS door's view, empty: every read goes to the API server (fresh)."""

    def get(self, guid: str) -> None:
        return None

    def observe(self, obj: Obj) -> None:
        pass

    def forget(self, name: str, uid: str, resource_version: str) -> None:
        pass


class DoorKube:
    """The BBS door's calls on the same cluster (not taskop's reconciler: not in its write log).
    The spec write may lose its answer (a timeout after the change); between the spec write and
    the status write the reconciler may run, or the status write may fail (5xx): the two writes
    of a Cancel with a fault, or a pass, between them."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.cluster = sim.cluster

    async def get_task(self, namespace: str, name: str) -> Obj | None:
        task = self.cluster.objects["tasks"].get((namespace, name))
        return None if task is None else {**task, "metadata": dict(task["metadata"])}

    async def patch_task(
        self, namespace: str, name: str, resource_version: str | None, patch: Obj
    ) -> Obj:
        written = self.cluster.write_task(namespace, name, resource_version, patch, None)
        if self.sim.rng.random() < 0.2:
            raise ClientTimeout  # made, but the answer is lost: the client sees an error
        return written

    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj:
        if self.sim.rng.random() < 0.5:
            await self.sim.interleave()
        if self.sim.rng.random() < 0.25:
            raise ServerError("500")
        return self.cluster.write_status(namespace, name, resource_version, status, None)


class Simulation:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = EPOCH
        self.cluster = FakeCluster(self.rng, lambda: self.now)
        self.cluster.gone_rate = 0.15
        self.receiver = Receiver(self.rng)
        self.cursors: dict[int, dict[str, int]] = {}  # per controller: next event per stream
        self.refuse: dict[str, str] = {}  # Task name → FailedCreate message
        self.failing: set[str] = set()  # Task names whose command exits 1
        self.flaky: set[str] = set()  # … exits 1 half the time
        self.oomy: set[str] = set()  # … is OOM-killed half the time
        self.bad_image: set[str] = set()  # … whose image never pulls
        self.manifests: dict[str, tuple[Obj, Obj]] = {}  # Task name → (spec, labels)
        self.foreign_jobs: list[str] = []
        self.door_cancels: set[str] = set()  # Task uids BBS Cancel was called for
        self.fail_reasons: dict[str, set[str]] = {}  # Task uid → BBS Fail reasons asked
        self.leased: dict[str, str] = {}  # taskstore Task name → its resourceVersion (its id)
        self.store_uids: set[str] = set()
        self.deleted_names: list[str] = []  # Tasks a user deleted, to be created again
        self.namespace_at = (
            self.rng.randint(30, 300) if self.rng.random() < 0.06 else None
        )  # the step at which the namespace is deleted
        self.steps = 0
        self.stalled: dict[str, int] = {}  # watch stream → the step until which it delivers nothing
        self.controller = self._new_controller()
        self.cursors[id(self.controller)] = {k: 0 for k in self.cluster.streams}
        self.standby: Controller | None = None  # the peering standby, when there is one
        self.restarts = 0
        self.takeovers = 0

    def clock(self) -> int:
        return self.now

    def _new_controller(self) -> Controller:
        queue = SimQueue(self)
        controller = Controller(
            self.cluster,
            SETTINGS,
            clock=self.clock,
            queue=queue,  # type: ignore[arg-type]
            rng=random.Random(self.rng.random()),
        )
        controller.callbacks = CallbackPool(
            self.cluster,
            SETTINGS,
            controller.enqueue_failed,
            post=self.receiver.post,
            clock=self.clock,
        )
        controller.enqueue = queue.add
        controller.list_tasks_on_activation = False  # the schedule lists (`list_tasks`)
        self.cursors[id(controller)] = {k: len(v) for k, v in self.cluster.streams.items()}
        return controller

    @property
    def cursor(self) -> dict[str, int]:
        return self.cursors[id(self.controller)]

    @property
    def queue(self) -> SimQueue:
        return self.controller.queue  # type: ignore[return-value]

    # --- the world
    def _manifest(self, name: str) -> tuple[Obj, Obj]:
        """A Task's spec and labels; what its pods do is decided here too, by name."""
        spec: Obj = {
            "image": "busybox",
            "action": {"run": {"path": "sh"}},
            "resultFile": "/tmp/result",
        }
        labels = {}
        if self.rng.random() < 0.3:
            spec["completionCallbackUrl"] = f"http://receiver/{name}"
            labels = {"taskop.dev/api": "bbs"}
        if self.rng.random() < 0.15:
            self.refuse[name] = self.rng.choice(
                (
                    'pods "x" is forbidden: violates PodSecurity "restricted:latest"',
                    'pods "x" is forbidden: exceeded quota: q',
                )
            )
        fate = self.rng.random()
        if fate < 0.15:
            self.failing.add(name)
        elif fate < 0.3:
            self.flaky.add(name)
        elif fate < 0.4:
            self.oomy.add(name)
        elif fate < 0.47:
            self.bad_image.add(name)
        if self.rng.random() < (0.6 if fate < 0.4 else 0.2):  # mostly where pods fail
            spec["retries"] = self.rng.randint(1, 2)
        if self.rng.random() < 0.12:
            spec["timeoutSeconds"] = self.rng.randint(5, 40)
        queued = self.rng.random()
        if queued < 0.2:  # through Kueue: its own queue, or its domain's
            spec["queueName"] = "team"
        elif queued < 0.3:
            spec["domain"] = "queued"
        if self.rng.random() < 0.2 and spec.get("domain") != "queued":
            spec["egressRules"] = [{"protocol": "all", "destinations": ["10.0.0.0/8"]}]
            if self.rng.random() < 0.5:  # runs under its domain's warn policy, recorded
                spec["domain"] = "lenient"
                spec["egressRules"].append(ICMP)
        return spec, labels

    def create_tasks(self) -> None:
        for i in range(self.rng.randint(1, 4)):
            name = f"task-{i}"
            spec, labels = self.manifests[name] = self._manifest(name)
            if self.rng.random() < 0.1:
                self.cluster.user_create_job(NS, job_name(name))
                self.foreign_jobs.append(job_name(name))
            elif self.rng.random() < 0.1:
                self.cluster.refuse_create[name] = self.rng.choice(REFUSALS)
            self.cluster.create_task(NS, name, spec, labels)
        if self.rng.random() < 0.3:  # a task a taskstore worker leases: taskop must not touch it
            self.add_store_task("leased")

    def add_store_task(self, name: str) -> None:
        spec = {
            "image": "taskstore",
            "action": {"run": {"path": "x"}},
            "domain": "work",
            "external": True,
        }
        created = self.cluster.create_task(NS, name, spec, {"taskop.dev/api": "taskstore"})
        if created is not None:
            self.leased[name] = created["metadata"]["resourceVersion"]
            self.store_uids.add(created["metadata"]["uid"])

    def kubelet(self, key: Key) -> None:
        pod = self.cluster.objects["pods"].get(key)
        if pod is None:
            return
        task = pod["metadata"]["annotations"][TASK_NAME_ANNOTATION]
        fails = task in self.failing or (task in self.flaky and self.rng.random() < 0.5)
        self.cluster.kubelet_step(
            key,
            exit_code=1 if fails else 0,
            oom=task in self.oomy and self.rng.random() < 0.5,
            bad_image=task in self.bad_image,
        )

    def deliver(self, kind: str, event: str | None, obj: Obj, c: Controller | None = None) -> None:
        c = c or self.controller
        if kind == "tasks":
            c.task_event(event, obj)
        elif kind == "jobs":
            if _managed(obj):  # the server-side label selector
                c.job_event(event, obj)
        elif kind == "pods":
            c.pod_event(event, obj)
        elif kind == "nodes":
            c.node_event(event, obj)
        elif kind == "workloads":
            c.workload_event(event, obj)
        elif event != "DELETED":
            c.failed_create_event(obj)

    def deliver_next(self, kind: str, *, twice: bool = False, c: Controller | None = None) -> bool:
        c = c or self.controller
        cursor = self.cursors[id(c)]
        stream = self.cluster.streams[kind]
        if cursor[kind] >= len(stream):
            return False
        event, obj = stream[cursor[kind]]
        cursor[kind] += 1
        self.deliver(kind, event, obj, c)
        if twice:
            self.deliver(kind, event, obj, c)
        return True

    # --- LISTs (a failed one must leave the caches as they were, or newer)
    def _held(self, c: Controller) -> tuple[dict[Key, str], dict[Key, str], set[tuple[Key, str]]]:
        cache = c.cache
        return (
            {k: e.uid for k, e in cache.tasks.items()},
            {k: e.uid for k, e in cache.jobs.items()},
            {(k, name) for k, pods in cache.pods.items() for name in pods},
        )

    async def listing(self, c: Controller, list_: Any) -> None:
        """Run one LIST (or a resync); when one failed part-way (whatever the controller made of
        it), check that nothing that still exists was dropped from the caches (a partial list
        is not the truth)."""
        before, gone, failed = self._held(c), self.cluster.gone, self.cluster.lists_failed
        try:
            await list_()
        finally:
            if self.cluster.gone > gone:
                self.cluster.moved("list gone")
            if self.cluster.lists_failed > failed:
                self._nothing_dropped(c, before)

    def _nothing_dropped(
        self, c: Controller, before: tuple[dict[Key, str], dict[Key, str], set[tuple[Key, str]]]
    ) -> None:
        """What ``c`` held before a failed LIST, and still exists, is still held."""
        tasks, jobs, pods = before
        cache, objects = c.cache, self.cluster.objects
        for key, uid in tasks.items():
            there = objects["tasks"].get(key)
            held = cache.tasks.get(key)
            assert there is None or there["metadata"]["uid"] != uid or held is not None, (
                f"a failed list dropped Task {key} from the cache; it still exists"
            )
        job_uids = {j["metadata"]["uid"] for j in objects["jobs"].values()}
        for key, uid in jobs.items():
            assert uid not in job_uids or key in cache.jobs, (
                f"a failed list dropped Job {uid} of {key} from the cache; it still exists"
            )
        for key, name in pods:
            assert (key[0], name) not in objects["pods"] or name in cache.pods.get(key, {}), (
                f"a failed list dropped pod {name} from the cache; it still exists"
            )

    async def relist(self, kind: str, c: Controller | None = None) -> None:
        """410 Gone: pending events are lost and the stream lists again. Tasks come as events,
        with no DELETED for what vanished (harsher than taskop's feed; the controller's own Task
        list, `Controller.list_tasks`, is the one that replaces); taskop's informers (Jobs, pods,
        nodes, FailedCreate Events) replace what they held."""
        c = c or self.controller
        self.cursors[id(c)][kind] = len(self.cluster.streams[kind])
        if kind == "tasks":
            for obj in list(self.cluster.objects[kind].values()):
                self.deliver(kind, None, obj, c)
            return
        replace = {
            "jobs": c.replace_jobs,
            "pods": c.replace_pods,
            "events": c.replace_failed_creates,
            "nodes": c.replace_nodes,
            "workloads": c.replace_workloads,
        }[kind]
        selector = "managed" if kind == "jobs" else None
        await self.listing(c, lambda: replace(self.cluster.list_pages(kind, NS, selector)))

    async def restart(self) -> None:
        """A new process: it knows nothing; its informers' first lists (and kopf's, and its own
        Task list) come in any order, later, as the schedule says — passes asked for meanwhile
        must wait for them."""
        self.restarts += 1
        self.controller = self._new_controller()

    async def fill_caches(self, c: Controller) -> None:
        """One of the lists a controller starts with, at random (nothing once all are done).
        kopf's Task list comes as events with no end mark; the controller's own Task list is
        the one that counts."""
        missing = sorted(LISTED_KINDS - c.listed)
        if not missing:
            return
        kind = self.rng.choice(missing)
        try:
            if kind != "tasks":
                await self.relist(kind, c)
            elif self.rng.random() < 0.5:
                await self.relist("tasks", c)
            else:
                await self.listing(c, c.list_tasks)
        except (ServerError, Gone):
            pass  # listed again later

    async def takeover(self) -> None:
        """Peering: the active replica stops (killed, or demoted and kept as the standby with
        its caches), and the standby — whose Task watch stood still (the harder case than taskop's
        feed, which keeps watching), while its other informers ran — becomes the active one. Its
        Task cache is stale until it lists the Tasks anew."""
        self.takeovers += 1
        old = self.controller
        if self.standby is None:
            self.standby = self._new_controller()
            self.standby.set_active(False)
        new, self.standby = self.standby, None
        if self.rng.random() < 0.5:
            old.set_active(False)
            self.standby = old
        new.set_active(True)
        self.controller = new

    async def run_pass(self, key: Key) -> None:
        self.queue.ready.discard(key)
        try:
            await self.controller.sync_task(key)
        except Exception:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)

    async def interleave(self) -> None:
        """The reconciler runs while a door is between two writes."""
        self.cluster.moved("door interleaved")
        while self.deliver_next("tasks"):
            pass
        self.queue.release_due()
        for key in sorted(self.queue.ready)[:2]:
            await self.run_pass(key)

    # --- the doors
    async def bbs(self) -> None:
        """BBS Cancel or Fail of any Task (through the real `TaskService`)."""
        tasks = sorted(
            (k for k, t in self.cluster.objects["tasks"].items()),
        )
        if not tasks:
            return
        task = self.cluster.objects["tasks"][self.rng.choice(tasks)]
        uid, name = task["metadata"]["uid"], task["metadata"]["name"]
        guid = str(task["spec"].get("guid") or name)
        service = TaskService(DoorKube(self), SETTINGS, NoView())  # type: ignore[arg-type]
        try:
            if self.rng.random() < 0.6:
                self.cluster.moved("bbs cancel")
                self.door_cancels.add(uid)
                await service.cancel(guid)
            else:
                reason = f"failed by a BBS client ({self.rng.randint(1, 3)})"
                self.cluster.moved("bbs fail")
                self.fail_reasons.setdefault(uid, set()).add(reason)
                await service.fail(guid, reason.encode())
        except (BBSError, ServerError, ClientTimeout):
            pass  # the client sees an error (and may call again: a later move)
        now = self.cluster.objects["tasks"].get((NS, name))
        if now is None or now["metadata"]["uid"] != uid:
            return
        state = (now.get("status") or {}).get("state") or "Pending"
        if now["spec"].get("cancelled") and state in LIVE:
            self.cluster.moved("cancel split")
        if name in self.leased and state not in LIVE:
            del self.leased[name]  # BBS completed it: BBS's again, not the taskstore's

    def glance_create(self) -> None:
        name = f"glance-{self.rng.randint(0, 2)}"
        if name not in self.manifests:
            self.manifests[name] = self._manifest(name)
        spec, labels = self.manifests[name]
        spec = {**spec, "guid": name, "ttlSecondsAfterFinished": self.rng.choice((0, 30))}
        labels = {API_LABEL: "glance", GLANCE_TYPE_LABEL: "echo"}
        self.manifests[name] = (spec, labels)
        if self.cluster.create_task(NS, name, spec, labels) is not None:
            self.cluster.moved("glance create")

    def taskstore_update(self) -> None:
        if not self.leased:
            self.add_store_task(f"store-{self.rng.randint(0, 1)}")
            return
        name = self.rng.choice(sorted(self.leased))
        patch = {"metadata": {"annotations": {STORE_DATA: str(self.rng.random())}}}
        written = self.cluster.user_patch_meta((NS, name), self.leased[name], patch)
        if written is not None:
            self.leased[name] = written["metadata"]["resourceVersion"]
            self.cluster.moved("taskstore update")

    def delete_and_recreate(self) -> None:
        """kubectl delete task; kubectl apply (the same manifest: a new uid, the same name)."""
        cluster = self.cluster
        if self.deleted_names and self.rng.random() < 0.5:
            name = self.deleted_names.pop(0)
            spec, labels = self.manifests[name]
            old_job = (NS, job_name(name)) in cluster.objects["jobs"]
            if cluster.create_task(NS, name, spec, labels) is not None:
                cluster.moved("recreated")
                if old_job:
                    cluster.moved("recreated over its old Job")
            return
        names = sorted(
            k
            for k, t in cluster.objects["tasks"].items()
            if t["metadata"]["name"] in self.manifests
        )
        if names:
            key = self.rng.choice(names)
            cluster.user_delete("tasks", key)
            if key not in cluster.objects["tasks"]:
                self.deleted_names.append(key[1])

    async def step(self) -> None:
        self.steps += 1
        if self.steps == self.namespace_at:
            self.cluster.delete_namespace()
            self.cluster.moved("namespace deleted")
        cluster = self.cluster
        queued_jobs = sorted(k for k, j in cluster.objects["jobs"].items() if _labelled_queued(j))
        if queued_jobs and self.rng.random() < 0.08:
            # Kueue: admits, requeues, says why one waits; now and then evicts an admitted one
            # (preempted, a PodsReady timeout, its queue stopped), whether its pod ran or not.
            key = self.rng.choice(queued_jobs)
            if self.rng.random() < 0.2:
                reason = self.rng.choice(("Preempted", "PodsReadyTimeout", "ClusterQueueStopped"))
                cluster.kueue_evict(key, reason)
            else:
                cluster.kueue_step(key)
        r = self.rng.random()
        if r < 0.30:
            kinds = [
                k
                for k in cluster.streams
                if self.cursor[k] < len(cluster.streams[k]) and self.stalled.get(k, 0) < self.steps
            ]
            if kinds:
                self.deliver_next(self.rng.choice(kinds), twice=self.rng.random() < 0.05)
        elif r < 0.50:
            self.queue.release_due()
            if self.queue.ready:
                await self.run_pass(self.rng.choice(sorted(self.queue.ready)))
        elif r < 0.55:
            pending = self.controller.callbacks.pending()
            if pending:
                await self.controller.callbacks.run_one(self.rng.choice(pending))
        elif r < 0.65:
            self.now += self.rng.randint(0, 3 * 10**9)
        elif r < 0.75:
            jobs = sorted(cluster.objects["jobs"])
            if jobs:
                key = self.rng.choice(jobs)
                task = key[1]  # job names are the task names here
                cluster.job_controller_step(key, refuse=self.refuse.get(task))
        elif r < 0.85:
            pods = sorted(cluster.objects["pods"])
            if pods:
                self.kubelet(self.rng.choice(pods))
        elif r < 0.87:
            try:
                kinds = ("tasks", "jobs", "pods", "events", "nodes", "workloads")
                await self.relist(self.rng.choice(kinds))
            except (ServerError, Gone):
                pass  # the informer lists again later
            if self.rng.random() < 0.1:
                try:
                    await self.listing(self.controller, self.controller.list_tasks)
                except (ServerError, Gone):
                    pass
        elif r < 0.885:
            cluster.fault_rate = self.rng.choice((0.0, 0.0, 0.2, 0.5))
        elif r < 0.89:
            cluster.kueue_down = self.rng.random() < 0.3  # its manager stops, or is back
        elif r < 0.895:
            await self.restart()
        elif r < 0.90:
            owned = [k for k, j in cluster.objects["jobs"].items() if j["metadata"].get("labels")]
            if owned:
                cluster.user_delete("jobs", self.rng.choice(sorted(owned)))  # kubectl delete job
        elif r < 0.905:
            tasks = sorted(k for k in cluster.objects["tasks"] if k[1] not in self.leased)
            if tasks:
                cluster.user_patch_spec(self.rng.choice(tasks), {"cancelled": True})
        elif r < 0.91:
            try:
                await self.listing(self.controller, self.controller.resync)
            except Exception:
                pass
        elif r < 0.95:
            await self.fill_caches(self.controller)
            if self.standby is not None:
                await self.fill_caches(self.standby)
                for kind in ("jobs", "pods", "events", "workloads"):  # kopf paused only Tasks
                    self.deliver_next(kind, c=self.standby)
        elif r < 0.953:
            await self.takeover()
        elif r < 0.954:
            self.now += 1900 * 10**9  # a long outage: past the pending expiry
        elif r < 0.962:
            cluster.gc_step()
            cluster.namespace_step()
        elif r < 0.970:
            running = sorted(k for k, p in cluster.objects["pods"].items() if _running(p))
            if running:
                cluster.moved("evicted")
                cluster.evict(self.rng.choice(running))
        elif r < 0.976:
            pods = sorted(cluster.objects["pods"])
            if pods:
                cluster.moved("pod deleted")
                cluster.user_delete("pods", self.rng.choice(pods))  # kubectl delete pod
        elif r < 0.978:
            nodes = cluster.live_nodes()
            if len(nodes) > 2:
                cluster.moved("node deleted")
                cluster.delete_node(self.rng.choice(nodes))
            else:  # a new node (never a deleted one's name: its pods are gone with it)
                cluster.moved("node added")
                cluster.add_node(f"node-{len(nodes) + len(cluster.nodes_deleted) + 1}")
        elif r < 0.983:
            self.delete_and_recreate()
        elif r < 0.987:
            await self.bbs()
        elif r < 0.993:
            self.glance_create()
        elif r < 0.9965:
            self.taskstore_update()
        elif r < 0.9975:
            # A quota exhausted (or a webhook installed) while a Task runs: its next pod (a
            # retry) cannot be created.
            names = sorted(k[1] for k in cluster.objects["jobs"] if k[1] in self.manifests)
            if names:
                name = self.rng.choice(names)
                self.refuse.setdefault(name, 'pods "x" is forbidden: exceeded quota: q')
                cluster.moved("quota exhausted")
        elif r < 0.9985:
            # A watch stalls (a slow connection, an overloaded API server): its events come late.
            kind = self.rng.choice(("tasks", "jobs", "pods", "events"))
            self.stalled[kind] = self.steps + self.rng.randint(30, 150)
            cluster.moved("watch stalled")

    async def settle(self) -> None:
        """No more faults; the world runs to completion."""
        cluster = self.cluster
        cluster.fault_rate = 0.0
        cluster.gone_rate = 0.0
        cluster.kueue_down = False
        self.receiver.healthy = True
        for kind in ("jobs", "pods", "events", "tasks", "nodes", "workloads"):
            await self.relist(kind)
        await self.controller.list_tasks()
        if any("cannot create" in refusal for refusal in cluster.refuse_create.values()):
            self.now += 1900 * 10**9  # RBAC never fixed: the pending expiry must end them
        for _ in range(400):
            for kind in cluster.streams:
                while self.deliver_next(kind):
                    pass
            cluster.gc_step()
            cluster.namespace_step()
            for key in sorted(cluster.objects["jobs"]):
                cluster.kueue_step(key)
                cluster.job_controller_step(key, refuse=self.refuse.get(key[1]))
            for key in sorted(cluster.objects["pods"]):
                self.kubelet(key)
            for kind in cluster.streams:
                while self.deliver_next(kind):
                    pass
            if self.rng.random() < 0.1:
                await self.controller.resync()
            self.queue.release_due()
            while self.queue.ready:
                await self.run_pass(sorted(self.queue.ready)[0])
            for key in self.controller.callbacks.pending():
                await self.controller.callbacks.run_one(key)
            if self._settled():
                return
            if not self.queue.ready and self.queue.timers:
                self.now = max(self.now, min(self.queue.timers.values()))
            else:
                self.now += 10**9
        await self.controller.resync()

    def _settled(self) -> bool:
        tasks = self.cluster.objects["tasks"].values()
        objects = self.cluster.objects
        return (
            all(
                (t.get("status") or {}).get("state") in ("Completed", "Resolving")
                and not (t["spec"].get("completionCallbackUrl"))
                for t in tasks
                if t["metadata"]["name"] not in self.leased
            )
            and not any(self.cursor[k] < len(self.cluster.streams[k]) for k in objects)
            and not any(j["metadata"].get("deletionTimestamp") for j in objects["jobs"].values())
            and not any(_active(j) and self._task_done(j) for j in objects["jobs"].values())
            and not (self.cluster.terminating and any(objects[k] for k in ("tasks", "jobs")))
        )

    def _task_done(self, job: Obj) -> bool:
        """Whether the Task owning ``job`` is Completed (or Resolving)."""
        owners = {r.get("uid") for r in job["metadata"].get("ownerReferences") or ()}
        return any(
            t["metadata"]["uid"] in owners
            and (t.get("status") or {}).get("state") in ("Completed", "Resolving")
            for t in self.cluster.objects["tasks"].values()
        )

    # --- what justifies an outcome (nothing invented)
    def _truth(self, uid: str) -> tuple[list[JobTruth], list[tuple[str, PodTruth]]]:
        """The Jobs created for Task ``uid`` and their pods, in creation order."""
        cluster = self.cluster
        jobs = [cluster.jobs[j] for j in cluster.jobs_created.get(uid, [])]
        return jobs, [(p, cluster.pods[p]) for job in jobs for p in job.pods]

    def _explained(self, task: Obj, reason: str) -> bool:
        """Whether the schedule did something that makes ``reason`` true of this Task (this
        uid: its own Job, its own pods)."""
        meta = task["metadata"]
        name, uid = meta["name"], meta["uid"]
        cluster = self.cluster
        jobs, pods = self._truth(uid)
        last = pods[-1][1] if pods else None
        # A pod's reason is the last pod's, or one whose later pods were all gone from the API
        # server when the Task completed (what is left to read).
        completed = cluster.completed_at.get(uid, 0)
        fates = {
            p.fate
            for i, (_, p) in enumerate(pods)
            if all(later.removed and later.removed_at < completed for _, later in pods[i + 1 :])
        }
        created = parse_ns(meta["creationTimestamp"])
        jname = job_name(name)
        bound = any(p.node for _, p in pods)
        stopped = bound or any(p.removed for _, p in pods)
        causes = {
            REASON_CANCELLED: uid in cluster.cancel_landed or uid in self.door_cancels,
            f"Job {jname} was deleted": any(j.deleted_by for j in jobs),
            f"Job {jname} exists and is not owned": jname in self.foreign_jobs,
            "pod could not be created": name in self.refuse,
            "Exited with status 1": "exit 1" in fates,
            "OOMKilled (exit status 137)": "oom" in fates,
            "exit status 137": "deleted" in fates,  # killed by its deletion
            "evicted: ": "evicted" in fates,
            "node lost: ": "node lost" in fates,
            "cell disappeared before completion": any(
                p.node in cluster.nodes_deleted for _, p in pods
            ),
            "image pull failed: ": last is not None and last.pull_failed,
            "DeadlineExceeded: ": any(j.failed == "DeadlineExceeded" for j in jobs),
            "job failed: BackoffLimitExceeded": any(
                j.failed == "BackoffLimitExceeded" for j in jobs
            ),
            # the result of a pod that is gone (with its Job, or by itself)
            f"the pod of Job {jname} was deleted": any(
                p.fate == "succeeded" and p.removed for _, p in pods
            ),
            f"pod {jname}-": any(p.fate == "succeeded" and p.removed for _, p in pods),
            "not started within time limit": self.now - created > 1800 * 10**9,
            # Kueue evicted its Workload, or someone deleted its released pod, once a node had
            # taken a pod of it (it may have run): never run again
            # (or its released pod went while taskop did not see it go — a restart, a re-list
            # — and it may have run: taskop is conservative there, docs/kueue.md)
            "Preempted to accommodate a workload": uid in cluster.evicted_tasks and stopped,
            "The workload is evicted": uid in cluster.evicted_tasks and stopped,
            f"Job {jname} was suspended (evicted by Kueue)": uid in cluster.evicted_tasks
            and stopped,
            "taskop did not see released pod": any(p.removed for _, p in pods),
            "released pod ": bound
            and any(
                p.node
                and (p.removed or p.fate in ("deleted", "suspended", "node lost", "deadline"))
                for _, p in pods
            ),
            "Kubernetes refused its Job": name in cluster.refuse_create,
            "invalid spec: Kubernetes refused its Job": name in cluster.refuse_create,
        }
        if reason in self.fail_reasons.get(uid, ()):
            return True
        return any(reason.startswith(prefix) and ok for prefix, ok in causes.items())

    def _check_outcome(self, task: Obj) -> None:
        """A Completed Task's outcome holds the promises (module docstring)."""
        cluster = self.cluster
        status: dict[str, Any] = task.get("status") or {}
        name, uid = task["metadata"]["name"], task["metadata"]["uid"]
        assert status.get("state") in ("Completed", "Resolving"), (name, status)
        landed = cluster.cancel_landed.get(uid)
        if status["failed"]:
            reason = status["failureReason"]
            assert self._explained(task, reason), (name, uid, status)
            if landed in LIVE:  # cancelled while live: nothing else may be its outcome
                assert reason in {REASON_CANCELLED, *self.fail_reasons.get(uid, ())}, (
                    name,
                    f"cancelled while {landed}, but completed otherwise",
                    status,
                )
            return
        assert landed not in LIVE, (name, f"cancelled while {landed}, but succeeded", status)
        _, pods = self._truth(uid)
        succeeded = [pod_uid for pod_uid, p in pods if p.fate == "succeeded"]
        assert succeeded, (name, "succeeded, but no pod of its own Job did", status)
        assert status["result"] == cluster.results.get(succeeded[-1]), (name, status)

    # --- the promises
    def check(self) -> None:
        cluster = self.cluster
        for uid, jobs in cluster.jobs_created.items():
            assert len(jobs) <= 1, f"Task {uid} got {len(jobs)} Jobs: {jobs}"
        assert not cluster.concurrent_runs, (
            f"two pods ran one Task's command at once: {cluster.concurrent_runs}"
        )
        for task, _ in [(t, None) for t in cluster.objects["tasks"].values()] + list(
            cluster.task_deletes
        ):
            retries = int(task["spec"].get("retries") or 0)
            _, pods = self._truth(task["metadata"]["uid"])
            ran = [p.name for _, p in pods if p.ran]
            assert len(ran) <= 1 + retries, (
                f"Task {task['metadata']['name']} ({task['metadata']['uid']}) ran {len(ran)} times"
                f" with retries {retries}: {ran}"
            )
            if _queued(task):
                # Under Kueue: once a pod that ran was stopped (Kueue's suspension, a deletion),
                # no pod of the Task runs again; only a pod that failed by itself is retried.
                stopped = False
                for _, p in pods:
                    assert not (stopped and p.ran), (
                        f"queued Task {task['metadata']['name']} ran again after a pod of it"
                        f" was stopped: {[(q.name, q.fate, q.ran) for _, q in pods]}"
                    )
                    stopped = stopped or (p.ran and p.fate in ("suspended", "deleted"))
        assert not cluster.unguarded_jobs, (
            f"Jobs created before their egress policy: {cluster.unguarded_jobs}"
        )
        for call, uid, state, domain in cluster.task_writes:
            assert not (domain == "work" and state in LIVE), (
                f"taskop wrote ({call}) taskstore task {uid} while it was {state}"
            )
        for name, rv in self.leased.items():
            leased = cluster.objects["tasks"].get((NS, name))
            if cluster.terminating:
                continue  # the namespace controller deleted it
            assert leased is not None, f"taskstore task {name} was deleted"
            assert leased["metadata"]["resourceVersion"] == rv, f"taskstore task {name} written"
        for uid in self.store_uids:
            assert not cluster.jobs_created.get(uid), f"taskstore task {uid} got a Job"
        for uid, expired in cluster.expired_at.items():
            started = cluster.started_at.get(uid)
            assert started is None or started > expired, (
                f"Task {uid} expired as not started, but its pod started before (commit "
                f"{started} < {expired})"
            )
        for task in cluster.objects["tasks"].values():
            status: dict[str, Any] = task.get("status") or {}
            name = task["metadata"]["name"]
            if name in self.leased:
                continue
            refusal = cluster.refuse_create.get(name)
            if refusal and task["metadata"]["uid"] not in cluster.cancel_landed:
                reason = str(status.get("failureReason"))
                expired = reason.startswith("not started") and self._explained(task, reason)
                said = refusal in reason and "cannot create" not in refusal
                assert status.get("failed") and (said or expired), (
                    name,
                    "refused, but not failed with the API server's message (or expired)",
                )
            if cluster.jobs_created.get(task["metadata"]["uid"]) and ICMP in (
                task["spec"].get("egressRules") or []
            ):
                enforced = [c for c in status.get("conditions", []) if c["type"] == "Enforced"]
                assert [c["status"] for c in enforced] == ["False"], (name, "unenforced, unsaid")
            self._check_outcome(task)
            assert not task["spec"].get("completionCallbackUrl"), (name, "callback never done")
        for deleted, when in cluster.task_deletes:
            url = deleted["spec"].get("completionCallbackUrl")
            status = deleted.get("status") or {}
            expired = status.get("firstCompletedAt") is not None
            assert url in self.receiver.delivered or expired, (deleted, when)
            if deleted["metadata"]["uid"] not in self.store_uids:
                self._check_outcome(deleted)
        foreign = {
            j["metadata"]["uid"]
            for j in cluster.objects["jobs"].values()
            if not j["metadata"].get("ownerReferences")
        }
        if not cluster.terminating:
            assert len(foreign) == len(self.foreign_jobs), "a Job taskop does not own was deleted"
        for job_uid, owner in cluster.job_deletes:
            assert owner, f"taskop deleted Job {job_uid}, which no Task owns"
        for job in cluster.objects["jobs"].values():
            stuck = job["metadata"].get("deletionTimestamp") and job["metadata"].get("finalizers")
            assert not stuck, f"Job {job['metadata']['name']} is kept by taskop's finalizer"
            assert not (_active(job) and self._task_done(job)), (
                f"Job {job['metadata']['name']} runs on, but its Task is completed"
            )
        if cluster.terminating:
            left = {k: sorted(cluster.objects[k]) for k in ("tasks", "jobs", "pods")}
            assert not any(left.values()), f"the deleted namespace keeps {left}"


def _labelled_queued(job: Obj) -> bool:
    return QUEUE_LABEL in (job["metadata"].get("labels") or {})


def _queued(task: Obj) -> bool:
    return bool(task["spec"].get("queueName")) or task["spec"].get("domain") == "queued"


def _running(pod: Obj) -> bool:
    return pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")


def _active(job: Obj) -> bool:
    """A Job of taskop's that is neither finished nor being deleted."""
    meta = job["metadata"]
    return bool(
        meta.get("labels")
        and not job["status"].get("conditions")
        and not meta.get("deletionTimestamp")
    )


def _managed(obj: Obj) -> bool:
    return bool(obj["metadata"].get("labels"))


async def run_schedule(seed: int, steps: int = 300) -> Simulation:
    sim = Simulation(seed)
    sim.create_tasks()
    for _ in range(steps):
        await sim.step()
    await sim.settle()
    sim.check()
    return sim


def test_thousands_of_schedules_keep_every_promise() -> None:
    seeds = [int(os.environ["SIM_SEED"])] if "SIM_SEED" in os.environ else range(SCHEDULES)
    restarts = faults = takeovers = expiries = refusals = 0
    moves: dict[str, int] = {}
    for seed in seeds:
        try:
            sim = asyncio.run(run_schedule(seed))
        except AssertionError as e:
            pytest.fail(f"seed {seed} broke a promise (replay: SIM_SEED={seed}): {e}")
        restarts += sim.restarts
        faults += sum(sim.cluster.calls.values())
        takeovers += sim.takeovers
        expiries += len(sim.cluster.expired_at)
        refusals += len(sim.cluster.refuse_create)
        for move, n in sim.cluster.moves.items():
            moves[move] = moves.get(move, 0) + n
    if len(seeds) < 200:
        return  # a replay, or a few schedules: too few for every kind of move
    assert restarts > 0 and faults > 0  # the schedules did restart and call the API
    assert takeovers > 0 and expiries > 0 and refusals > 0
    missing = [move for move in NEW_MOVES if not moves.get(move)]
    assert not missing, f"these moves never happened: {missing} (of {moves})"


async def test_a_task_that_runs_and_succeeds_costs_two_task_writes_one_job_write_no_reads() -> None:
    """The API floor of the happy path: the Job's create, Running (its first status write, which
    names the Job: the witness), Completed, and the witness finalizer's release once the Job
    finished (a Job released while it still ran would be synced again: a Job status write)."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    cluster.large_results = 0.0  # inline in the termination message: no log read
    cluster.create_task(
        NS, "a", {"image": "busybox", "action": {"run": {"path": "sh"}}, "resultFile": "/r"}
    )
    await _started(sim)  # the operator's start: its lists, once per process
    cluster.calls.clear()

    async def settle() -> None:
        for kind in cluster.streams:
            while sim.deliver_next(kind):
                pass
        sim.queue.release_due()
        while sim.queue.ready:
            await sim.run_pass(sorted(sim.queue.ready)[0])

    released_while: list[list[str]] = []  # the Job's conditions when its finalizer went
    release = cluster.release_job

    async def release_job(namespace: str, name: str, uid: str, finalizer: str) -> Obj | None:
        job = cluster.objects["jobs"][(namespace, name)]
        released_while.append([c["type"] for c in job.get("status", {}).get("conditions", [])])
        return await release(namespace, name, uid, finalizer)

    cluster.release_job = release_job  # type: ignore[method-assign]
    await settle()
    for _ in range(6):  # pod created; pod running, then done; pod counted; Job complete
        for key in sorted(cluster.objects["jobs"]):
            cluster.job_controller_step(key)
        await settle()
        for key in sorted(cluster.objects["pods"]):
            cluster.kubelet_step(key)
        await settle()

    (task,) = cluster.objects["tasks"].values()
    assert (task["status"]["state"], task["status"]["failed"]) == ("Completed", False)
    assert cluster.calls == {"create_job": 1, "release_job": 1, "replace_task_status": 2}
    assert released_while == [["Complete"]]  # not while its pod ran
    # Finished, its Job finished and released: the operator holds the Task's entry only.
    assert sim.controller.cache.job((NS, "a")) is None
    assert sim.controller.cache.pods_of((NS, "a")) == []


async def test_a_failed_jobs_outcome_is_its_last_pods_even_while_the_pod_watch_lags() -> None:
    """retries: 1. The first pod exits 1, the second is OOM-killed; the Job fails. The pod watch
    lags: taskop holds the first pod's end, not yet the second pod. The outcome is the last
    pod's (OOMKilled), never the first's."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    spec = {"image": "busybox", "action": {"run": {"path": "sh"}}, "retries": 1}
    task = cluster.create_task(NS, "a", spec)
    assert task is not None
    await _started(sim)

    job_key = (NS, "a")
    await _reconcile(sim, *cluster.streams)
    cluster.job_controller_step(job_key)  # the first pod
    (first,) = cluster.objects["pods"]
    cluster.kubelet_step(first)  # runs
    cluster.kubelet_step(first, exit_code=1)  # exits 1
    await _reconcile(sim, *cluster.streams)
    for _ in range(3):  # counted: uncounted, finalizer released, failed: 1
        cluster.job_controller_step(job_key)
    sim.now += 11 * 10**9  # past the pod-failure back-off
    cluster.job_controller_step(job_key)  # the second pod
    (second,) = (k for k in cluster.objects["pods"] if k != first)
    cluster.kubelet_step(second)
    cluster.kubelet_step(second, oom=True)
    for _ in range(4):  # counted, then Failed: BackoffLimitExceeded
        cluster.job_controller_step(job_key)
    assert cluster.objects["jobs"][job_key]["status"]["conditions"][0]["type"] == "Failed"
    await _reconcile(sim, "jobs", "tasks")  # the pod watch lags behind
    await _reconcile(sim, *cluster.streams)

    status = cluster.objects["tasks"][(NS, "a")]["status"]
    assert status["state"] == "Completed" and status["failed"], status
    assert status["failureReason"].startswith("OOMKilled"), status["failureReason"]


async def _started(sim: Simulation) -> None:
    """The operator's start: its lists, once."""
    for kind in ("jobs", "pods", "events", "nodes"):
        await sim.relist(kind)
    await sim.controller.list_tasks()


async def _reconcile(sim: Simulation, *kinds: str) -> None:
    """Deliver the pending events of ``kinds``, then run every pass that is due."""
    for kind in kinds:
        while sim.deliver_next(kind):
            pass
    sim.queue.release_due()
    while sim.queue.ready:
        await sim.run_pass(sorted(sim.queue.ready)[0])


async def _running_on_a_node(sim: Simulation, name: str) -> str:
    """A Task whose pod runs on a node: its cell."""
    cluster = sim.cluster
    cluster.create_task(NS, name, {"image": "busybox", "action": {"run": {"path": "sh"}}})
    await _reconcile(sim, *cluster.streams)
    cluster.job_controller_step((NS, job_name(name)))  # the pod
    (pod,) = (
        key
        for key, pod in cluster.objects["pods"].items()
        if pod["metadata"]["annotations"][TASK_NAME_ANNOTATION] == name
    )
    cluster.kubelet_step(pod)  # it runs
    await _reconcile(sim, *cluster.streams)
    status = cluster.objects["tasks"][(NS, name)]["status"]
    assert status["state"] == "Running", status
    return str(status["cellId"])


async def test_a_node_deleted_while_no_replica_watched_is_lost_at_the_next_list() -> None:
    """The operator restarts; the Task's node is deleted before the new process lists the nodes,
    so no watch ever reports it deleted. The list does not name it and the Task, Running there,
    is older than the list: it fails as its cell disappeared (before the pod GC fails its pod)."""
    sim = Simulation(seed=1)
    await _started(sim)
    cell = await _running_on_a_node(sim, "a")
    await sim.restart()
    sim.cluster.delete_node(cell)
    await _started(sim)
    await _reconcile(sim, *sim.cluster.streams)

    status = sim.cluster.objects["tasks"][(NS, "a")]["status"]
    assert (status["state"], status["failureReason"]) == (
        "Completed",
        "cell disappeared before completion",
    )


async def test_a_cell_the_node_watch_has_yet_to_report_is_not_lost() -> None:
    """A node is added after the operator listed the nodes, and its watch lags: a Task that
    runs there names a cell taskop does not know yet. It is newer than the list, so the cell is
    not taken for lost; once the node is deleted, it is."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    await _started(sim)
    for node in cluster.live_nodes():
        cluster.delete_node(node)
    cluster.add_node("late")
    await _reconcile(sim, "tasks", "jobs", "pods", "events")  # the node watch lags
    cluster.create_task(NS, "a", {"image": "busybox", "action": {"run": {"path": "sh"}}})
    await _reconcile(sim, "tasks", "jobs", "pods", "events")
    cluster.job_controller_step((NS, "a"))
    (pod,) = cluster.objects["pods"]
    cluster.kubelet_step(pod)
    await _reconcile(sim, "tasks", "jobs", "pods", "events")
    sim.controller.enqueue((NS, "a"))  # a pass with nothing new
    await _reconcile(sim, "tasks", "jobs", "pods", "events")
    status = cluster.objects["tasks"][(NS, "a")]["status"]
    assert (status["state"], status["cellId"]) == ("Running", "late"), status

    cluster.delete_node("late")
    await _reconcile(sim, *cluster.streams)
    status = cluster.objects["tasks"][(NS, "a")]["status"]
    assert status["failureReason"] == "cell disappeared before completion", status


async def test_a_task_created_again_is_not_confused_by_its_predecessors_late_job_events() -> None:
    """kubectl replace --force: the Task goes and comes back (a new uid) while the Job watch still
    has the earlier Task's Job's events to deliver. The new Task's Job, held from its create, is
    never replaced by the earlier one's (it would fail the Task as not owning its Job)."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    spec = {"image": "busybox", "action": {"run": {"path": "sh"}}}
    cluster.create_task(NS, "a", spec)
    await _started(sim)
    await _reconcile(sim, "tasks")  # the first Job, from its create (its events not delivered)
    cluster.user_delete("tasks", (NS, "a"))
    cluster.gc_step()  # the first Job goes
    await _reconcile(sim, "tasks")
    created = cluster.create_task(NS, "a", spec)
    assert created is not None
    await _reconcile(sim, "tasks")  # the second Job, from its create
    assert len(cluster.jobs_created[created["metadata"]["uid"]]) == 1
    while sim.deliver_next("jobs"):  # the first Job's events, late, one pass after each
        await _reconcile(sim)
    await _reconcile(sim, *cluster.streams)
    status = cluster.objects["tasks"][(NS, "a")].get("status") or {}  # no news yet: no write
    assert not status.get("failed"), status["failureReason"]


async def test_the_pending_expiry_finds_a_job_whose_witness_was_lost() -> None:
    """A pass creates the Job, then its witness write fails; the Job watch lags. Past the pending
    expiry the Task is not expired as "not started" while that Job's pod runs."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    cluster.create_task(NS, "a", {"image": "busybox", "action": {"run": {"path": "sh"}}})
    await _started(sim)
    write = cluster.replace_task_status

    async def lost(namespace: str, name: str, resource_version: str, status: Obj) -> Obj:
        raise ServerError("500")

    cluster.replace_task_status = lost  # type: ignore[method-assign]
    await _reconcile(sim, "tasks")  # the Job is made; the witness write fails
    cluster.replace_task_status = write  # type: ignore[method-assign]
    (job,) = cluster.objects["jobs"]
    cluster.job_controller_step(job)
    (pod,) = cluster.objects["pods"]
    cluster.kubelet_step(pod)  # it runs
    sim.controller.cache.drop_job((NS, "a"))  # as if its create answer never came
    sim.now += 1900 * 10**9  # past the pending expiry; the Job and pod watches lag
    for _ in range(3):
        sim.now += 2 * 10**9
        await _reconcile(sim, "tasks")
    status = cluster.objects["tasks"][(NS, "a")]["status"]
    assert status.get("state") == "Running", status
    assert not cluster.expired_at
