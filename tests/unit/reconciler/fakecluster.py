"""An in-memory API server, Job controller, kubelet and garbage collector for the simulation.

Small but faithful where the promises depend on it: resourceVersions from one counter, uid and
resourceVersion preconditions, AlreadyExists, merge-patch of status, watch streams per kind in
commit order, and API faults — a 5xx that changed nothing, and a timeout *after* the change was
made (the ambiguous one). Paged LISTs (a few objects a page) whose continue token may expire after
the first page (410 Gone). The garbage collector deletes dependents *later* (`gc_step`), as the
real one does (background propagation), and its pod GC fails and deletes the pods of a deleted
node. The Job controller honours ``backoffLimit`` (a failed, evicted, OOM-killed or deleted pod
is replaced after the pod-failure back-off, 10 s doubling, until more pods failed than the limit:
Failed, BackoffLimitExceeded) and ``activeDeadlineSeconds`` (active pods deleted; Failed,
DeadlineExceeded). The kubelet runs pods on nodes, can fail to pull an image (the pod stays
Pending, ImagePullBackOff), OOM-kill a container, or evict a pod (Failed, reason Evicted, with a
DisruptionTarget condition). A namespace being deleted refuses new content (403, "being
terminated") while its controller deletes everything in it. What each pod did (its fate) is kept
as ground truth for the proofs.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import itertools
import json
import random
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

from taskop.domain.fields import merge_patch as _merge_patch
from taskop.domain.queueing import QUEUE_LABEL
from taskop.domain.timefmt import format_seconds
from taskop.kube.client import (
    AdmissionUnavailable,
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Refused,
)

Obj = dict[str, Any]
Key = tuple[str, str]
KINDS = ("tasks", "jobs", "pods", "events", "nodes", "workloads")
NODES = ("node-1", "node-2", "node-3", "node-4")
POD_FAILURE_BACKOFF = 10 * 10**9  # the Job controller's: 10 s, doubling, at most 6 min
FAILURES = frozenset({"exit 1", "oom", "evicted", "deleted", "node lost"})
"""Pod fates the Job controller counts as failed (against ``backoffLimit``)."""
TERMINATING = "because it is being terminated"
TRACKING = "batch.kubernetes.io/job-tracking"
"""The Job controller's finalizer on its pods: a pod stays visible until it is counted."""


@dataclasses.dataclass
class PodTruth:
    """What happened to one pod (ground truth, for the proofs)."""

    job_uid: str
    name: str
    node: str = ""
    fate: str = ""  # succeeded, exit 1, oom, evicted, deleted, node lost; deadline, stopped
    removed: bool = False  # gone from the API server
    removed_at: int = 0  # the commit that removed it
    pull_failed: bool = False
    ran: bool = False  # its command started (the kubelet ran it)


@dataclasses.dataclass
class JobTruth:
    """The Job controller's memory of one Job (its pod tracking), and the Job's ground truth."""

    task_uid: str
    started: int | None = None
    next_create: int = 0
    pods: list[str] = dataclasses.field(default_factory=list)  # pod uids, in creation order
    failed: str = ""  # the reason of its Failed condition
    deleted_by: str = ""  # user, namespace (someone other than taskop and the GC)


class ServerError(Exception):
    """A 5xx answer: the change was not made."""


class ClientTimeout(TimeoutError):
    """No answer in time: the change *was* made."""


def merge_patch(target: Obj, patch: Obj) -> Obj:
    """The API server's merge patch (taskop's own, RFC 7386), sharing nothing with ``patch``."""
    return _merge_patch(target, copy.deepcopy(patch))


class FakeCluster:
    def __init__(self, rng: random.Random, clock: Callable[[], int]) -> None:
        self.rng = rng
        self.clock = clock
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)
        self.objects: dict[str, dict[Key, Obj]] = {k: {} for k in KINDS}
        self.streams: dict[str, list[tuple[str, Obj]]] = {k: [] for k in KINDS}
        self.fault_rate = 0.0
        # what the proofs read
        self.jobs_created: dict[str, list[str]] = {}  # Task uid → Job uids created for it
        self.results: dict[str, str] = {}  # Job uid → the result its pod wrote
        self.job_deletes: list[tuple[str, str]] = []  # (Job uid, its owner Task uid or "")
        self.task_deletes: list[tuple[Obj, int]] = []  # (Task as deleted, when)
        self.calls: dict[str, int] = {}
        self.logs: dict[Key, str] = {}  # pod → its result sidecar's log
        self.network_policies: dict[Key, Obj] = {}
        self.unguarded_jobs: list[str] = []  # Jobs created for a Task with egress rules, no policy
        self.refuse_create: dict[str, str] = {}  # Task name → why its Job is refused for good
        self.started_at: dict[str, int] = {}  # Task uid → commit at which a pod of it first ran
        self.expired_at: dict[str, int] = {}  # Task uid → commit that expired it "not started"
        self.gone_rate = 0.0  # how often a LIST's continue token expires after a page
        self.large_results = 0.3  # how often a result goes through the result sidecar's log
        self.gone = 0  # LISTs that did
        self.lists_failed = 0  # LISTs that failed (410 Gone mid-list, or a 5xx)
        self.pods: dict[str, PodTruth] = {}  # pod uid → what happened to it
        self.jobs: dict[str, JobTruth] = {}  # Job uid → the Job controller's tracking
        self.nodes_deleted: set[str] = set()
        self.terminating = False  # the namespace is being deleted
        self.kueue_capacity = 2  # Workloads its ClusterQueue admits at once
        self.kueue_down = False  # its manager stopped; its webhooks fail closed
        self.concurrent_runs: list[str] = []  # Tasks with two pods running their command at once
        self.evicted_tasks: set[str] = set()  # Task uids whose Workload Kueue evicted
        self.task_writes: list[tuple[str, str, str, str]] = []
        """Writes through the KubeAPI (taskop's): (call, Task uid, its state before, domain)."""
        self.cancel_landed: dict[str, str] = {}  # Task uid → its state when cancelled landed
        self.completed_at: dict[str, int] = {}  # Task uid → the commit that first completed it
        self.moves: dict[str, int] = {}  # what the world did, by kind (for the coverage check)
        for node in NODES:
            self.add_node(node)

    # --- storage
    def _commit(self, kind: str, event: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        meta["resourceVersion"] = str(next(self._rv))
        before = self.objects[kind].get(key)
        if kind == "tasks" and event != "DELETED" and (obj.get("spec") or {}).get("cancelled"):
            if before is None or not (before.get("spec") or {}).get("cancelled"):
                state = ((before or {}).get("status") or {}).get("state") or "Pending"
                self.cancel_landed.setdefault(meta["uid"], state)
        if kind == "tasks" and (obj.get("status") or {}).get("state") in ("Completed", "Resolving"):
            self.completed_at.setdefault(meta["uid"], int(meta["resourceVersion"]))
        if event == "DELETED":
            self.objects[kind].pop(key, None)
        else:
            self.objects[kind][key] = obj
        self.streams[kind].append((event, copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def new_uid(self) -> str:
        return f"uid-{next(self._uid)}"

    def list_rv(self) -> str:
        return str(next(self._rv))

    def moved(self, move: str) -> None:
        self.moves[move] = self.moves.get(move, 0) + 1

    def _wrote(self, call: str, task: Obj) -> None:
        """A write of taskop's (the KubeAPI) to a Task, as it was before."""
        self.task_writes.append(
            (
                call,
                task["metadata"]["uid"],
                (task.get("status") or {}).get("state") or "Pending",
                str((task.get("spec") or {}).get("domain") or ""),
            )
        )

    def _fault(self, call: str) -> str | None:
        self.calls[call] = self.calls.get(call, 0) + 1
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(("5xx", "timeout"))
        return None

    def _get(self, kind: str, namespace: str, name: str) -> Obj:
        obj = self.objects[kind].get((namespace, name))
        if obj is None:
            raise NotFound(f"{kind} {namespace}/{name}")
        return obj

    # --- user side
    def create_task(
        self, namespace: str, name: str, spec: Obj, labels: Obj | None = None
    ) -> Obj | None:
        """A user's (or a door's) create; None when the name is taken or the namespace is going."""
        if self.terminating or (namespace, name) in self.objects["tasks"]:
            return None
        task = {
            "apiVersion": "taskop.dev/v1alpha1",
            "kind": "Task",
            "metadata": {
                "namespace": namespace,
                "name": name,
                "uid": self.new_uid(),
                "generation": 1,
                "labels": labels or {},
                "creationTimestamp": format_seconds(self.clock()),
            },
            "spec": spec,
        }
        return self._commit("tasks", "ADDED", task)

    def user_patch_spec(self, key: Key, patch: Obj) -> None:
        task = self.objects["tasks"].get(key)
        if task is not None and not task["metadata"].get("deletionTimestamp"):
            task = copy.deepcopy(task)
            task["spec"] = merge_patch(task["spec"], patch)
            task["metadata"]["generation"] += 1
            self._commit("tasks", "MODIFIED", task)

    def user_create_job(self, namespace: str, name: str) -> Obj:
        """A Job somebody else made, owned by no Task."""
        job = {
            "metadata": {"namespace": namespace, "name": name, "uid": self.new_uid()},
            "spec": {},
            "status": {},
        }
        return self._commit("jobs", "ADDED", job)

    def user_patch_meta(self, key: Key, resource_version: str, patch: Obj) -> Obj | None:
        """A door's metadata merge patch (taskstore's lease and update writes), with its id (the
        resourceVersion) as precondition; None when it lost."""
        task = self.objects["tasks"].get(key)
        if task is None or task["metadata"]["resourceVersion"] != resource_version:
            return None
        return self._commit("tasks", "MODIFIED", merge_patch(copy.deepcopy(task), patch))

    def user_delete(self, kind: str, key: Key, by: str = "user") -> None:
        obj = self.objects[kind].get(key)
        if obj is None:
            return
        if kind == "jobs" and obj["metadata"]["uid"] in self.jobs:
            truth = self.jobs[obj["metadata"]["uid"]]
            truth.deleted_by = truth.deleted_by or by
        self._delete(kind, copy.deepcopy(obj))

    # --- garbage collector, namespace controller
    def _delete(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        if kind == "pods":
            self._pod_ends(meta["uid"], "deleted")
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                self._commit(kind, "MODIFIED", obj)
            return
        self._commit(kind, "DELETED", obj)
        if kind == "pods" and meta["uid"] in self.pods:
            self.pods[meta["uid"]].removed = True
            self.pods[meta["uid"]].removed_at = int(meta["resourceVersion"])

    def _untrack(self, pod: Obj) -> None:
        """The Job controller removes its tracking finalizer (the pod goes if being deleted)."""
        pod = copy.deepcopy(pod)
        pod["metadata"]["finalizers"] = [
            f for f in pod["metadata"].get("finalizers") or () if f != TRACKING
        ]
        if pod["metadata"].get("deletionTimestamp") and not pod["metadata"]["finalizers"]:
            self._delete("pods", pod)
        else:
            self._commit("pods", "MODIFIED", pod)

    def gc_step(self) -> None:
        """The garbage collector (dependents whose owner is gone), the pod GC (pods bound to a
        deleted node: Failed with a DisruptionTarget condition, then deleted) and the Job
        controller's orphan clean-up (no tracking finalizer on a pod whose Job is gone or being
        deleted)."""
        for pod in sorted(self.objects["pods"].values(), key=lambda p: p["metadata"]["name"]):
            node = pod.get("spec", {}).get("nodeName")
            if node in self.nodes_deleted and not pod["metadata"].get("deletionTimestamp"):
                pod = copy.deepcopy(pod)
                pod["status"] = {
                    **pod["status"],
                    "phase": "Failed",
                    "conditions": [
                        {
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "DeletionByPodGC",
                            "message": "PodGC: node no longer exists",
                        }
                    ],
                }
                self._pod_ends(pod["metadata"]["uid"], "node lost")
                self._commit("pods", "MODIFIED", pod)
                self._delete("pods", copy.deepcopy(pod))
        for kind, owner_kind in (("jobs", "tasks"), ("pods", "jobs"), ("workloads", "jobs")):
            owners = {o["metadata"]["uid"] for o in self.objects[owner_kind].values()}
            for obj in sorted(self.objects[kind].values(), key=lambda o: o["metadata"]["name"]):
                refs = obj["metadata"].get("ownerReferences") or ()
                if refs and not any(r.get("uid") in owners for r in refs):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self._delete(kind, copy.deepcopy(obj))
        tasks = {t["metadata"]["uid"] for t in self.objects["tasks"].values()}
        for key, policy in sorted(self.network_policies.items()):
            refs = policy["metadata"].get("ownerReferences") or ()
            if self.terminating or (refs and not any(r.get("uid") in tasks for r in refs)):
                del self.network_policies[key]
        live_jobs = {
            j["metadata"]["uid"]
            for j in self.objects["jobs"].values()
            if not j["metadata"].get("deletionTimestamp")
        }
        for pod in sorted(self.objects["pods"].values(), key=lambda p: p["metadata"]["name"]):
            job_uid = pod["metadata"]["labels"].get("controller-uid")
            if TRACKING in (pod["metadata"].get("finalizers") or ()) and job_uid not in live_jobs:
                self._untrack(pod)

    def delete_namespace(self) -> None:
        self.terminating = True
        self.namespace_step()

    def namespace_step(self) -> None:
        """The namespace controller: deletes everything in a namespace being deleted (again and
        again, until it is empty)."""
        if not self.terminating:
            return
        for kind in ("tasks", "jobs", "pods", "events"):
            for key in sorted(self.objects[kind]):
                obj = self.objects[kind][key]
                if not obj["metadata"].get("deletionTimestamp"):
                    self.user_delete(kind, key, by="namespace")

    def add_node(self, name: str) -> None:
        self._commit("nodes", "ADDED", {"metadata": {"namespace": "", "name": name}})

    def delete_node(self, name: str) -> None:
        node = self.objects["nodes"].get(("", name))
        if node is not None:
            self.nodes_deleted.add(name)
            self._commit("nodes", "DELETED", copy.deepcopy(node))

    def live_nodes(self) -> list[str]:
        return sorted(key[1] for key in self.objects["nodes"])

    def _refused_in_namespace(self) -> Forbidden:
        return Forbidden(
            "unable to create new content in namespace sim " + TERMINATING, passing=True
        )

    # --- the API the controller calls (KubeAPI)
    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj:
        return self._status_call("patch_task_status", namespace, name, resource_version, status)

    async def replace_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj:
        return self._status_call("replace_task_status", namespace, name, resource_version, status)

    def _status_call(
        self, call: str, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj:
        """A status write of taskop's, faults included: ``replace_task_status`` replaces the
        whole status, ``patch_task_status`` merges into it."""
        fault = self._fault(call)
        if fault == "5xx":
            raise ServerError("500")
        task = self._get("tasks", namespace, name)
        if task["metadata"]["resourceVersion"] == resource_version:  # else a Conflict: no write
            self._wrote(call, task)
        replace = call == "replace_task_status"
        return self.write_status(namespace, name, resource_version, status, fault, replace=replace)

    def write_status(
        self,
        namespace: str,
        name: str,
        resource_version: str,
        status: Obj,
        fault: str | None,
        *,
        replace: bool = False,
    ) -> Obj:
        """A merge patch of the status (``replace``: an update of the whole status), at
        ``resource_version`` only."""
        task = copy.deepcopy(self._get("tasks", namespace, name))
        if task["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("the object has been modified")
        before = str((task.get("status") or {}).get("failureReason") or "")
        old = task.get("status") or {}
        task["status"] = copy.deepcopy(dict(status)) if replace else merge_patch(old, status)
        written = self._commit("tasks", "MODIFIED", task)
        after = str(task["status"].get("failureReason") or "")
        if after.startswith("not started") and not before.startswith("not started"):
            self.expired_at[task["metadata"]["uid"]] = int(written["metadata"]["resourceVersion"])
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def patch_task(
        self, namespace: str, name: str, resource_version: str | None, patch: Obj
    ) -> Obj:
        fault = self._fault("patch_task")
        if fault == "5xx":
            raise ServerError("500")
        task = self._get("tasks", namespace, name)
        if not resource_version or task["metadata"]["resourceVersion"] == resource_version:
            self._wrote("patch_task", task)
        return self.write_task(namespace, name, resource_version, patch, fault)

    def write_task(
        self,
        namespace: str,
        name: str,
        resource_version: str | None,
        patch: Obj,
        fault: str | None,
    ) -> Obj:
        task = copy.deepcopy(self._get("tasks", namespace, name))
        if resource_version and task["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("the object has been modified")
        spec = task.get("spec")
        task = merge_patch(task, patch)
        if task.get("spec") != spec:
            task["metadata"]["generation"] += 1
        if task["metadata"].get("deletionTimestamp") and not task["metadata"].get("finalizers"):
            self._delete("tasks", task)
            written = copy.deepcopy(task)
        else:
            written = self._commit("tasks", "MODIFIED", task)
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def delete_task(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> None:
        fault = self._fault("delete_task")
        if fault == "5xx":
            raise ServerError("500")
        task = self._get("tasks", namespace, name)
        if uid and task["metadata"]["uid"] != uid:
            raise Conflict("uid precondition failed")
        self._wrote("delete_task", task)
        self.task_deletes.append((copy.deepcopy(task), self.clock()))
        self._delete("tasks", copy.deepcopy(task))
        if fault == "timeout":
            raise ClientTimeout

    async def get_job(self, namespace: str, name: str) -> Obj | None:
        if self._fault("get_job") is not None:
            raise ServerError("500")
        job = self.objects["jobs"].get((namespace, name))
        return copy.deepcopy(job) if job else None

    async def create_job(self, namespace: str, body: Obj) -> Obj:
        fault = self._fault("create_job")
        if fault == "5xx":
            raise self.rng.choice((ServerError("500"), Refused("403 Forbidden: namespace")))
        name = body["metadata"]["name"]
        if self.terminating:
            raise self._refused_in_namespace()
        if (namespace, name) in self.objects["jobs"]:
            raise AlreadyExists(name)
        if self.kueue_down and QUEUE_LABEL in (body["metadata"].get("labels") or {}):
            self.moved("kueue down")
            raise AdmissionUnavailable(500, KUEUE_DOWN)
        refusal = self.refuse_create.get(body["metadata"]["ownerReferences"][0]["name"])
        if refusal is not None:  # for good (a quota, a webhook, a policy; invalid), or RBAC's
            if "is invalid" in refusal:
                raise Invalid(refusal)
            raise Forbidden(refusal, passing="cannot create resource" in refusal)
        job = copy.deepcopy(body)
        job["metadata"]["uid"] = self.new_uid()
        job["status"] = {}
        owner = job["metadata"]["ownerReferences"][0]["uid"]
        tasks = {t["metadata"]["uid"]: t for t in self.objects["tasks"].values()}
        if owner not in tasks:  # the GC would delete it at once; never run it
            raise Refused("owner gone")
        if tasks[owner]["spec"].get("egressRules") and not any(
            _owned(policy, owner) for policy in self.network_policies.values()
        ):
            self.unguarded_jobs.append(job["metadata"]["name"])
        self.jobs_created.setdefault(owner, []).append(job["metadata"]["uid"])
        self.jobs[job["metadata"]["uid"]] = JobTruth(task_uid=owner)
        written = self._commit("jobs", "ADDED", job)
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def create_network_policy(self, namespace: str, body: Obj) -> Obj:
        if self._fault("create_network_policy") is not None:
            raise ServerError("500")
        if self.terminating:
            raise self._refused_in_namespace()
        key = (namespace, body["metadata"]["name"])
        if key in self.network_policies:
            raise AlreadyExists(key[1])
        self.network_policies[key] = copy.deepcopy(body)
        return copy.deepcopy(body)

    async def get_network_policy(self, namespace: str, name: str) -> Obj | None:
        if self._fault("get_network_policy") is not None:
            raise ServerError("500")
        policy = self.network_policies.get((namespace, name))
        return copy.deepcopy(policy) if policy else None

    async def read_pod_log(self, namespace: str, pod: str, container: str) -> str | None:
        if self._fault("read_pod_log") is not None:
            raise ServerError("500")
        if (namespace, pod) not in self.objects["pods"]:
            return None
        return self.logs.get((namespace, pod), "")

    async def delete_job(self, namespace: str, name: str, uid: str) -> bool:
        fault = self._fault("delete_job")
        if fault == "5xx":
            raise ServerError("500")
        job = self.objects["jobs"].get((namespace, name))
        if job is None or job["metadata"]["uid"] != uid:
            return False
        owners = job["metadata"].get("ownerReferences") or [{}]
        self.job_deletes.append((uid, owners[0].get("uid", "")))
        self._delete("jobs", copy.deepcopy(job))
        if fault == "timeout":
            raise ClientTimeout
        return True

    async def release_job(self, namespace: str, name: str, uid: str, finalizer: str) -> Obj | None:
        fault = self._fault("release_job")
        if fault == "5xx":
            raise ServerError("500")
        job = self.objects["jobs"].get((namespace, name))
        if job is None or job["metadata"]["uid"] != uid:
            return None
        if self.kueue_down and _queued(job):  # vjob.kb.io covers a labelled Job's updates too
            raise AdmissionUnavailable(500, KUEUE_DOWN)
        job = copy.deepcopy(job)
        job["metadata"]["finalizers"] = [
            f for f in job["metadata"].get("finalizers") or () if f != finalizer
        ]
        if job["metadata"].get("deletionTimestamp") and not job["metadata"]["finalizers"]:
            self._delete("jobs", job)
            written = None
        else:
            written = self._commit("jobs", "MODIFIED", job)
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def release_pod(self, namespace: str, name: str, uid: str, gate: str) -> Obj | None:
        fault = self._fault("release_pod")
        if fault == "5xx":
            raise ServerError("500")
        pod = self.objects["pods"].get((namespace, name))
        if pod is None or pod["metadata"]["uid"] != uid:
            return None
        pod = copy.deepcopy(pod)
        gates = [g for g in pod["spec"].get("schedulingGates") or () if g.get("name") != gate]
        if gates:
            pod["spec"]["schedulingGates"] = gates
        else:
            pod["spec"].pop("schedulingGates", None)
        self.moved("pod released")
        written = self._commit("pods", "MODIFIED", pod)
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def deactivate_workload(self, namespace: str, name: str) -> None:
        if self._fault("deactivate_workload") is not None:
            raise ServerError("500")
        workload = self.objects["workloads"].get((namespace, name))
        if workload is None:
            return
        workload = copy.deepcopy(workload)
        workload["spec"]["active"] = False
        self._commit("workloads", "MODIFIED", workload)

    async def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        if self._fault("list_pods") is not None:
            raise ServerError("500")
        _, _, job_uid = label_selector.partition("controller-uid=")
        return [
            copy.deepcopy(p)
            for (ns, _), p in self.objects["pods"].items()
            if ns == namespace
            and (not job_uid or p["metadata"]["labels"]["controller-uid"] == job_uid)
        ]

    async def list_pages(
        self,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[Obj]:
        """Pages of one to three objects of one consistent list (taskop's Jobs only when a label
        selector is given); after any page but the last, the continue token may have expired:
        410 Gone, as the API server answers when etcd compacted the list's revision."""
        if self._fault("list_pages") is not None:
            self.lists_failed += 1
            raise ServerError("500")
        items = [copy.deepcopy(o) for o in self.objects[kind].values()]
        if kind == "jobs" and label_selector:
            items = [j for j in items if j["metadata"].get("labels")]
        rv = self.list_rv()
        size = self.rng.randint(1, 3)
        pages = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        for i, page in enumerate(pages):
            if i and self.rng.random() < self.gone_rate:
                self.gone += 1
                self.lists_failed += 1
                raise Gone("410: The provided continue parameter is too old")
            more = {"continue": f"{rv}/{i + 1}"} if i + 1 < len(pages) else {}
            yield {"metadata": {"resourceVersion": rv, **more}, "items": page}

    # --- Job controller and kubelet (one step each; the schedule picks which)
    def _pod_ends(self, pod_uid: str, fate: str) -> None:
        """A pod's fate, once: the Job controller counts a failure (its tracking finalizer sees
        even a deleted pod) and backs off before the next pod."""
        truth = self.pods.get(pod_uid)
        if truth is None or truth.fate:
            return
        truth.fate = fate
        job = self.jobs.get(truth.job_uid)
        if job is not None and fate in FAILURES:
            failures = sum(self.pods[p].fate in FAILURES for p in job.pods)
            delay = min(POD_FAILURE_BACKOFF * 2 ** (failures - 1), 360 * 10**9)
            job.next_create = self.clock() + delay

    def job_controller_step(self, job_key: Key, *, refuse: str | None = None) -> None:
        """One write of the Job controller, as its ``syncJob`` makes them: count an ended pod
        (its uid in ``uncountedTerminatedPods``), then release its tracking finalizer, then move
        it to ``failed``/``succeeded``; then finish the Job (Complete; Failed with
        DeadlineExceeded or BackoffLimitExceeded, its active pods deleted), or create a pod."""
        job = self.objects["jobs"].get(job_key)
        if (
            job is None
            or not job["spec"].get("template")
            or job["metadata"].get("deletionTimestamp")
        ):
            return
        uid = job["metadata"]["uid"]
        truth = self.jobs[uid]
        now = self.clock()
        if truth.started is None:
            truth.started = now
        status = job["status"]
        pods = [
            p
            for _, p in sorted(self.objects["pods"].items())
            if p["metadata"]["labels"].get("controller-uid") == uid
        ]
        uncounted = status.get("uncountedTerminatedPods") or {}
        pending = {u for v in uncounted.values() for u in v}
        ended = [
            p
            for p in pods
            if TRACKING in (p["metadata"].get("finalizers") or ())
            and p["metadata"]["uid"] not in pending
            and (p["status"]["phase"] in ("Succeeded", "Failed") or _deleting(p))
        ]
        if ended:  # 1. record them as ended, not yet counted
            job = copy.deepcopy(job)
            into = job["status"].setdefault("uncountedTerminatedPods", {})
            for p in ended:
                which = "succeeded" if p["status"]["phase"] == "Succeeded" else "failed"
                into.setdefault(which, []).append(p["metadata"]["uid"])
            self._commit("jobs", "MODIFIED", job)
            return
        tracked = [
            p
            for p in pods
            if p["metadata"]["uid"] in pending and TRACKING in p["metadata"].get("finalizers", ())
        ]
        if tracked:  # 2. let them go
            for p in tracked:
                self._untrack(p)
            return
        if pending:  # 3. count them
            job = copy.deepcopy(job)
            for which, uids in job["status"].pop("uncountedTerminatedPods").items():
                job["status"][which] = job["status"].get(which, 0) + len(uids)
            self._commit("jobs", "MODIFIED", job)
            return
        if status.get("conditions"):
            return
        active = [p for p in pods if p["status"]["phase"] in ("Pending", "Running")]
        active = [p for p in active if not _deleting(p)]
        if job["spec"].get("suspend"):
            # Suspended (Kueue: not admitted, or evicted): its active pods are deleted — their
            # tracking finalizer removed first, so they are never counted as failed — and no
            # pod is made. A bound pod runs out its grace period (the kubelet ends it).
            for p in active:
                pod_uid = p["metadata"]["uid"]
                self._untrack(p)
                held = copy.deepcopy(self.objects["pods"][_key(p)])
                if held["spec"].get("nodeName"):  # graceful: the kubelet ends it, then it goes
                    held["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                    self._commit("pods", "MODIFIED", held)
                else:  # unbound: gone at once (grace period 0), never ran
                    self._pod_ends(pod_uid, "never ran")
                    self._delete("pods", held)
            truth.started = None  # Kueue's stop resets startTime (the deadline counts anew)
            return
        deadline = job["spec"].get("activeDeadlineSeconds")
        condition: Obj | None = None
        if status.get("succeeded"):
            condition = {"type": "Complete", "status": "True"}
        elif deadline is not None and now - truth.started >= deadline * 10**9:
            condition = {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            }
        elif status.get("failed", 0) > job["spec"].get("backoffLimit", 6):
            condition = {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        if condition is not None:
            truth.failed = str(condition.get("reason") or "")
            if truth.failed == "DeadlineExceeded":
                self.moved("deadline")
            for p in active:  # a finished Job's active pods are deleted
                fate = "deadline" if truth.failed == "DeadlineExceeded" else "stopped"
                self._pod_ends(p["metadata"]["uid"], fate)
                self._delete("pods", copy.deepcopy(p))
            job = copy.deepcopy(job)
            job["status"]["conditions"] = [condition]
            self._commit("jobs", "MODIFIED", job)
            return
        if active or now < truth.next_create or self.terminating:
            return  # (no pod can be created in a namespace being deleted)
        if any(
            p["status"]["phase"] not in ("Succeeded", "Failed")
            and not (_queued(job) and _deleting(p))
            for p in pods
        ):
            # A pod being deleted is replaced once it has failed; a queued Job's (Kueue's stop)
            # at once, while it terminates (podReplacementPolicy TerminatingOrFailed).
            return
        if refuse:
            self._commit(
                "events",
                "ADDED",
                {
                    "metadata": {"namespace": job_key[0], "name": f"ev-{self.new_uid()}"},
                    "involvedObject": {
                        "kind": "Job",
                        "namespace": job_key[0],
                        "name": job_key[1],
                        "uid": uid,
                    },
                    "reason": "FailedCreate",
                    "message": refuse,
                },
            )
            return
        if truth.pods:
            self.moved("pod replaced")
        template = job["spec"]["template"]
        suffix = "".join(self.rng.choice(string.ascii_lowercase) for _ in range(5))
        pod: Obj = {
            "metadata": {
                "namespace": job_key[0],
                "name": f"{job_key[1]}-{suffix}",  # generateName: random, not ordered
                "uid": self.new_uid(),
                "creationTimestamp": format_seconds(now),
                "labels": {**template["metadata"]["labels"], "controller-uid": uid},
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "ownerReferences": [{"kind": "Job", "name": job_key[1], "uid": uid}],
                "finalizers": [TRACKING],
            },
            "spec": (
                {"schedulingGates": copy.deepcopy(template["spec"]["schedulingGates"])}
                if template.get("spec", {}).get("schedulingGates")
                else {}
            ),
            "status": {"phase": "Pending"},
        }
        self.pods[pod["metadata"]["uid"]] = PodTruth(uid, pod["metadata"]["name"])
        truth.pods.append(pod["metadata"]["uid"])
        self._commit("pods", "ADDED", pod)

    def kubelet_step(
        self, pod_key: Key, *, exit_code: int = 0, oom: bool = False, bad_image: bool = False
    ) -> None:
        pod = self.objects["pods"].get(pod_key)
        if pod is None or pod.get("spec", {}).get("nodeName") in self.nodes_deleted:
            return  # gone, or its node is (the pod GC deals with it)
        pod = copy.deepcopy(pod)
        phase = pod["status"]["phase"]
        truth = self.pods[pod["metadata"]["uid"]]
        if _deleting(pod):  # graceful deletion: its containers are killed
            if phase not in ("Pending", "Running"):
                return
            pod["status"] = {"phase": "Failed"}
            if phase == "Running":
                killed = {"terminated": {"exitCode": 137, "reason": "Error"}}
                pod["status"]["containerStatuses"] = [{"name": "task", "state": killed}]
            if not pod["metadata"].get("finalizers"):  # nothing holds it (Kueue's stop): it goes
                self._pod_ends(pod["metadata"]["uid"], "suspended")
                self._commit("pods", "MODIFIED", pod)
                self._delete("pods", copy.deepcopy(pod))
                return
        elif phase == "Pending":
            nodes = self.live_nodes()
            if not nodes or pod["spec"].get("schedulingGates"):
                return  # the scheduler binds no gated pod
            pod["spec"].setdefault("nodeName", self.rng.choice(nodes))
            truth.node = pod["spec"]["nodeName"]
            if bad_image:
                waiting = {
                    "reason": "ImagePullBackOff",
                    "message": 'Back-off pulling image "busybox:nope"',
                }
                statuses = [{"name": "task", "state": {"waiting": waiting}}]
                if pod["status"].get("containerStatuses") == statuses:
                    return
                pod["status"]["containerStatuses"] = statuses
                if not truth.pull_failed:
                    self.moved("image pull failure")
                truth.pull_failed = True
                self._commit("pods", "MODIFIED", pod)
                return
            job_uid = truth.job_uid
            owner = self.jobs[job_uid].task_uid
            self.started_at.setdefault(owner, int(self.list_rv()))
            running = [
                p for p in self.jobs[job_uid].pods if self.pods[p].ran and not self.pods[p].fate
            ]
            if running:
                self.concurrent_runs.append(owner)
            truth.ran = True
            pod["status"] = {
                "phase": "Running",
                "containerStatuses": [{"name": "task", "state": {"running": {}}}],
            }
        elif phase == "Running":
            if oom:
                self.moved("oom")
                self._pod_ends(pod["metadata"]["uid"], "oom")
                pod["status"] = {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "task",
                            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                        }
                    ],
                }
                self._commit("pods", "MODIFIED", pod)
                return
            report: Obj = {"taskop": "executor/v1", "failed": exit_code != 0}
            if exit_code:
                report["failureReason"] = f"Exited with status {exit_code}"
            else:
                # What the in-pod executor reports: a small result inline; a large one (up to
                # Diego's 51,200 bytes) printed by the result sidecar, its size and digest here.
                line = f"result of {pod['metadata']['name']}\n"
                result = line * (2000 if self.rng.random() < self.large_results else 1)
                self.results[pod["metadata"]["uid"]] = result
                if len(result) < 3000:
                    report["result"] = result
                else:
                    data = result.encode()
                    digest = hashlib.sha256(data).hexdigest()
                    report["resultLog"] = {"bytes": len(data), "sha256": digest}
                    encoded = base64.b64encode(data).decode()
                    self.logs[pod_key] = "\n".join(
                        [
                            f"taskop-result v1 bytes={len(data)} sha256={digest}",
                            *(encoded[i : i + 4096] for i in range(0, len(encoded), 4096)),
                            "taskop-result end",
                        ]
                    )
            self._pod_ends(pod["metadata"]["uid"], "succeeded" if exit_code == 0 else "exit 1")
            pod["status"] = {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [
                    {
                        "name": "task",
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": "Completed" if exit_code == 0 else "Error",
                                "message": json.dumps(report, separators=(",", ":")),
                            }
                        },
                    }
                ],
            }
        else:
            return
        self._commit("pods", "MODIFIED", pod)

    def evict(self, pod_key: Key) -> None:
        """The kubelet evicts a running pod (node pressure): Failed, reason Evicted, with the
        DisruptionTarget condition; it stays until someone deletes it."""
        pod = self.objects["pods"].get(pod_key)
        if pod is None or pod["status"]["phase"] != "Running" or _deleting(pod):
            return
        pod = copy.deepcopy(pod)
        message = "The node was low on resource: memory. "
        pod["status"] = {
            "phase": "Failed",
            "reason": "Evicted",
            "message": message,
            "conditions": [
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "TerminationByKubelet",
                    "message": message,
                }
            ],
            "containerStatuses": [
                {"name": "task", "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}
            ],
        }
        self._pod_ends(pod["metadata"]["uid"], "evicted")
        self._commit("pods", "MODIFIED", pod)

    # --- Kueue (its manager: Workloads, admission under a quota, eviction)
    def kueue_step(self, job_key: Key) -> None:
        """One write of Kueue's for a queued Job: make its Workload; admit it when the
        ClusterQueue has room (then unsuspend the Job); requeue an evicted one once its pods are
        gone (quota released); say why one waits."""
        job = self.objects["jobs"].get(job_key)
        if self.kueue_down or job is None or not _queued(job) or _deleting(job):
            return
        uid = job["metadata"]["uid"]
        workload = self._workload_of(uid)
        if workload is None:
            name = f"job-{job_key[1]}-{uid}"
            self._commit(
                "workloads",
                "ADDED",
                {
                    "metadata": {
                        "namespace": job_key[0],
                        "name": name,
                        "uid": self.new_uid(),
                        "ownerReferences": [{"kind": "Job", "name": job_key[1], "uid": uid}],
                    },
                    "spec": {"active": True},
                    "status": {"conditions": []},
                },
            )
            return
        workload = copy.deepcopy(workload)
        conditions = {c["type"]: c for c in workload["status"]["conditions"]}
        admitted = _true(conditions, "QuotaReserved")
        if job["status"].get("conditions"):  # finished: its quota is free
            if admitted:
                conditions["QuotaReserved"] = _cond("QuotaReserved", "False", "Finished", "")
                self._set(workload, conditions)
            return
        if admitted and not workload["spec"]["active"] and not _true(conditions, "Evicted"):
            self.kueue_evict(job_key, "Deactivated")
            return
        if admitted and _true(conditions, "Evicted"):
            pods = self._pods_of(uid)
            if any(
                not _deleting(p) and p["status"]["phase"] in ("Pending", "Running") for p in pods
            ):
                return  # the Job controller still stops them (status.active)
            message = str(conditions["Evicted"].get("message"))
            conditions["QuotaReserved"] = _cond("QuotaReserved", "False", "Pending", message)
            self._set(workload, conditions)
            return
        if admitted:
            if job["spec"].get("suspend") and not job["metadata"].get("annotations", {}).get(
                "stopping"
            ):
                self._suspend(job_key, False)  # Kueue resumes an admitted Job, whoever stopped it
            return
        if not workload["spec"]["active"]:
            return
        in_use = sum(
            1
            for w in self.objects["workloads"].values()
            if _true({c["type"]: c for c in w["status"]["conditions"]}, "QuotaReserved")
        )
        if in_use >= self.kueue_capacity:
            message = (
                "couldn't assign flavors to pod set main: insufficient unused quota for cpu in"
                " flavor default, 1 more needed"
            )
            if (conditions.get("QuotaReserved") or {}).get("message") != message:
                conditions["QuotaReserved"] = _cond("QuotaReserved", "False", "Pending", message)
                self._set(workload, conditions)
            return
        conditions["QuotaReserved"] = _cond("QuotaReserved", "True", "QuotaReserved", "")
        for type_ in ("Evicted", "Preempted"):
            if type_ in conditions:
                previous = conditions[type_].get("message")
                conditions[type_] = _cond(
                    type_, "False", "QuotaReserved", f"Previously: {previous}"
                )
        self._set(workload, conditions)
        self.moved("kueue admitted")
        self._suspend(job_key, False)

    def kueue_evict(self, job_key: Key, reason: str) -> None:
        """Kueue evicts an admitted Workload (a preemption, a PodsReady timeout, its queue
        stopped, a deactivation): Evicted (and Preempted) True, then the Job suspended."""
        job = self.objects["jobs"].get(job_key)
        if self.kueue_down or job is None or job["status"].get("conditions"):
            return
        workload = self._workload_of(job["metadata"]["uid"])
        if workload is None:
            return
        conditions = {c["type"]: c for c in workload["status"]["conditions"]}
        if not _true(conditions, "QuotaReserved") or _true(conditions, "Evicted"):
            return
        workload = copy.deepcopy(workload)
        if reason == "Preempted":
            message = (
                "Preempted to accommodate a workload (UID: w9, JobUID: j9) due to prioritization"
                " in the ClusterQueue"
            )
            conditions["Preempted"] = _cond("Preempted", "True", "InClusterQueue", message)
        else:
            message = f"The workload is evicted: {reason}"
        conditions["Evicted"] = _cond("Evicted", "True", reason, message)
        self._set(workload, conditions)
        truth = self.jobs[job["metadata"]["uid"]]
        self.evicted_tasks.add(truth.task_uid)
        ran = any(self.pods[p].ran for p in truth.pods)
        self.moved("kueue evicted after start" if ran else "kueue evicted before start")
        self._suspend(job_key, True)

    def _suspend(self, job_key: Key, suspend: bool) -> None:
        job = copy.deepcopy(self.objects["jobs"][job_key])
        job["spec"]["suspend"] = suspend
        self._commit("jobs", "MODIFIED", job)

    def _set(self, workload: Obj, conditions: dict[str, Obj]) -> None:
        workload["status"]["conditions"] = list(conditions.values())
        self._commit("workloads", "MODIFIED", workload)

    def _workload_of(self, job_uid: str) -> Obj | None:
        return next(
            (w for w in self.objects["workloads"].values() if _owned(w, job_uid)),
            None,
        )

    def _pods_of(self, job_uid: str) -> list[Obj]:
        return [
            p
            for p in self.objects["pods"].values()
            if p["metadata"]["labels"].get("controller-uid") == job_uid
        ]


KUEUE_DOWN = (
    'Internal error occurred: failed calling webhook "mjob.kb.io": failed to call webhook: Post'
    ' "https://127.0.0.1:9443/mutate-batch-v1-job?timeout=10s": dial tcp 127.0.0.1:9443: connect:'
    " connection refused"
)


def _queued(job: Obj) -> bool:
    return QUEUE_LABEL in (job["metadata"].get("labels") or {})


def _key(obj: Obj) -> Key:
    return (obj["metadata"]["namespace"], obj["metadata"]["name"])


def _cond(type_: str, status: str, reason: str, message: str) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def _true(conditions: dict[str, Obj], type_: str) -> bool:
    return (conditions.get(type_) or {}).get("status") == "True"


def _deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _owned(obj: Obj, uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or ())
