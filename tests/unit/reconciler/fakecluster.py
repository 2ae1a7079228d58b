"""An in-memory API server, Job controller, kubelet and garbage collector for the simulation.

Small but faithful where the promises depend on it: resourceVersions from one counter, uid and
resourceVersion preconditions, AlreadyExists, merge-patch of status, cascading deletion of owned
objects, watch streams per kind in commit order, and API faults — a 5xx that changed nothing, and
a timeout *after* the change was made (the ambiguous one).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from taskop.domain.timefmt import format_seconds
from taskop.kube.client import AlreadyExists, Conflict, Forbidden, Invalid, NotFound, Refused

Obj = dict[str, Any]
Key = tuple[str, str]
KINDS = ("tasks", "jobs", "pods", "events")


class ServerError(Exception):
    """A 5xx answer: the change was not made."""


class ClientTimeout(TimeoutError):
    """No answer in time: the change *was* made."""


def merge_patch(target: Obj, patch: Obj) -> Obj:
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_patch(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


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

    # --- storage
    def _commit(self, kind: str, event: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        meta["resourceVersion"] = str(next(self._rv))
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
    def create_task(self, namespace: str, name: str, spec: Obj, labels: Obj | None = None) -> Obj:
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

    def user_delete(self, kind: str, key: Key) -> None:
        obj = self.objects[kind].get(key)
        if obj is not None:
            self._delete(kind, copy.deepcopy(obj))

    # --- garbage collector
    def _delete(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                self._commit(kind, "MODIFIED", obj)
            return
        self._commit(kind, "DELETED", obj)
        child = {"tasks": "jobs", "jobs": "pods"}.get(kind)
        if child:
            for other in list(self.objects[child].values()):
                owners = other["metadata"].get("ownerReferences") or ()
                if any(o.get("uid") == meta["uid"] for o in owners):
                    self._delete(child, copy.deepcopy(other))

    # --- the API the controller calls (KubeAPI)
    async def patch_task_status(
        self, namespace: str, name: str, resource_version: str, status: Obj
    ) -> Obj:
        fault = self._fault("patch_task_status")
        if fault == "5xx":
            raise ServerError("500")
        task = copy.deepcopy(self._get("tasks", namespace, name))
        if task["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("the object has been modified")
        before = str((task.get("status") or {}).get("failureReason") or "")
        task["status"] = merge_patch(task.get("status") or {}, status)
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
        task = copy.deepcopy(self._get("tasks", namespace, name))
        if resource_version and task["metadata"]["resourceVersion"] != resource_version:
            raise Conflict("the object has been modified")
        task = merge_patch(task, patch)
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
        if (namespace, name) in self.objects["jobs"]:
            raise AlreadyExists(name)
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
        written = self._commit("jobs", "ADDED", job)
        if fault == "timeout":
            raise ClientTimeout
        return written

    async def create_network_policy(self, namespace: str, body: Obj) -> Obj:
        if self._fault("create_network_policy") is not None:
            raise ServerError("500")
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
        """One page: the whole list (taskop's Jobs only when a label selector is given)."""
        if self._fault("list_pages") is not None:
            raise ServerError("500")
        items = [copy.deepcopy(o) for o in self.objects[kind].values()]
        if kind == "jobs" and label_selector:
            items = [j for j in items if j["metadata"].get("labels")]
        yield {"metadata": {"resourceVersion": self.list_rv()}, "items": items}

    # --- Job controller and kubelet (one step each; the schedule picks which)
    def job_controller_step(self, job_key: Key, *, refuse: str | None = None) -> None:
        job = self.objects["jobs"].get(job_key)
        if (
            job is None
            or job["status"].get("conditions")
            or not job["spec"].get("template")
            or job["metadata"].get("deletionTimestamp")
        ):
            return
        pods = [p for p in self.objects["pods"].values() if _owned(p, job["metadata"]["uid"])]
        if not pods:
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
                            "uid": job["metadata"]["uid"],
                        },
                        "reason": "FailedCreate",
                        "message": refuse,
                    },
                )
                return
            template = job["spec"]["template"]
            pod = {
                "metadata": {
                    "namespace": job_key[0],
                    "name": f"{job_key[1]}-{self.new_uid()}",
                    "uid": self.new_uid(),
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                    "labels": {
                        **template["metadata"]["labels"],
                        "controller-uid": job["metadata"]["uid"],
                    },
                    "annotations": dict(template["metadata"].get("annotations") or {}),
                    "ownerReferences": [
                        {"kind": "Job", "name": job_key[1], "uid": job["metadata"]["uid"]}
                    ],
                },
                "spec": {},
                "status": {"phase": "Pending"},
            }
            self._commit("pods", "ADDED", pod)
            return
        pod = pods[0]
        terminated = (
            (pod["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("terminated")
        )
        if terminated is None:
            return
        job = copy.deepcopy(job)
        ok = pod["status"]["phase"] == "Succeeded"
        job["status"]["conditions"] = [
            {
                "type": "Complete" if ok else "Failed",
                "status": "True",
                "reason": "" if ok else "BackoffLimitExceeded",
            }
        ]
        self._commit("jobs", "MODIFIED", job)

    def kubelet_step(self, pod_key: Key, *, exit_code: int = 0) -> None:
        pod = self.objects["pods"].get(pod_key)
        if pod is None:
            return
        pod = copy.deepcopy(pod)
        phase = pod["status"]["phase"]
        if phase == "Pending":
            job_uid = pod["metadata"]["labels"]["controller-uid"]
            for job in self.objects["jobs"].values():
                if job["metadata"]["uid"] == job_uid:
                    owner = job["metadata"]["ownerReferences"][0]["uid"]
                    self.started_at.setdefault(owner, int(self.list_rv()))
            pod["spec"]["nodeName"] = "node-1"
            pod["status"] = {
                "phase": "Running",
                "containerStatuses": [{"name": "task", "state": {"running": {}}}],
            }
        elif phase == "Running":
            job_uid = pod["metadata"]["labels"]["controller-uid"]
            report: Obj = {"taskop": "executor/v1", "failed": exit_code != 0}
            if exit_code:
                report["failureReason"] = f"Exited with status {exit_code}"
            else:
                # What the in-pod executor reports: a small result inline; a large one (up to
                # Diego's 51,200 bytes) printed by the result sidecar, its size and digest here.
                line = f"result of {pod['metadata']['name']}\n"
                result = line * (2000 if self.rng.random() < 0.3 else 1)
                self.results[job_uid] = result
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


def _owned(obj: Obj, uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or ())
