"""The API server's cost of one status write: a Task's status merge-patch against a Job's.

No operator and no pods: the benchmark's client writes the status of ``objects`` Tasks and of as
many batch/v1 Jobs (``spec.managedBy`` names someone else, so the Job controller leaves them
alone), in interleaved rounds, and reads the kube-apiserver's CPU seconds (/proc) around each batch
and every request's latency. Every write changes the object: it flips it between a Task's two
Running statuses (Pending with its Job made → Running on a node) or a Job's (``ready`` 0 → 1).

Variants, each a CRD of its own (group ``<variant>.bench.taskop.dev``, kind ``BenchTask``, the
Task's schema):

- ``task``: crds/ as installed by the run, the whole status in each patch (taskop's write);
- ``task-changed``: the same CRD, a patch with only the fields that changed;
- ``task-put``: the same CRD, the whole status in an update (``PUT …/status``), not a patch;
- ``task-base``: the CRD at another git revision (``--status-base REV``), the whole status;
- ``task-no-oldself``: crds/ without its transition rules (every rule that reads ``oldSelf``);
- ``task-no-cel``: crds/ without any ``x-kubernetes-validations`` rule;
- ``task-no-schema``: spec and status ``x-kubernetes-preserve-unknown-fields`` (no structure to
  validate, prune or track in managedFields beyond what the object holds);
- ``file-<name>``: a CRD file of one's own (``--status-crd name=path``), e.g. a candidate rule set.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from bench.kube import CRDS, JOBS, Obj
from bench.procs import cpu_seconds
from bench.scenarios import ROOT, Bench, bare_job_manifest, limited, log, task_manifest

SHARED = {"task-changed": "c", "task-put": "p"}
"""Variants writing Tasks of their own in the installed CRD (the Tasks of ``task``), by prefix."""
GROUP = "taskop.dev"
KIND, PLURAL = "BenchTask", "benchtasks"  # the variants' kind
VARIANTS = [
    "task",
    "task-changed",
    "task-put",
    "task-base",
    "task-no-oldself",
    "task-no-cel",
    "task-no-schema",
]


def _strip_rules(schema: Any, keep: Any) -> Any:
    """``schema`` with only the CEL rules ``keep(rule)`` accepts."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "x-kubernetes-validations":
                value = [r for r in value if keep(r)]
                if not value:
                    continue
            out[key] = _strip_rules(value, keep)
        return out
    if isinstance(schema, list):
        return [_strip_rules(x, keep) for x in schema]
    return schema


def _uses_old_self(rule: dict[str, Any]) -> bool:
    return "oldSelf" in rule["rule"] or "oldSelf" in rule.get("messageExpression", "")


def crd_variant(crd: Obj, variant: str) -> Obj:
    """The Task CRD for ``variant``, renamed into a group of its own."""
    crd = copy.deepcopy(crd)
    version = crd["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    if variant == "task-no-oldself":
        root = _strip_rules(root, lambda r: not _uses_old_self(r))
    elif variant == "task-no-cel":
        root = _strip_rules(root, lambda r: False)
    elif variant == "task-no-schema":
        loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        root = {**root, "properties": {**root["properties"], "spec": loose, "status": loose}}
        version.pop("additionalPrinterColumns", None)
    version["schema"]["openAPIV3Schema"] = root
    group = f"{variant}.bench.{GROUP}"
    crd["spec"]["group"] = group
    # a kind of its own: kubectl's "tasks" and the "taskop" category stay taskop's own
    crd["spec"]["names"] = {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL,
                            "singular": KIND.lower()}  # fmt: skip
    crd["metadata"] = {"name": f"{PLURAL}.{group}"}
    return crd


def base_crd(rev: str) -> Obj:
    text = subprocess.run(
        ["git", "show", f"{rev}:crds/taskop.dev_tasks.yaml"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    crd: Obj = yaml.safe_load(text)
    return crd


def rule_counts(crd: Obj) -> dict[str, int]:
    rules: list[dict[str, Any]] = []

    def walk(s: Any) -> None:
        if isinstance(s, dict):
            rules.extend(s.get("x-kubernetes-validations", []))
            for v in s.values():
                walk(v)
        elif isinstance(s, list):
            for v in s:
                walk(v)

    walk(crd["spec"]["versions"][0]["schema"])
    return {"rules": len(rules), "oldSelf_rules": sum(1 for r in rules if _uses_old_self(r))}


def _ts(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def task_status(name: str, i: int, now_ns: int) -> Obj:
    """A Task's status as taskop writes it, two ways around: its Job made (even ``i``), then its
    pod running on a node (odd ``i``)."""
    running = i % 2 == 1
    since = _ts(now_ns)[:19] + "Z"
    return {
        "state": "Running" if running else "Pending",
        "failed": False,
        "failureReason": "",
        "result": "",
        "cellId": "kwok-node-1" if running else "",
        "jobName": name,
        "podName": f"{name}-x7k2q" if running else "",
        "createdAt": _ts(now_ns - 2_000_000_000),
        "updatedAt": _ts(now_ns),
        "firstCompletedAt": None,
        "rejectionCount": 0,
        "rejectionReason": "",
        "conditions": [
            {
                "type": "Running",
                "status": "True" if running else "False",
                "reason": "PodRunning" if running else "JobCreated",
                "message": f"pod {name}-x7k2q runs on kwok-node-1"
                if running
                else f"job {name} created; its pod has not started",
                "lastTransitionTime": since,
                "observedGeneration": 1,
            },
            {
                "type": "Completed",
                "status": "False",
                "reason": "PodRunning" if running else "JobCreated",
                "message": "not finished",
                "lastTransitionTime": since,
                "observedGeneration": 1,
            },
        ],
        "observedGeneration": 1,
    }


def changed_only(new: Obj, old: Obj | None) -> Obj:
    """The merge patch that takes ``old`` to ``new``, top-level status fields only."""
    if old is None:
        return new
    return {k: v for k, v in new.items() if old.get(k) != v}


def job_status(i: int, started: str) -> Obj:
    """A running Job's status, its pod ready on odd ``i`` (``startTime`` never changes once set)."""
    return {
        "active": 1,
        "ready": i % 2,
        "terminating": 0,
        "startTime": started,
        "uncountedTerminatedPods": {},
    }


class StatusWrites:
    """``n`` status writes per variant, in ``rounds`` interleaved rounds, ``inflight`` at once."""

    def __init__(self, bench: Bench, n: int, base_rev: str | None, inflight: int = 8,
                 objects: int = 100, rounds: int = 4,
                 files: dict[str, str] | None = None) -> None:  # fmt: skip
        self.bench, self.api = bench, bench.api
        self.n, self.inflight, self.objects, self.rounds = n, inflight, objects, rounds
        self.ns = "bench-status"
        self.apiserver = bench.cluster_pids.get("kube-apiserver")
        self.etcd = bench.cluster_pids.get("etcd")
        self.base_rev = base_rev
        self.files: dict[str, Obj] = {
            f"file-{name}": yaml.safe_load(Path(path).read_text())
            for name, path in (files or {}).items()
        }
        self.variants = [v for v in VARIANTS if v != "task-base" or base_rev]
        self.variants += [*self.files, "job"]
        self.names = [f"s-{i:04d}" for i in range(objects)]
        self.last: dict[tuple[str, str], Obj] = {}
        self.rvs: dict[str, str] = {}  # task-put's objects: the resourceVersion last written
        self.writes: dict[tuple[str, str], int] = {}
        self.paths: dict[str, str] = {}
        self.crds: dict[str, Obj] = {}
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    async def _install(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        await self.api.request(
            "PATCH", f"{CRDS}/{name}?fieldManager=bench&force=true", crd,
            "application/apply-patch+yaml",
        )  # fmt: skip
        while True:
            got = await self.api.request("GET", f"{CRDS}/{name}")
            conds = (got.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return
            await asyncio.sleep(0.2)

    async def setup(self) -> None:
        installed = yaml.safe_load((ROOT / "crds" / "taskop.dev_tasks.yaml").read_text())
        await self.bench.new_namespace(self.ns)
        for variant in self.variants:
            if variant == "job":
                path = JOBS.format(ns=self.ns)
                bodies = []
                for x in self.names:
                    job = bare_job_manifest(x, self.ns)
                    job["spec"]["managedBy"] = "bench.taskop.dev/status-writes"
                    bodies.append(job)
            else:
                crd = installed
                if variant == "task-base":
                    crd = crd_variant(base_crd(self.base_rev or "HEAD"), variant)
                elif variant in self.files:
                    crd = crd_variant(self.files[variant], variant)
                elif variant not in ("task", "task-changed", "task-put"):
                    crd = crd_variant(installed, variant)
                self.crds[variant] = crd
                if crd is not installed:
                    await self._install(crd)
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                path = f"/apis/{group}/v1alpha1/namespaces/{self.ns}/{plural}"
                bodies = []
                for x in self.names:
                    task = task_manifest(x)
                    task["apiVersion"] = f"{group}/v1alpha1"
                    task["kind"] = crd["spec"]["names"]["kind"]
                    bodies.append(task)
            self.paths[variant] = path
            if variant not in SHARED:  # in the CRD of "task" (Tasks of their own, below)
                await self.bench.create_all(path, bodies)
        for prefix in SHARED.values():
            bodies = [task_manifest(f"{prefix}{x}") for x in self.names]
            await self.bench.create_all(self.paths["task"], bodies)

    def _body(self, variant: str, name: str) -> Obj:
        key = (variant, name)
        i = self.writes.get(key, 0)
        self.writes[key] = i + 1
        now = time.time_ns()
        if variant == "job":
            return {"status": job_status(i, self.started)}
        status = task_status(name, i, now)
        old = self.last.get(key)
        self.last[key] = status
        if variant == "task-put":
            crd = self.crds["task"]
            return {
                "apiVersion": f"{crd['spec']['group']}/v1alpha1",
                "kind": crd["spec"]["names"]["kind"],
                "metadata": {"name": name},
                "status": status,
            }
        return {"status": changed_only(status, old) if variant == "task-changed" else status}

    async def _batch(self, variant: str, count: int, start: int) -> dict[str, Any]:
        latencies: list[float] = []
        path = self.paths[variant]
        prefix = SHARED.get(variant, "")

        async def write(k: int) -> None:
            name = prefix + self.names[k % self.objects]
            body = self._body(variant, name)
            t = time.monotonic()
            if variant == "task-put":  # an update needs the resourceVersion (taskop's cache has it)
                if name not in self.rvs:
                    got = await self.api.request("GET", f"{path}/{name}")
                    self.rvs[name] = got["metadata"]["resourceVersion"]
                body["metadata"]["resourceVersion"] = self.rvs[name]
                written = await self.api.request("PUT", f"{path}/{name}/status", body)
                self.rvs[name] = written["metadata"]["resourceVersion"]
            else:
                await self.api.request(
                    "PATCH", f"{path}/{name}/status", body, "application/merge-patch+json"
                )
            latencies.append(time.monotonic() - t)

        cpu0 = cpu_seconds(self.apiserver) if self.apiserver else 0.0
        etcd0 = cpu_seconds(self.etcd) if self.etcd else 0.0
        t0 = time.monotonic()
        await limited((write(k) for k in range(start, start + count)), self.inflight)
        wall = time.monotonic() - t0
        return {
            "writes": count,
            "wall_s": wall,
            "apiserver_cpu_s": (cpu_seconds(self.apiserver) - cpu0) if self.apiserver else None,
            "etcd_cpu_s": (cpu_seconds(self.etcd) - etcd0) if self.etcd else None,
            "latencies": latencies,
        }

    async def run(self) -> dict[str, Any]:
        await self.setup()
        # warm up: every object written twice by every variant (caches, connections, CEL)
        for variant in self.variants:
            await self._batch(variant, 2 * self.objects, 0)
        idle0 = cpu_seconds(self.apiserver) if self.apiserver else 0.0
        await asyncio.sleep(5)
        idle = ((cpu_seconds(self.apiserver) - idle0) / 5) if self.apiserver else None
        per_round = max(1, self.n // self.rounds)
        batches: dict[str, list[dict[str, Any]]] = {v: [] for v in self.variants}
        for r in range(self.rounds):
            order = (
                self.variants[r % len(self.variants) :] + self.variants[: r % len(self.variants)]
            )
            for variant in order:
                batches[variant].append(await self._batch(variant, per_round, r * per_round))
            log(f"status writes: round {r + 1}/{self.rounds} done")
        result: dict[str, Any] = {
            "n": per_round * self.rounds,
            "rounds": self.rounds,
            "objects": self.objects,
            "inflight": self.inflight,
            "base_rev": self.base_rev,
            "apiserver_idle_cores": round(idle, 4) if idle is not None else None,
            "rules": {v: rule_counts(c) for v, c in self.crds.items()},
            "variants": {},
        }
        for variant, rows in batches.items():
            writes = sum(b["writes"] for b in rows)
            lat = [x for b in rows for x in b["latencies"]]
            cpu = [b["apiserver_cpu_s"] for b in rows if b["apiserver_cpu_s"] is not None]
            etcd = [b["etcd_cpu_s"] for b in rows if b["etcd_cpu_s"] is not None]
            wall = sum(b["wall_s"] for b in rows)
            result["variants"][variant] = {
                "writes": writes,
                "per_s": round(writes / wall, 1),
                "apiserver_cpu_ms_per_write": round(1000 * sum(cpu) / writes, 3) if cpu else None,
                "apiserver_cpu_ms_per_write_rounds": [
                    round(1000 * b["apiserver_cpu_s"] / b["writes"], 3)
                    for b in rows
                    if b["apiserver_cpu_s"] is not None
                ],
                "etcd_cpu_ms_per_write": round(1000 * sum(etcd) / writes, 3) if etcd else None,
                "latency_p50_ms": round(1000 * statistics.median(lat), 2),
                "latency_p99_ms": round(1000 * sorted(lat)[int(0.99 * (len(lat) - 1))], 2),
                "latency_mean_ms": round(1000 * statistics.fmean(lat), 2),
            }
        job = result["variants"]["job"]
        for row in result["variants"].values():
            row["ratio_to_job"] = {
                key: round(row[key] / job[key], 2) if row.get(key) and job.get(key) else None
                for key in ("apiserver_cpu_ms_per_write", "latency_p50_ms", "latency_mean_ms")
            }
        await self.teardown()
        log(f"status writes: { {v: r['ratio_to_job'] for v, r in result['variants'].items()} }")
        return result

    async def teardown(self) -> None:
        await self.bench.delete_namespace(self.ns)
        for crd in self.crds.values():
            if crd["spec"]["group"] != GROUP:
                await self.api.request(
                    "DELETE", f"{CRDS}/{crd['metadata']['name']}", ok_missing=True
                )


async def status_writes(
    bench: Bench, n: int, base_rev: str | None, files: list[str] | None = None
) -> dict[str, Any]:
    """``files``: ``name=path`` of CRD files measured too (variants ``file-<name>``)."""
    own = dict(f.split("=", 1) for f in files or [])
    return await StatusWrites(bench, n, base_rev, files=own).run()
