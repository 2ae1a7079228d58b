"""The reconcile core: watch events → cache → work queue → sync (read → decide → write).

Shaped like the Kubernetes Job controller: ``sync_task`` reads the caches (`Cache`), calls the pure
`decide`, then writes. Invariants (proven by ``tests/unit/reconciler/test_simulation.py`` under
seeded schedules of reordered, duplicated, dropped and delayed events, API faults and restarts, and
on the local cluster by ``tests/integration/test_reconcile_core.py`` and ``bench/chaos``):

1. **At most one Job per Task, ever** — `decide` (``status.jobName`` witnesses the Job; a vanished
   Job fails the Task) and `_write` (create the Job with the witness finalizer → write the witness
   → release the finalizer, in that order).
2. **No outcome lost or invented** — `decide` reads results only from a terminated pod; status
   writes carry the Task's resourceVersion (`Kube.replace_task_status`), so a stale pass loses.
3. **Nothing taskop does not own is touched** — every Job delete carries the Job's uid.
4. **Nothing dropped** — every error re-queues the key with per-key exponential backoff
   (`WorkQueue.add_rate_limited`); a jittered periodic re-list (`resync`) catches what a watch
   missed; callbacks run on their own bounded pool (`CallbackPool`).
5. **Any restart is harmless** — nothing here is needed across restarts: the cluster holds the
   truth, and a new process rebuilds the caches from the watches' initial lists.
6. **No pass before the caches are whole** — `sync_task` does nothing until Tasks, Jobs, pods,
   nodes and FailedCreate Events have each been listed since this process started
   (`caches_synced`), and again after each activation (a standby's Task cache stopped while a peer
   worked: it is listed anew first). A pass on half-filled caches would see a running Task
   without its pod (and expire it), or a witnessed Job's Task without its witness (and create a
   second Job); with the nodes listed, a Task whose node went while no replica watched fails at
   its first pass (`_cell_lost`).
7. **A permanent refusal fails the Task, saying why** — a create refused for good (422, or a 403
   from a quota, a webhook or an admission policy) is the Task's failure with the API server's
   message; only refusals that pass (a namespace being terminated, RBAC) are retried.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from taskop import metrics
from taskop.domain.decide import (
    LEGACY_FINALIZER,
    TASK_NAME_ANNOTATION,
    WITNESS_FINALIZER,
    DecideSettings,
    Decision,
    Observation,
    decide,
    done_with,
    owned_by,
)
from taskop.domain.fields import merge_patch
from taskop.domain.jobs import MANAGED_BY, RESULT_CONTAINER_NAME
from taskop.domain.names import job_name
from taskop.domain.outcome import OutcomeSettings
from taskop.domain.queueing import RELEASE_GATE, ended_on_its_own, obituary, slim_workload
from taskop.domain.spec import SpecError, TaskSpec, parse_spec
from taskop.domain.states import ConditionReason, TaskState
from taskop.kube.client import (
    AdmissionUnavailable,
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    Kube,
    NotFound,
    Obj,
)
from taskop.kube.feed import TaskFeed
from taskop.kube.informer import SYNCED, Stream, inform
from taskop.readiness import READINESS
from taskop.reconciler.cache import Cache, Key, rv_of
from taskop.reconciler.callbacks import CallbackPool
from taskop.reconciler.queue import ShutDown, WorkQueue
from taskop.settings import Settings

log = logging.getLogger("taskop.controller")

SPEC_CACHE_SIZE = 8192
"""Parsed specs kept (about 3 KB each) for live Tasks that run a Job: a burst of 5,000 passes
each Task three times or more, and parsing costs 0.12 ms. A finished Task's entry is dropped
(held Tasks cost their cache entry only), and an external Task's is never kept."""
FAILED_CREATE_SELECTOR = "involvedObject.kind=Job,reason=FailedCreate"
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
EventSink = Callable[[Obj, str, str, str], Awaitable[None]]  # (task, type, reason, message)
LISTED_KINDS = frozenset({"tasks", "jobs", "pods", "events", "nodes"})
"""What must have been listed before any pass (invariant 6)."""
LIST_RETRY_MAX = 30.0


class KubeAPI(Protocol):
    """The calls the core makes (`taskop.kube.client.Kube`, or the simulation's fake)."""

    async def replace_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj: ...
    async def patch_task_status(  # the callback workers' (`CallbackPool`)
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj: ...
    async def patch_task(
        self, namespace: str, name: str, resource_version: str | None, patch: Obj
    ) -> Obj: ...
    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None: ...
    async def get_job(self, namespace: str, name: str) -> Obj | None: ...
    async def create_job(self, namespace: str, body: Obj) -> Obj: ...
    async def create_network_policy(self, namespace: str, body: Obj) -> Obj: ...
    async def get_network_policy(self, namespace: str, name: str) -> Obj | None: ...
    async def delete_job(self, namespace: str, name: str, uid: str) -> bool: ...
    async def release_job(
        self, namespace: str, name: str, uid: str, finalizer: str
    ) -> Obj | None: ...
    async def list_pods(self, namespace: str, label_selector: str) -> list[Obj]: ...
    async def release_pod(self, namespace: str, name: str, uid: str, gate: str) -> Obj | None: ...
    async def deactivate_workload(self, namespace: str, name: str) -> None: ...
    async def read_pod_log(self, namespace: str, pod: str, container: str) -> str | None: ...
    def list_pages(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[Obj]: ...


class CreateRefused(Exception):
    """Creating a Task's Job or NetworkPolicy was refused for good; ``reason`` classifies it."""

    def __init__(self, reason: ConditionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


FINISHED_STATES = frozenset({TaskState.COMPLETED.value, TaskState.RESOLVING.value})


def decide_settings(settings: Settings) -> DecideSettings:
    return DecideSettings(
        convergence=settings.convergence(),
        jobs=settings.job_settings(),
        outcome=OutcomeSettings(image_pull_grace_period=settings.image_pull_grace_period),
        pod_create_grace_period=settings.pod_create_grace_period,
        succeeded_events=settings.succeeded_events,
        ttl_seconds_after_finished=(
            float(settings.ttl_seconds_after_finished)
            if settings.ttl_seconds_after_finished.strip()
            else None
        ),
    )


def _key(body: Obj) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def _owner_task(body: Obj) -> str | None:
    """The Task whose Job this is: its owner Task, if the Job has that Task's Job name. Another
    Job owned by the Task (made by someone else) is not its Job, and never takes its place in the
    cache (its outcome would be read as the Task's)."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "Task" and meta.get("name") == job_name(str(ref.get("name"))):
            return str(ref["name"])
    return None


def _owner_uid(job: Obj, task: str) -> str | None:
    """The uid of the Task named ``task`` that owns ``job``."""
    return next(
        (
            str(ref.get("uid"))
            for ref in (job.get("metadata") or {}).get("ownerReferences") or ()
            if ref.get("kind") == "Task" and ref.get("name") == task
        ),
        None,
    )


def _owned_by_task_named(found: Obj, manifest: Obj) -> bool:
    """Whether ``found`` is owned by a Task named as the owner of ``manifest`` is."""
    names = {
        ref.get("name")
        for ref in (manifest.get("metadata") or {}).get("ownerReferences") or ()
        if ref.get("kind") == "Task"
    }
    return any(
        ref.get("kind") == "Task" and ref.get("name") in names
        for ref in (found.get("metadata") or {}).get("ownerReferences") or ()
    )


def _created_after(held_rv: int | None, list_rv: str) -> bool:
    """Whether an object at ``held_rv`` is newer than a list at ``list_rv`` (so its absence there
    means nothing)."""
    try:
        return held_rv is not None and held_rv > int(list_rv)
    except ValueError:
        return False


class Controller:
    """One per operator process. ``clock`` gives Unix nanoseconds (the simulation's own clock)."""

    def __init__(
        self,
        kube: KubeAPI,
        settings: Settings,
        events: EventSink | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
        callbacks: CallbackPool | None = None,
        queue: WorkQueue[Key] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.decide_settings = decide_settings(settings)
        self.cache = Cache(settings.max_task_bytes)
        self.clock = clock
        self.rng = rng or random.Random()
        self.queue: WorkQueue[Key] = queue or WorkQueue(
            base_delay=settings.retry_base_delay, max_delay=settings.retry_max_delay, rng=self.rng
        )
        self.events = events if settings.events_enabled else None
        self.callbacks = callbacks or CallbackPool(kube, settings, self.enqueue_failed, clock=clock)
        # (uid, generation) → parsed spec, for the Tasks in flight (specs are immutable)
        self._specs: collections.OrderedDict[tuple[Any, Any], TaskSpec | None] = (
            collections.OrderedDict()
        )
        self.enqueue: Callable[[Key], None] = self._enqueue_coalesced
        self.passes = 0
        self.events_seen = 0
        self._workers: list[asyncio.Task[None]] = []
        self._resync: asyncio.Task[None] | None = None
        self._informers: list[asyncio.Task[None]] = []
        self._deleted: set[Key] = set()  # Tasks seen deleted, whose children are to be forgotten
        self._gone: dict[Key, set[str]] = {}  # uids of Tasks of this name known deleted
        self._active = asyncio.Event()  # cleared while a peer reconciles (reconciler/peering.py)
        self._active.set()
        self._catch_up: asyncio.Task[None] | None = None
        self._listed: set[str] = set()  # kinds listed since start, or since the last activation
        self._tasks_list_rv = ""  # the resourceVersion of the last Task list
        self._nodes_list_rv = ""  # … and of the nodes'
        self.list_tasks_on_activation = True  # the simulation lists when its schedule says

    @property
    def listed(self) -> frozenset[str]:
        """The kinds listed since start, or since the last activation."""
        return frozenset(self._listed)

    @property
    def caches_synced(self) -> bool:
        """Every cache a pass reads has been listed (invariant 6)."""
        return self._listed >= LISTED_KINDS

    def _mark_listed(self, kind: str) -> None:
        was = self.caches_synced
        self._listed.add(kind)
        if was or not self.caches_synced:
            return
        log.info("caches synced: reconciling")
        for key, held in list(self.cache.jobs.items()):
            if self.cache.task(key) is None and not _created_after(held.rv, self._tasks_list_rv):
                # Its Task was deleted while no replica watched (or no Task is left in scope):
                # the Job's witness finalizer is released by the pass (invariant 3 holds: uid).
                self._deleted.add(key)
        for key in self.cache.keys():
            self.queue.add(key)

    # --- watch events (the Task feed and the child informers call these)
    def _enqueue_coalesced(self, key: Key) -> None:
        # A Task, its Job and its pod change in bursts: let a burst arrive, then look once.
        self.queue.add_after(key, self.settings.coalesce_delay)

    def enqueue_failed(self, key: Key) -> None:
        self.queue.add_rate_limited(key)

    def task_event(self, event_type: str | None, body: Obj) -> None:
        self.events_seen += 1
        if self.events_seen == 1:
            log.info("the first Task event arrived")
        key = _key(body)
        if event_type == "DELETED":
            uid = (body.get("metadata") or {}).get("uid")
            self.cache.drop_task(key, uid)
            self._deleted.add(key)
            self._gone.setdefault(key, set()).add(str(uid))
        elif not self.cache.put_task(body):
            return  # older than what it holds, or an echo of its own write: nothing new
        self.enqueue(key)

    def _finished_without_children(self, key: Key) -> bool:
        """The Task is finished and its children were dropped (`sync_task`): a pass needs
        neither its finished, released Job nor its pods again."""
        return self.cache.state(key) in FINISHED_STATES and self.cache.jobs.get(key) is None

    def job_event(self, event_type: str | None, body: Obj) -> None:
        task = _owner_task(body)
        if task is None:
            return
        key = (_key(body)[0], task)
        if event_type == "DELETED":
            self.cache.drop_job(key, (body.get("metadata") or {}).get("uid"))
        elif self._finished_without_children(key) and done_with(body):
            return  # memory: a held Task costs its own entry only, whatever a re-list brings
        elif not self.cache.put_job(key, body):
            return  # nothing a pass reads changed
        self.enqueue(key)

    def pod_event(self, event_type: str | None, body: Obj) -> None:
        meta = body.get("metadata") or {}
        task = (meta.get("annotations") or {}).get(TASK_NAME_ANNOTATION)
        if task is None:
            return
        key = (str(meta.get("namespace")), str(task))
        if event_type == "DELETED":
            held = self.cache.pods.get(key, {}).get(str(meta.get("name")))
            self.cache.drop_pod(key, str(meta.get("name")))
            if self.settings.kueue_enabled and not self._finished_without_children(key):
                # What it was when it went (a queued Task's released pod deleted unbound never
                # ran; one that ended by itself may be retried: `taskop.domain.queueing`). Lost on
                # a restart or a re-list, which only makes taskop conservative.
                before = held.obj() if held is not None and held.uid == meta.get("uid") else None
                ended = ended_on_its_own(before) if before is not None else None
                self.cache.obituaries.setdefault(key, {})[str(meta.get("uid"))] = obituary(
                    body, before, ended
                )
        elif self._finished_without_children(key):
            return  # (as its Job)
        elif not self.cache.put_pod(key, body):
            return  # nothing a pass reads changed
        self.enqueue(key)

    def workload_event(self, event_type: str | None, body: Obj) -> None:
        """A Kueue Workload of a Job taskop holds: kept (slim) by the Job's name, for its Task.
        (Kueue makes it after the Job, which taskop holds from its create's answer.)"""
        meta = body.get("metadata") or {}
        owner = next((o for o in meta.get("ownerReferences") or () if o.get("kind") == "Job"), None)
        if owner is None:
            return
        namespace = str(meta.get("namespace"))
        where = (namespace, str(owner.get("name")))
        key = self.cache.key_of_job(*where)
        if key is None and where not in self.cache.workloads:
            return  # not a Job taskop holds (another's, or one of a finished Task): not kept
        if event_type == "DELETED":
            if self.cache.workloads.get(where, {}).get("metadata", {}).get("uid") != meta.get(
                "uid"
            ):
                return
            self.cache.workloads.pop(where, None)
        elif key is not None and self._finished_without_children(key):
            return
        else:
            slim = slim_workload(body)
            if self.cache.workloads.get(where) == slim:
                return
            self.cache.workloads[where] = slim
        if key is not None:
            self.enqueue(key)

    async def replace_workloads(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        rv, seen = "", set()
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                self.workload_event("ADDED", body)
                seen.add(str((body.get("metadata") or {}).get("uid")))
        for where, held in list(self.cache.workloads.items()):
            if held["metadata"].get("uid") not in seen:
                del self.cache.workloads[where]
        self._mark_listed("workloads")
        return rv, set()

    def failed_create_event(self, body: Obj) -> None:
        """A FailedCreate Event of the Job controller about one of taskop's Jobs."""
        involved = body.get("involvedObject") or {}
        key = self.cache.key_of_job(str(involved.get("namespace")), str(involved.get("name")))
        job = self.cache.job(key) if key else None
        if key is None or job is None or job["metadata"].get("uid") != involved.get("uid"):
            return
        message = str(body.get("message") or body.get("reason") or "FailedCreate")
        first_seen = self.cache.create_failures.get(key, (self.clock(), ""))[0]
        self.cache.create_failures[key] = (first_seen, message)
        self.enqueue(key)

    def node_event(self, event_type: str | None, body: Obj) -> None:
        """A node (a cell). One seen deleted is lost: its Running Tasks fail as
        CellDisappeared; one created again under that name is a new cell."""
        meta = body.get("metadata") or {}
        name = str(meta.get("name"))
        if event_type == "DELETED":
            self.cache.nodes.pop(name, None)
            self._lose_cell(name)
        else:
            self.cache.nodes[name] = rv_of(body)
            self.cache.lost_cells.discard(name)

    def _lose_cell(self, name: str) -> None:
        self.cache.lost_cells.add(name)
        for key in list(self.cache.tasks):
            if self.cache.state(key) == TaskState.RUNNING.value and self._cell_of(key) == name:
                self.enqueue(key)

    def _cell_of(self, key: Key) -> str:
        return str(((self.cache.task(key) or {}).get("status") or {}).get("cellId") or "")

    async def replace_nodes(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        """A list of the nodes is the whole truth: a node held before it and missing from it
        was deleted while no watch saw it go; a Running Task held from before it, on a cell it
        does not name, ran on a node deleted while no replica watched (`_cell_lost`)."""
        rv, listed = "", set()
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                listed.add(str((body.get("metadata") or {}).get("name")))
                self.node_event("ADDED", body)
        for name, held_rv in list(self.cache.nodes.items()):
            if name not in listed and not _created_after(held_rv, rv):
                del self.cache.nodes[name]
                self._lose_cell(name)
        self._nodes_list_rv = rv
        gone: set[str] = set()  # cells of Running Tasks held from before this list, not in it
        for key in self.cache.tasks:
            if self.cache.state(key) == TaskState.RUNNING.value:
                task = self.cache.task(key) or {}
                if self._cell_lost(task):
                    gone.add(str(task["status"]["cellId"]))
        for cell in gone:  # (one scan of the Tasks a cell, however many ran there)
            self._lose_cell(cell)
        self._mark_listed("nodes")
        return rv, set()

    def _cell_lost(self, task: Obj) -> bool:
        """The Task's cell was seen deleted, or is missing from the last list of the nodes
        although the Task (with that cell) is older than the list: its pod ran there (a kubelet
        said Running), so the node existed then and was deleted since. A Task newer than the
        list names a cell the watch has yet to report (or already did, as deleted)."""
        cell = (task.get("status") or {}).get("cellId")
        if not cell:
            return False
        if cell in self.cache.lost_cells:
            return True
        return (
            bool(self._nodes_list_rv)
            and cell not in self.cache.nodes
            and not _created_after(rv_of(task), self._nodes_list_rv)
        )

    # --- the pass
    def _spec(self, task: Obj) -> TaskSpec | None:
        meta = task["metadata"]
        cache_key = (meta.get("uid"), meta.get("generation"))
        if cache_key in self._specs:
            self._specs.move_to_end(cache_key)
            return self._specs[cache_key]
        try:
            spec: TaskSpec | None = parse_spec(task.get("spec") or {})
        except SpecError:
            spec = None
        if spec is None or spec.external:
            return spec
        self._specs[cache_key] = spec
        if len(self._specs) > SPEC_CACHE_SIZE:
            self._specs.popitem(last=False)
        return spec

    def _observe(self, key: Key, task: Obj, **reads: Any) -> Observation:
        job = self.cache.job(key)
        workload = None
        if job is not None and self.cache.workloads:
            found = self.cache.workloads.get((key[0], str(job["metadata"]["name"])))
            if found is not None and owned_by(found, str(job["metadata"]["uid"])):
                workload = found
        return Observation(
            task=task,
            job=job,
            pods=self.cache.pods_of(key),
            create_failure=self.cache.create_failures.get(key),
            cell_lost=self._cell_lost(task),
            workload=workload,
            pod_obituaries=self.cache.obituaries.get(key, {}),
            now=self.clock(),
            **reads,
        )

    async def sync_task(self, key: Key) -> None:
        """One pass: read the cache → decide → write. Raises on API errors (the caller
        re-queues with backoff)."""
        if not self.caches_synced:
            return  # every key is queued again once they are (`_mark_listed`)
        self.passes += 1
        metrics.RECONCILE_PASSES.inc()
        task = self.cache.task(key)
        if task is None:
            # Children seen before their Task (at start, or on a peering standby) wait for it;
            # only a Task seen deleted has its children forgotten.
            if key in self._deleted:
                job = self.cache.job(key)
                if job is not None and WITNESS_FINALIZER in (
                    job["metadata"].get("finalizers") or ()
                ):
                    # The Task went between its Job's creation and the witness: let the Job go.
                    await self._release(key, str(job["metadata"]["uid"]))
                self._forget(key)
            return
        await self._release_earlier(key, task)
        spec = self._spec(task)
        decision = decide(self._observe(key, task), self.decide_settings, spec)
        if decision.reads:
            reads = await self._read(key, task, decision)
            decision = decide(self._observe(key, task, **reads), self.decide_settings, spec)
            if decision.reads:  # the reads changed nothing it needed: look again later
                self.queue.add_after(key, 1.0)
                return
        await self._write(key, task, decision)
        if self.cache.state(key) in FINISHED_STATES:
            meta = task["metadata"]
            self._specs.pop((meta.get("uid"), meta.get("generation")), None)
            if (job := self.cache.job(key)) is not None and done_with(job):
                self.cache.drop_children(key)  # memory: held Tasks cost their own entry only

    async def _read(self, key: Key, task: Obj, decision: Decision) -> dict[str, Any]:
        """The reads a decision asked for, taken into the cache (a result log is not kept:
        it is read again if the pass must be repeated)."""
        namespace, name = key
        reads: dict[str, Any] = {}
        if decision.read_result_log is not None:
            text = await self.kube.read_pod_log(
                namespace, decision.read_result_log, RESULT_CONTAINER_NAME
            )
            reads["result_log" if text is not None else "result_log_gone"] = (
                text if text is not None else True
            )
        if decision.read_job:
            job = await self.kube.get_job(namespace, job_name(name))
            if job is None:
                self.cache.drop_job(key)
                reads["job_absent_confirmed"] = True
            else:
                self.cache.put_job(key, job)
        if decision.read_pods:
            job = self.cache.job(key)
            selector = f"controller-uid={job['metadata']['uid']}" if job else None
            pods = await self.kube.list_pods(namespace, selector or f"{MANAGED_SELECTOR}")
            self.cache.replace_pods(
                key,
                [p for p in pods if job is None or owned_by(p, str(job["metadata"]["uid"]))],
            )
            reads["pods_read"] = True
        return reads

    async def _write(self, key: Key, task: Obj, d: Decision) -> None:
        namespace, name = key
        meta = task["metadata"]
        if d.delete_task:
            log.info("deleting expired task", extra={"task": f"{namespace}/{name}"})
            with contextlib.suppress(NotFound, Conflict):
                await self.kube.delete_task(namespace, name, uid=meta["uid"])
            return
        release = d.release_job_uid
        try:
            if d.create_network_policy is not None:
                await self._create_network_policy(d.create_network_policy, str(meta["uid"]))
            if d.create_job is not None and await self._create_job(key, d.create_job) is None:
                return  # found, not created: decide again on what is there
        except CreateRefused as refused:
            # For good (invalid, or a name taken by what taskop does not own): the Task fails,
            # saying why, instead of retrying for ever.
            observed = self._observe(key, task, create_refused=(refused.reason, str(refused)))
            await self._write(key, task, decide(observed, self.decide_settings, self._spec(task)))
            return
        except AdmissionUnavailable as unavailable:
            # Not now (Kueue's webhook, failing closed, is down): Pending, saying so, and tried
            # again with back-off; nothing was created.
            first_seen = self.cache.create_unavailable.setdefault(key, self.clock())
            observed = self._observe(key, task, create_unavailable=(first_seen, str(unavailable)))
            await self._write(key, task, decide(observed, self.decide_settings, self._spec(task)))
            return
        if d.status is not None:
            # The status this pass decided from with its decision merged in, replacing the
            # whole status at the resourceVersion it was read at: what a merge patch of the
            # decision would leave (a write at any other version is refused), for less of the
            # API server's CPU.
            status = merge_patch(task.get("status") or {}, d.status)
            written = await self.kube.replace_task_status(
                namespace, name, meta["resourceVersion"], status
            )
            metrics.record_transition(task.get("status") or {}, d.status, time.time())
            self.cache.put_task(written)
            task = self.cache.task(key) or task
        if d.release_pod is not None:  # recorded in the status just written: now it may run
            pod = await self.kube.release_pod(namespace, *d.release_pod, RELEASE_GATE)
            if pod is not None:
                self.cache.put_pod(key, pod)
        if release is not None:
            await self._release(key, release)
        if d.deactivate_workload is not None:
            await self.kube.deactivate_workload(namespace, d.deactivate_workload)
        if d.delete_job_uid is not None:
            await self.kube.delete_job(namespace, job_name(name), d.delete_job_uid)
        if d.remove_finalizer:
            finalizers = [f for f in meta.get("finalizers") or () if f != LEGACY_FINALIZER]
            with contextlib.suppress(NotFound):
                written = await self.kube.patch_task(
                    namespace,
                    name,
                    meta["resourceVersion"],
                    {"metadata": {"finalizers": finalizers or None}},
                )
                self.cache.put_task(written)
        if self.events is not None:
            for type_, reason, message in d.events:
                try:  # best effort, as client-go's recorder: never fails or repeats a pass
                    await self.events(task, type_, reason, message)
                except Exception as e:
                    log.info("event not recorded", extra={"reason": reason, "error": repr(e)})
        if d.callback:
            self.callbacks.submit(key, lambda: self.cache.task(key))
        if d.recheck_in is not None:
            self.queue.add_after(key, d.recheck_in + 0.01)

    async def _create_network_policy(self, manifest: Obj, task_uid: str) -> None:
        """Create the Task's egress NetworkPolicy; one of that name must be the Task's own."""
        meta = manifest["metadata"]
        try:
            await self.kube.create_network_policy(meta["namespace"], manifest)
        except AlreadyExists:
            found = await self.kube.get_network_policy(meta["namespace"], meta["name"])
            if found is None:
                raise Conflict(f"NetworkPolicy {meta['name']} is being deleted") from None
            if not owned_by(found, task_uid) and _owned_by_task_named(found, manifest):
                # An earlier Task of this name's (deleted and created again): the garbage
                # collector deletes it; like its Job, it is waited for, not a conflict.
                raise Conflict(
                    f"NetworkPolicy {meta['name']} of an earlier Task of this name is being deleted"
                ) from None
            if not owned_by(found, task_uid):
                raise CreateRefused(
                    ConditionReason.JOB_CONFLICT,
                    f"NetworkPolicy {meta['name']} exists and is not owned by this Task; taskop"
                    " never adopts or touches it, and runs no task without its own egress"
                    " policy: delete or rename it, or create the Task under another name",
                ) from None
        except Invalid as e:
            raise CreateRefused(
                ConditionReason.INVALID_SPEC, f"Kubernetes refused its NetworkPolicy: {e}"
            ) from None
        except Forbidden as e:
            if e.passing:
                raise
            raise CreateRefused(
                ConditionReason.CREATE_REFUSED, f"Kubernetes refused its NetworkPolicy: {e}"
            ) from None

    async def _create_job(self, key: Key, manifest: Obj) -> str | None:
        """Create the Job; its uid, or None when one of that name exists already (then cached)."""
        namespace, _ = key
        try:
            job = await self.kube.create_job(namespace, manifest)
        except Invalid as e:
            raise CreateRefused(
                ConditionReason.INVALID_SPEC, f"Kubernetes refused its Job: {e}"
            ) from None
        except Forbidden as e:
            if e.passing:
                raise
            raise CreateRefused(
                ConditionReason.CREATE_REFUSED, f"Kubernetes refused its Job: {e}"
            ) from None
        except AlreadyExists:
            # Ours from a create that timed out, or someone else's: the next pass decides.
            found = await self.kube.get_job(namespace, manifest["metadata"]["name"])
            if found is not None:
                self.cache.put_job(key, found)
            self.queue.add(key)
            return None
        self.cache.put_job(key, job)
        self.cache.create_unavailable.pop(key, None)
        return str(job["metadata"]["uid"])

    async def _release(self, key: Key, job_uid: str) -> None:
        """Remove the witness finalizer from the Task's Job (uid precondition)."""
        namespace, name = key
        job = await self.kube.release_job(namespace, job_name(name), job_uid, WITNESS_FINALIZER)
        if job is None:
            self.cache.drop_job(key, job_uid)
        else:
            self.cache.put_job(key, job)

    async def _release_earlier(self, key: Key, task: Obj) -> None:
        """Release the witness finalizer of the Job of an earlier Task of this name, known to be
        deleted: the witness has nothing left to guard (invariant: no Job, and so no namespace,
        is kept for ever by taskop's finalizer; the Task now holding the name waits for that Job
        to go). Known, not guessed: a Task cache may show an older Task than the Job's owner,
        whose Job the witness still guards. The release carries the Job's uid (invariant 3)."""
        if not self._gone.get(key):
            return
        job = self.cache.job(key)
        if job is None or WITNESS_FINALIZER not in (job["metadata"].get("finalizers") or ()):
            return
        owner = _owner_uid(job, key[1])
        if owner != task["metadata"].get("uid") and owner in self._gone.get(key, ()):
            await self._release(key, str(job["metadata"]["uid"]))

    def _forget(self, key: Key) -> None:
        self._deleted.discard(key)
        self._gone.pop(key, None)
        self.cache.forget(key)
        self.queue.forget(key)
        self.queue.cancel_timer(key)

    # --- workers
    def set_active(self, active: bool) -> None:
        """Reconcile (True) or stand by while a peer does (False; passes in flight finish, keys
        stay queued). Becoming active re-lists everything: a standby's view may be stale."""
        if active == self._active.is_set():
            return
        if active:
            log.info("reconciling: this replica is the active one")
            # Its Task cache stopped while a peer worked: no pass until it is listed anew.
            self._listed.discard("tasks")
            self._active.set()
            if self.list_tasks_on_activation:
                self._catch_up = asyncio.create_task(
                    self._until_listed(self.resync), name="taskop-catch-up"
                )
        else:
            log.info("standing by: a peer with a higher priority reconciles")
            self._active.clear()

    async def _worker(self) -> None:
        while True:
            await self._active.wait()
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            if not self._active.is_set():  # paused while waiting: leave it for later
                self.queue.add(key)
                self.queue.done(key)
                continue
            try:
                await self.sync_task(key)
            except Conflict:
                # Someone else changed the Task first; its watch event brings the new version.
                metrics.RECONCILE_ERRORS.inc()
                self.queue.add_rate_limited(key)
            except Exception as e:
                metrics.RECONCILE_ERRORS.inc()
                delay = self.queue.add_rate_limited(key)
                log.warning(
                    "reconcile failed; retrying",
                    extra={"task": f"{key[0]}/{key[1]}", "error": repr(e)[:500], "in": delay},
                )
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)

    async def list_tasks(self) -> None:
        """A Task list outside the feed (the simulation's schedule lists so)."""
        await self.replace_tasks(self.kube.list_pages("tasks", self.settings.namespace or None))

    async def _until_listed(self, list_: Callable[[], Awaitable[None]]) -> None:
        delay = self.settings.retry_base_delay
        while True:
            try:
                await list_()
                return
            except Exception as e:
                log.warning("listing failed; retrying", extra={"error": repr(e)[:500], "in": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, LIST_RETRY_MAX)

    async def resync(self) -> None:
        """Re-list taskop's Tasks, Jobs and pods; replace the caches (deletions a watch missed
        included) and look at every Task whose listed version is news (what a watch missed).
        One paginated LIST per kind, not a read per Task; a pass for each of 100,000 held Tasks
        that did not change would make idle not idle (their timers bring each back when due)."""
        namespace = self.settings.namespace or None
        tasks_rv, tasks = await self.replace_tasks(self.kube.list_pages("tasks", namespace))
        await self.replace_jobs(self.kube.list_pages("jobs", namespace, MANAGED_SELECTOR))
        await self.replace_pods(self.kube.list_pages("pods", namespace, MANAGED_SELECTOR))
        for key, held in self.cache.jobs.items():
            if key not in tasks and not _created_after(held.rv, tasks_rv):
                self._deleted.add(key)  # its Task is gone: never seen deleted (e.g. while down)
                self.queue.add(key)

    # Like an informer's Replace: a list is the truth, except for what the cache holds newer.
    # Each takes the pages of one LIST and returns (the list's resourceVersion, the keys listed).
    async def replace_tasks(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        rv, uids = "", {}
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                uids[_key(body)] = str(body["metadata"].get("uid"))
                if self.cache.put_task(body):
                    self.enqueue(_key(body))
        listed = set(uids)
        for key, held in self.cache.jobs.items():
            owner = _owner_uid(held.obj(), key[1])
            if key in uids and owner != uids[key] and not _created_after(held.rv, rv):
                # The Job existed before the list, whose Task of that name is another: its
                # owner was deleted (`_release_earlier`).
                self._gone.setdefault(key, set()).add(str(owner))
        for key, held in list(self.cache.tasks.items()):
            if key not in listed and not _created_after(held.rv, rv):
                self.cache.drop_task(key)
                self._deleted.add(key)
                self._gone.setdefault(key, set()).add(held.uid)
                self.enqueue(key)
        self._tasks_list_rv = rv
        self._mark_listed("tasks")
        return rv, listed

    async def replace_jobs(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        rv, listed = "", set()
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                if task := _owner_task(body):
                    key = (_key(body)[0], task)
                    listed.add(key)
                    self.job_event("ADDED", body)
        for key, held in list(self.cache.jobs.items()):
            if key not in listed and not _created_after(held.rv, rv):
                self.cache.drop_job(key)
                self.enqueue(key)
        self._note_earlier_owners()
        self._mark_listed("jobs")
        return rv, listed

    async def replace_pods(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        rv, seen = "", set()
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                meta = body.get("metadata") or {}
                if task := (meta.get("annotations") or {}).get(TASK_NAME_ANNOTATION):
                    key = (str(meta.get("namespace")), str(task))
                    seen.add((key, str(meta.get("name"))))
                    self.pod_event("ADDED", body)
        for key, pods in list(self.cache.pods.items()):
            for name, held in list(pods.items()):
                if (key, name) not in seen and not _created_after(held.rv, rv):
                    self.cache.drop_pod(key, name)
                    self.enqueue(key)
        self._mark_listed("pods")
        return rv, {key for key, _ in seen}

    async def replace_failed_creates(self, pages: AsyncIterator[Obj]) -> tuple[str, set[Key]]:
        rv = ""
        async for page in pages:
            rv = rv or str(page["metadata"]["resourceVersion"])
            for body in page.get("items") or ():
                self.failed_create_event(body)
        self._mark_listed("events")
        return rv, set()

    def _note_earlier_owners(self) -> None:
        """Jobs listed after the Tasks (a restart or a takeover fills its caches in any order):
        a Job that existed at the Task list, whose owner is not the Task of that name held since
        that list, belongs to a Task deleted before it — the held Task is the list's or newer,
        and names hold one object at a time (`_release_earlier` lets its witness go)."""
        if not self._tasks_list_rv:
            return
        for key, held in self.cache.jobs.items():
            task = self.cache.tasks.get(key)
            owner = _owner_uid(held.obj(), key[1])
            if (
                task is not None
                and owner is not None
                and owner != task.uid
                and not _created_after(held.rv, self._tasks_list_rv)
            ):
                self._gone.setdefault(key, set()).add(owner)
                self.enqueue(key)

    def streams(self) -> list[Stream]:
        """What the informers watch, and where their lists and events go."""
        return [
            Stream("jobs", MANAGED_SELECTOR, None, self.replace_jobs, self.job_event),
            Stream("pods", MANAGED_SELECTOR, None, self.replace_pods, self.pod_event),
            Stream("nodes", None, None, self.replace_nodes, self.node_event),
            Stream(
                "events",
                None,
                FAILED_CREATE_SELECTOR,
                self.replace_failed_creates,
                lambda type_, body: None if type_ == "DELETED" else self.failed_create_event(body),
            ),
        ] + (
            [Stream("workloads", None, None, self.replace_workloads, self.workload_event)]
            if self.settings.kueue_enabled
            else []
        )

    async def _resync_loop(self) -> None:
        period = self.settings.resync_period
        while True:
            await asyncio.sleep(period * self.rng.uniform(0.9, 1.1))
            if not self._active.is_set():
                continue  # a standby does not act; it lists anew when it becomes active
            try:
                await self.resync()
            except Exception as e:
                log.warning("resync failed; next one as planned", extra={"error": repr(e)[:500]})

    def start(self, kube: Kube | None = None, feed: TaskFeed | None = None) -> None:
        """Workers, callbacks, the resync, and (given a real ``kube``) the informers: the Tasks
        through ``feed`` (shared with the doors' views; one of its own without it), and the
        children."""
        metrics.LIVE.task_states = lambda: self.cache.states
        metrics.LIVE.queue_depth = lambda: len(self.queue)
        if kube is not None:
            namespace = self.settings.namespace or None
            feed = feed or TaskFeed(namespace, expect={"reconciler"})
            feed.attach_reconciler(self.replace_tasks, self.task_event, self.cache.task)
            READINESS.add(
                "reconciler: its Tasks, Jobs, pods, Events and nodes are not listed (yet, or a"
                " watch is broken)",
                # (a standby lists its Tasks anew once active: "standby" says why it is not ready)
                lambda: (
                    (self.caches_synced or not self._active.is_set())
                    and all(SYNCED.get(kind) for kind in LISTED_KINDS)
                ),
            )
            self._informers = [
                asyncio.create_task(inform(kube, namespace, stream), name=f"taskop-{stream.kind}")
                for stream in self.streams()
            ]
            self._informers.append(asyncio.create_task(feed.run(kube), name="taskop-tasks"))
        elif self._active.is_set():  # (the simulation lists when its schedule says)
            self._catch_up = asyncio.create_task(
                self._until_listed(self.list_tasks), name="taskop-list-tasks"
            )
        self._workers = [
            asyncio.create_task(self._worker(), name=f"taskop-worker-{i}")
            for i in range(self.settings.workers)
        ]
        if self.settings.resync_period > 0:
            self._resync = asyncio.create_task(self._resync_loop(), name="taskop-resync")
        self.callbacks.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful: no new passes; passes in flight finish (up to ``grace`` seconds)."""
        for background in (self._resync, self._catch_up):
            if background is not None:
                background.cancel()
        for informer in self._informers:
            informer.cancel()
        await asyncio.gather(*self._informers, return_exceptions=True)
        self.queue.shut_down()
        await self.queue.drain(grace)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self.callbacks.stop()
