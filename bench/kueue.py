"""The `kueue` scenario: bare Jobs and taskop's Tasks through Kueue, in one run (issue 25).

On the bench's cluster: Kueue's manager started (`hack/cluster kueue up --no-build`, on ports of
its own so that it never meets the shared cluster's Kueue), a ResourceFlavor, a ClusterQueue with
room for every object of the largest burst at once, and a LocalQueue in each namespace. Then, for
each size N, `Bench.burst` twice, as the throughput scenario does: N bare Jobs labelled with the
queue and created suspended, then N Tasks with ``spec.queueName`` through an operator with
TASKOP_KUEUE_ENABLED=true (a suspended, gated Job each; Kueue admits and unsuspends it, taskop
records the pod and removes its gate). Kueue's manager CPU is measured for each half. Kueue is
stopped (`hack/cluster kueue down`) at the end, whatever happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.kube import JOBS, PODS, TASKS, Obj
from bench.procs import component_pids
from bench.scenarios import ROOT, Bench, Queued, bare_job_manifest, log

GROUP = "/apis/kueue.x-k8s.io/v1beta2"
NAME = "bench"  # the ResourceFlavor, ClusterQueue and LocalQueues
TASK_ANNOTATION = "taskop.dev/task-name"  # on a Task's pod
# Kueue v0.17's manager reads its metrics certificate from this fixed path, which `kueue up`
# links to its cluster's certificates (hack/cluster): put back as it was found.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")


def pod_request(pod_spec: Obj) -> dict[str, int]:
    """cpu (millicores) and memory (MiB) one pod asks for, an upper bound: every container's and
    init container's requests summed (Kueue counts at most that)."""
    total = {"cpu": 0, "memory": 0}
    for c in [*pod_spec.get("containers", []), *pod_spec.get("initContainers", [])]:
        requests = (c.get("resources") or {}).get("requests") or {}
        if cpu := requests.get("cpu"):
            total["cpu"] += int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)
        if mem := requests.get("memory"):
            units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
            unit = next((u for u in units if mem.endswith(u)), "")
            value = float(mem[: -len(unit)] if unit else mem)
            total["memory"] += int(-(-value * units.get(unit, 1 / 2**20) // 1))
    return total


def _condition(obj: Obj, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


class Kueue:
    """Kueue's manager on the bench's cluster, through hack/cluster (its env names the cluster
    dir, the API server's port and Kueue's private ports)."""

    def __init__(self, bench: Bench, ports: list[int]) -> None:
        if bench.cluster_dir is None:
            raise SystemExit("the kueue scenario needs --cluster-dir (hack/cluster's state dir)")
        self.bench = bench
        self.cluster_dir = bench.cluster_dir
        webhook, metrics, health = ports
        self.env = {
            **os.environ,
            "TASKOP_CLUSTER_DIR": str(self.cluster_dir),
            "TASKOP_APISERVER_PORT": str(urlparse(bench.api.base).port or 443),
            "TASKOP_KUEUE_WEBHOOK_PORT": str(webhook),
            "TASKOP_KUEUE_METRICS_PORT": str(metrics),
            "TASKOP_KUEUE_HEALTH_PORT": str(health),
        }
        self.ports = {"webhook": webhook, "metrics": metrics, "health": health}
        self.cert_link: str | None = None

    async def cluster(self, *args: str, check: bool = True) -> int:
        """``hack/cluster ARGS`` (its log goes to ours)."""
        cmd = [sys.executable, str(ROOT / "hack" / "cluster"), *args]
        log("$ hack/cluster " + " ".join(args))
        proc = await asyncio.to_thread(
            subprocess.run, cmd, env=self.env, stdout=sys.stderr, stderr=sys.stderr
        )
        if check and proc.returncode:
            raise RuntimeError(f"hack/cluster {' '.join(args)} failed ({proc.returncode})")
        return proc.returncode

    async def up(self) -> dict[str, int]:
        """Started (built once if it is not yet: cached in ~/.cache/taskop); its pid."""
        try:
            self.cert_link = os.readlink(METRICS_CERT_DIR)
        except OSError:
            self.cert_link = None
        if await self.cluster("kueue", "up", "--no-build", check=False):
            log("kueue up --no-build failed (not built yet?): building it once")
            await self.cluster("build", "kueue")
            await self.cluster("kueue", "up", "--no-build")
        pids = component_pids(self.cluster_dir, ["kueue"])
        if not pids:
            raise RuntimeError(f"kueue is up but {self.cluster_dir}/run/kueue.pid is not readable")
        return pids

    async def down(self) -> None:
        await self.cluster("kueue", "down", check=False)
        log_file = self.cluster_dir / "logs" / "kueue.log"
        if log_file.exists():
            shutil.copyfile(log_file, self.bench.out / "kueue.log")
        self.put_back_cert_link()

    def put_back_cert_link(self) -> None:
        if self.cert_link is None:
            return
        try:
            if os.readlink(METRICS_CERT_DIR) != self.cert_link:
                METRICS_CERT_DIR.unlink()
                METRICS_CERT_DIR.symlink_to(self.cert_link)
                log(f"{METRICS_CERT_DIR} points at {self.cert_link} again")
        except OSError as e:
            log(f"could not put back {METRICS_CERT_DIR} -> {self.cert_link}: {e}")


async def apply(bench: Bench, path: str, body: Obj) -> None:
    """Server-side apply (idempotent on a cluster used before)."""
    await bench.api.request(
        "PATCH",
        f"{path}/{body['metadata']['name']}?fieldManager=bench&force=true",
        body,
        "application/apply-patch+yaml",
    )


async def wait_active(bench: Bench, path: str, what: str, limit_s: float = 60) -> None:
    for _ in range(int(limit_s / 0.5)):
        if _condition(await bench.api.request("GET", path, ok_missing=True), "Active"):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{what} never became Active: {await bench.api.request('GET', path)}")


async def dump(bench: Bench, ns: str, kind: str) -> None:
    """What the objects of a burst that did not complete look like (before the namespace goes):
    counts by state, and the first few incomplete ones in full, with their Job, pods and
    Workload. Written to kueue-<kind>-debug.json."""
    lists = {
        "tasks": TASKS.format(ns=ns),
        "jobs": JOBS.format(ns=ns),
        "pods": PODS.format(ns=ns),
        "workloads": f"{GROUP}/namespaces/{ns}/workloads",
    }
    items: dict[str, list[Obj]] = {}
    for key, path in lists.items():
        items[key] = (await bench.api.request("GET", path, ok_missing=True)).get("items", [])

    def conds(o: Obj) -> str:
        cs = (o.get("status") or {}).get("conditions") or []
        return ",".join(sorted(f"{c['type']}={c['status']}" for c in cs)) or "-"

    def state(task: Obj) -> str:
        status = task.get("status") or {}
        return f"{status.get('state', '-')}/{status.get('reason', '-')}"

    counts = {
        "tasks": Counter(state(t) for t in items["tasks"]),
        "jobs": Counter(
            f"suspend={bool(j['spec'].get('suspend'))} {conds(j)}" for j in items["jobs"]
        ),
        "pods": Counter(
            f"{(p.get('status') or {}).get('phase')}"
            f" gated={bool(p['spec'].get('schedulingGates'))}"
            f" bound={bool(p['spec'].get('nodeName'))}"
            for p in items["pods"]
        ),
        "workloads": Counter(conds(w) for w in items["workloads"]),
    }
    incomplete = [
        t for t in items["tasks"] if (t.get("status") or {}).get("state") != "Completed"
    ] or [j for j in items["jobs"] if not _condition(j, "Complete")]
    samples: list[dict[str, Any]] = []
    for obj in incomplete[:3]:
        name = obj["metadata"]["name"]
        samples.append(
            {
                "object": obj,
                "jobs": [
                    j for j in items["jobs"]
                    if j["metadata"]["name"] == name
                    or any(o.get("name") == name for o in j["metadata"].get("ownerReferences", []))
                ],
                "pods": [
                    p for p in items["pods"]
                    if name in ((p["metadata"].get("annotations") or {}).get(TASK_ANNOTATION),
                                (p["metadata"].get("labels") or {}).get("job-name"))
                ],
            }
        )  # fmt: skip
        jobs = {j["metadata"]["name"] for j in samples[-1]["jobs"]}
        samples[-1]["workloads"] = [
            w for w in items["workloads"]
            if any(o.get("name") in jobs for o in w["metadata"].get("ownerReferences", []))
        ]  # fmt: skip
    queue = await bench.api.request("GET", f"{GROUP}/clusterqueues/{NAME}", ok_missing=True)
    out = bench.out / f"kueue-{kind}-debug.json"
    found = {"namespace": ns, "counts": counts, "cluster_queue_status": queue.get("status")}
    out.write_text(json.dumps({**found, "samples": samples}, indent=1))
    log(f"kueue {kind}: not all completed; {json.dumps(counts)}; details in {out}")


async def kueue(bench: Bench, sizes: list[int], ports: list[int]) -> dict[str, Any]:
    manager = Kueue(bench, ports)
    request = pod_request(bare_job_manifest("x", "x")["spec"]["template"]["spec"])
    room = max(sizes)
    quota = {"cpu": f"{room * request['cpu']}m", "memory": f"{room * request['memory']}Mi"}
    namespaces = [f"bench-kueue-{kind}-{n}" for n in sizes for kind in ("bare", "taskop")]
    per_pod = {"cpu": f"{request['cpu']}m", "memory": f"{request['memory']}Mi"}
    result: dict[str, Any] = {
        "setup": {
            "pod_request_upper_bound": per_pod,
            "cluster_queue_quota": quota,
            "ports": manager.ports,
        },
        "runs": [],
    }
    try:
        pids = await manager.up()
        cqs, lqs = f"{GROUP}/clusterqueues", f"{GROUP}/namespaces/{{ns}}/localqueues"
        await apply(bench, f"{GROUP}/resourceflavors", {
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
            "metadata": {"name": NAME},
        })  # fmt: skip
        await apply(bench, cqs, {
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
            "metadata": {"name": NAME},
            "spec": {
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces,
                }]},
                "resourceGroups": [{
                    "coveredResources": ["cpu", "memory"],
                    "flavors": [{"name": NAME, "resources": [
                        {"name": "cpu", "nominalQuota": quota["cpu"]},
                        {"name": "memory", "nominalQuota": quota["memory"]},
                    ]}],
                }],
            },
        })  # fmt: skip
        await wait_active(bench, f"{cqs}/{NAME}", f"ClusterQueue {NAME}")

        async def prepare(ns: str) -> None:
            await apply(bench, lqs.format(ns=ns), {
                "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                "metadata": {"name": NAME, "namespace": ns},
                "spec": {"clusterQueue": NAME},
            })  # fmt: skip
            await wait_active(bench, f"{lqs.format(ns=ns)}/{NAME}", f"LocalQueue {ns}/{NAME}")

        async def dump_burst(ns: str, kind: str) -> None:
            await dump(bench, ns, kind)

        queued = Queued(queue=NAME, prepare=prepare, pids=pids, dump=dump_burst)
        for n in sizes:
            bare = await bench.burst(n, bare=True, queued=queued)
            taskop = await bench.burst(n, bare=False, queued=queued)
            row: dict[str, Any] = {"n": n, "bare": bare, "taskop": taskop}
            row["ratio"] = {
                "throughput": _ratio(taskop["per_s"], bare["per_s"]),
                "p50": _ratio(
                    taskop["create_to_completed"]["p50_s"], bare["create_to_completed"]["p50_s"]
                ),
                "p99": _ratio(
                    taskop["create_to_completed"]["p99_s"], bare["create_to_completed"]["p99_s"]
                ),
            }
            row["kueue_cpu_s"] = {
                k: r["cpu"]["cpu_s"].get("kueue") for k, r in (("bare", bare), ("taskop", taskop))
            }
            result["runs"].append(row)
            log(
                f"kueue n={n}: bare {bare['per_s']}/s, taskop {taskop['per_s']}/s"
                f" (ratio {row['ratio']['throughput']}); Kueue CPU s {row['kueue_cpu_s']}"
            )
        for path in (f"{cqs}/{NAME}", f"{GROUP}/resourceflavors/{NAME}"):
            await bench.api.request("DELETE", path, ok_missing=True)
    finally:
        await manager.down()
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None
