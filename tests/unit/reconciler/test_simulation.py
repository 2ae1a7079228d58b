"""A deterministic simulation of the reconcile core under seeded schedules.

It drives the real `Controller` (cache, pure `decide`, writes, callbacks) against `FakeCluster`,
choosing at every step, from a seeded RNG, one of: deliver the next event of a watch stream,
deliver one twice, drop a stream's pending events and re-list (410 Gone), run a queued pass, run a
callback, advance the clock (now and then past the pending expiry, as after a long outage), step
the Job controller or kubelet, delete a Job or cancel a Task as a user would, inject API faults
(5xx that change nothing, timeouts after the change), restart the operator (a new Controller that
knows nothing, whose caches then fill in any order while passes are asked for), or hand over to
the peering standby (kopf paused its Task watch while the other replica worked; its Job, pod and
Event informers kept running). Some Tasks' creates are refused for good (a 403 from a quota or a
webhook, a 422). Then faults stop and everything settles.

Invariants checked after every schedule:
- at most one Job per Task, ever;
- a Task that Completed successfully holds exactly the result its pod wrote; a failed one says why;
- every Task ends Completed (or Resolving, or deleted after its callback or expiry);
- every callback is delivered, or the Task expired as BBS's do;
- a Job taskop does not own is never deleted;
- a task of the taskstore API's domain is never written, deleted or given a Job (its
  resourceVersion is the id a worker holds);
- a Task expired as "not started" had no pod that started before it was expired;
- a Task whose creates are refused for good fails with the API server's message;
- no Job being deleted is kept by taskop's witness finalizer.

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

from taskop.domain.decide import TASK_NAME_ANNOTATION
from taskop.domain.names import job_name
from taskop.reconciler.callbacks import CallbackPool
from taskop.reconciler.controller import LISTED_KINDS, Controller
from taskop.settings import Settings
from tests.unit.reconciler.fakecluster import FakeCluster, Obj, ServerError

REFUSALS = (
    'jobs.batch "x" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1',
    'admission webhook "deny.example.com" denied the request: no',
    "Job.batch \"x\" is invalid: spec.template: Invalid value",
    # taskop's own RBAC: retried (an admin fixes it), until the pending expiry fails the Task
    'jobs.batch is forbidden: User "taskop" cannot create resource "jobs" in API group "batch"',
)

NS = "sim"
EPOCH = 1_800_000_000 * 10**9
SCHEDULES = int(os.environ.get("SIM_SCHEDULES", "2000"))
_PROFILES = Path(tempfile.mkdtemp(prefix="taskop-sim-")) / "profiles.yaml"
_PROFILES.write_text("domains:\n  lenient: {unenforceable: warn}\n  work: {run: taskstore}\n")
ICMP = {"protocol": "icmp", "destinations": ["0.0.0.0/0"], "icmpInfo": {"type": 8, "code": 0}}
SETTINGS = Settings(
    domain_profiles_file=str(_PROFILES),
    namespace=NS,
    pod_create_grace_period=5.0,
    kick_task_duration=30.0,
    expire_completed_task_duration=120.0,
    image_pull_grace_period=60.0,
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
        delay = min(300.0, 0.1 * 2**n)
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


class Simulation:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = EPOCH
        self.cluster = FakeCluster(self.rng, lambda: self.now)
        self.receiver = Receiver(self.rng)
        self.cursors: dict[int, dict[str, int]] = {}  # per controller: next event per stream
        self.refuse: dict[str, str] = {}  # Task name → FailedCreate message
        self.failing: set[str] = set()  # Task names whose command exits 1
        self.foreign_jobs: list[str] = []
        self.cancelled: set[str] = set()  # Task names a user cancelled
        self.jobs_deleted: set[str] = set()  # Task names whose Job a user deleted
        self.leased: dict[str, str] = {}  # taskstore Task name → its resourceVersion (its id)
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
            self.cluster,  # type: ignore[arg-type]
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
    def create_tasks(self) -> None:
        for i in range(self.rng.randint(1, 4)):
            name = f"task-{i}"
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
            if self.rng.random() < 0.2:
                self.failing.add(name)
            if self.rng.random() < 0.2:
                spec["egressRules"] = [{"protocol": "all", "destinations": ["10.0.0.0/8"]}]
                if self.rng.random() < 0.5:  # runs under its domain's warn policy, recorded
                    spec["domain"] = "lenient"
                    spec["egressRules"].append(ICMP)
            if self.rng.random() < 0.1:
                self.cluster.user_create_job(NS, job_name(name))
                self.foreign_jobs.append(job_name(name))
            elif self.rng.random() < 0.1:
                self.cluster.refuse_create[name] = self.rng.choice(REFUSALS)
            self.cluster.create_task(NS, name, spec, labels)
        if self.rng.random() < 0.3:  # a task a taskstore worker leases: taskop must not touch it
            leased = {"image": "taskstore", "action": {"run": {"path": "x"}}, "domain": "work"}
            created = self.cluster.create_task(NS, "leased", {**leased, "external": True})
            self.leased[created["metadata"]["name"]] = created["metadata"]["resourceVersion"]

    def deliver(self, kind: str, event: str | None, obj: Obj, c: Controller | None = None) -> None:
        c = c or self.controller
        if kind == "tasks":
            c.task_event(event, obj)
        elif kind == "jobs":
            if _managed(obj):  # the server-side label selector
                c.job_event(event, obj)
        elif kind == "pods":
            c.pod_event(event, obj)
        elif event != "DELETED":
            c.failed_create_event(obj)

    def deliver_next(
        self, kind: str, *, twice: bool = False, c: Controller | None = None
    ) -> bool:
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

    async def relist(self, kind: str, c: Controller | None = None) -> None:
        """410 Gone: pending events are lost and the stream lists again. kopf (Tasks) delivers
        the list as events, with no DELETED for what vanished; taskop's informers (Jobs, pods,
        FailedCreate Events) replace what they held."""
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
        }[kind]
        await replace(self.cluster.list_pages(kind, NS, "managed" if kind == "jobs" else None))

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
                await c.list_tasks()
        except ServerError:
            pass  # listed again later

    async def takeover(self) -> None:
        """Peering: the active replica stops (killed, or demoted and kept as the standby with
        its caches), and the standby — whose Task watch kopf paused, while its own informers ran
        — becomes the active one. Its Task cache is stale until it lists the Tasks anew."""
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

    async def step(self) -> None:
        r = self.rng.random()
        cluster = self.cluster
        if r < 0.30:
            kinds = [k for k in cluster.streams if self.cursor[k] < len(cluster.streams[k])]
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
                key = self.rng.choice(pods)
                task = cluster.objects["pods"][key]["metadata"]["annotations"][TASK_NAME_ANNOTATION]
                cluster.kubelet_step(key, exit_code=1 if task in self.failing else 0)
        elif r < 0.87:
            try:
                await self.relist(self.rng.choice(("tasks", "jobs", "pods", "events")))
            except ServerError:
                pass  # the informer lists again later
            if self.rng.random() < 0.1:
                try:
                    await self.controller.list_tasks()
                except ServerError:
                    pass
        elif r < 0.89:
            cluster.fault_rate = self.rng.choice((0.0, 0.0, 0.2, 0.5))
        elif r < 0.895:
            await self.restart()
        elif r < 0.90:
            owned = [k for k, j in cluster.objects["jobs"].items() if j["metadata"].get("labels")]
            if owned:
                key = self.rng.choice(sorted(owned))
                cluster.user_delete("jobs", key)  # kubectl delete job
                self.jobs_deleted.add(key[1])
        elif r < 0.905:
            tasks = sorted(k for k in cluster.objects["tasks"] if k[1] not in self.leased)
            if tasks:
                key = self.rng.choice(tasks)
                cluster.user_patch_spec(key, {"cancelled": True})
                self.cancelled.add(key[1])
        elif r < 0.91:
            try:
                await self.controller.resync()
            except Exception:
                pass
        elif r < 0.95:
            await self.fill_caches(self.controller)
            if self.standby is not None:
                await self.fill_caches(self.standby)
                for kind in ("jobs", "pods", "events"):  # kopf paused only its Task watch
                    self.deliver_next(kind, c=self.standby)
        elif r < 0.953:
            await self.takeover()
        elif r < 0.954:
            self.now += 1900 * 10**9  # a long outage: past the pending expiry

    async def settle(self) -> None:
        """No more faults; the world runs to completion."""
        cluster = self.cluster
        cluster.fault_rate = 0.0
        self.receiver.healthy = True
        for kind in ("jobs", "pods", "events", "tasks"):
            await self.relist(kind)
        await self.controller.list_tasks()
        if any("cannot create" in refusal for refusal in cluster.refuse_create.values()):
            self.now += 1900 * 10**9  # RBAC never fixed: the pending expiry must end them
        for _ in range(400):
            for kind in cluster.streams:
                while self.deliver_next(kind):
                    pass
            for key in sorted(cluster.objects["jobs"]):
                cluster.job_controller_step(key, refuse=self.refuse.get(key[1]))
            for key in sorted(cluster.objects["pods"]):
                task = cluster.objects["pods"][key]["metadata"]["annotations"][TASK_NAME_ANNOTATION]
                cluster.kubelet_step(key, exit_code=1 if task in self.failing else 0)
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
        return all(
            (t.get("status") or {}).get("state") in ("Completed", "Resolving")
            and not (t["spec"].get("completionCallbackUrl"))
            for t in tasks
            if t["metadata"]["name"] not in self.leased
        ) and not any(self.cursor[k] < len(self.cluster.streams[k]) for k in self.cluster.streams)

    def _explained(self, name: str, reason: str) -> bool:
        """Whether the schedule did something that makes ``reason`` true (nothing invented)."""
        causes = {
            "task was cancelled": name in self.cancelled,
            f"Job {name} was deleted": name in self.jobs_deleted,
            f"the pod of Job {name} was deleted": name in self.jobs_deleted,
            f"Job {name} exists and is not owned": name in self.foreign_jobs,
            "pod could not be created": name in self.refuse,
            "exit status 1": name in self.failing,
            "Exited with status 1": name in self.failing,
            "pod ": name in self.jobs_deleted,  # its pod went with the Job: result lost
            "job failed": name in self.failing,
            "not started within time limit": self.now - EPOCH > 1800 * 10**9,
            "Kubernetes refused its Job": name in self.cluster.refuse_create,
            "invalid spec: Kubernetes refused its Job": name in self.cluster.refuse_create,
        }
        return any(reason.startswith(prefix) and ok for prefix, ok in causes.items())

    # --- the promises
    def check(self) -> None:
        cluster = self.cluster
        for uid, jobs in cluster.jobs_created.items():
            assert len(jobs) <= 1, f"Task {uid} got {len(jobs)} Jobs: {jobs}"
        assert not cluster.unguarded_jobs, (
            f"Jobs created before their egress policy: {cluster.unguarded_jobs}"
        )
        for name, rv in self.leased.items():
            leased = cluster.objects["tasks"].get((NS, name))
            assert leased is not None, f"taskstore task {name} was deleted"
            assert leased["metadata"]["resourceVersion"] == rv, f"taskstore task {name} written"
            assert not cluster.jobs_created.get(leased["metadata"]["uid"]), f"{name} got a Job"
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
            if refusal and name not in self.cancelled:
                reason = str(status.get("failureReason"))
                expired = reason.startswith("not started") and self._explained(name, reason)
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
            assert status.get("state") in ("Completed", "Resolving"), (name, status)
            if status["failed"]:
                assert self._explained(name, status["failureReason"]), (name, status)
            else:
                jobs = cluster.jobs_created.get(task["metadata"]["uid"], [])
                assert jobs, (name, "succeeded without a Job")
                assert status["result"] == cluster.results.get(jobs[0]), (name, status)
                assert name not in self.failing, (name, "succeeded, but its command failed")
            assert not task["spec"].get("completionCallbackUrl"), (name, "callback never done")
        for deleted, when in cluster.task_deletes:
            url = deleted["spec"].get("completionCallbackUrl")
            status = deleted.get("status") or {}
            expired = status.get("firstCompletedAt") is not None
            assert url in self.receiver.delivered or expired, (deleted, when)
        foreign = {
            j["metadata"]["uid"]
            for j in cluster.objects["jobs"].values()
            if not j["metadata"].get("ownerReferences")
        }
        assert len(foreign) == len(self.foreign_jobs), "a Job taskop does not own was deleted"
        for job_uid, owner in cluster.job_deletes:
            assert owner, f"taskop deleted Job {job_uid}, which no Task owns"
        for job in cluster.objects["jobs"].values():
            stuck = job["metadata"].get("deletionTimestamp") and job["metadata"].get("finalizers")
            assert not stuck, f"Job {job['metadata']['name']} is kept by taskop's finalizer"


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
    assert restarts > 0 and faults > 0  # the schedules did restart and call the API
    assert takeovers > 0 and expiries > 0 and refusals > 0


async def test_a_task_that_runs_and_succeeds_costs_three_task_writes_and_no_reads() -> None:
    """The API floor of the happy path: Pending (the Job's witness), Running, Completed."""
    sim = Simulation(seed=1)
    cluster = sim.cluster
    cluster.create_task(
        NS, "a", {"image": "busybox", "action": {"run": {"path": "sh"}}, "resultFile": "/r"}
    )
    for kind in ("jobs", "pods", "events"):  # the operator's start: its lists, once per process
        await sim.relist(kind)
    await sim.controller.list_tasks()
    cluster.calls.clear()

    async def settle() -> None:
        for kind in cluster.streams:
            while sim.deliver_next(kind):
                pass
        sim.queue.release_due()
        while sim.queue.ready:
            await sim.run_pass(sorted(sim.queue.ready)[0])

    await settle()
    for _ in range(3):  # pod created; pod running, then done; Job complete
        for key in sorted(cluster.objects["jobs"]):
            cluster.job_controller_step(key)
        await settle()
        for key in sorted(cluster.objects["pods"]):
            cluster.kubelet_step(key)
        await settle()

    (task,) = cluster.objects["tasks"].values()
    assert (task["status"]["state"], task["status"]["failed"]) == ("Completed", False)
    assert cluster.calls == {"create_job": 1, "release_job": 1, "patch_task_status": 3}
