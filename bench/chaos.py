"""``python -m bench.chaos``: the reconcile core's promises under chaos, on a real cluster.

1,000 Tasks on kwok with varied outcomes; the operator SIGKILLed 50 times at random moments (and
started again); kube-apiserver and etcd each SIGKILLed and restarted once in the middle. With
``--standby`` (the default) a second replica runs beside it under kopf peering, as the chart's
``replicaCount: 2`` does, with a peering lifetime of 10 s: every kill hits the replica that is
active at that moment, its restart draws a new priority, so either may be the active one next,
and once, a third of the way in, the killed replica stays down for longer than the peering
lifetime, so the other must take over and reconcile from its stale caches. Then it waits until
every Task is Completed and checks, from its own watches:

- 0 Tasks lost: every Task created exists and is Completed;
- 0 second Jobs: no Task ever had two Job uids;
- every outcome is what its pod reported: the result is the pod's termination message, the failure
  reason the pod's (or the Job's) — each Task's kwok annotations chose it;
- all converged, and within a minute of that no Job still carries taskop's witness finalizer (each
  is released once its Task's status names it and it finished: a namespace deletes).

Usually run by ``bench/chaos`` (a private cluster, like ``bench/run``). Writes
``bench/results/chaos-<time>/results.json`` and ``report.md``; exits 1 if a promise was broken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.kube import JOBS, PODS, TASKS, Api, ApiError
from bench.procs import loadavg
from taskop.domain.decide import WITNESS_FINALIZER as WITNESS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
Obj = dict[str, Any]

OUTCOMES: list[tuple[float, str, dict[str, str], dict[str, Any], str]] = [
    # (share, kind, kwok annotations, extra spec, expected failure reason prefix ("" = success))
    (0.70, "success", {}, {}, ""),
    (0.12, "exit", {"exit-code": "3"}, {}, "exit status 3"),
    (0.06, "oom", {"exit-code": "137", "reason": "OOMKilled"}, {}, "OOMKilled"),
    (0.06, "deadline", {"complete": "never"}, {"timeoutSeconds": 4}, "DeadlineExceeded"),
    (0.06, "evicted", {"evict": "true"}, {}, "evicted"),
]


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _pick(share: float) -> tuple[str, dict[str, str], dict[str, Any], str]:
    acc = 0.0
    for weight, kind, kwok, extra, reason in OUTCOMES:
        acc += weight
        if share < acc:
            return kind, kwok, extra, reason
    return OUTCOMES[0][1:]


def plan(n: int, rng: random.Random) -> dict[str, tuple[str, Obj, str]]:
    """Task name → (kind, manifest, expected failure reason prefix)."""
    tasks = {}
    for i in range(n):
        kind, kwok, extra, reason = _pick(rng.random())
        name = f"c{i:05}"
        annotations = {
            "kwok.taskop.dev/duration": rng.choice(["0s", "500ms", "1s", "3s"]),
            **{f"kwok.taskop.dev/{k}": v for k, v in kwok.items()},
        }
        if kind == "success":
            annotations["kwok.taskop.dev/message"] = f"result of {name}"
        tasks[name] = (
            kind,
            {
                "apiVersion": "taskop.dev/v1alpha1",
                "kind": "Task",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "image": "busybox",
                    "action": {"run": {"path": "sh", "args": ["-c", "true"]}},
                    "resultFile": "/tmp/result",
                    **extra,
                },
            },
            reason,
        )
    return tasks


class Observer:
    """Watches the namespace's Jobs and pods for the whole run, re-listing after any break."""

    def __init__(self) -> None:
        self.job_uids: dict[str, set[str]] = defaultdict(set)  # Task → every Job uid seen
        self.pod_messages: dict[str, str] = {}  # Task → its task container's termination message

    def on_job(self, _: str, job: Obj, __: float) -> None:
        for owner in job["metadata"].get("ownerReferences") or ():
            if owner.get("kind") == "Task":
                self.job_uids[owner["name"]].add(job["metadata"]["uid"])

    def on_pod(self, _: str, pod: Obj, __: float) -> None:
        task = (pod["metadata"].get("annotations") or {}).get("taskop.dev/task-name")
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            terminated = (status.get("state") or {}).get("terminated")
            if task and status.get("name") == "task" and terminated:
                self.pod_messages[task] = terminated.get("message") or ""

    async def watch(self, api: Api, path: str, handler: Any) -> None:
        while True:
            try:
                await api.watch(path, handler, asyncio.Event())
            except (TimeoutError, ApiError, OSError, Exception) as e:
                if isinstance(e, asyncio.CancelledError):
                    raise
                await asyncio.sleep(0.5)


PEERING = "chaos"
PEERING_LIFETIME = 10  # seconds a killed replica's record counts as live (TASKOP_PEERING_LIFETIME)
ACTIVE = "reconciling: this replica is the active one"
STANDING_BY = "standing by: a peer"


class Operator:
    def __init__(
        self, kubeconfig: str, namespace: str, log_dir: Path, name: str = "operator",
        peering: bool = False,
    ) -> None:  # fmt: skip
        self.kubeconfig, self.namespace, self.log_dir = kubeconfig, namespace, log_dir
        self.name, self.peering = name, peering
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.offset = 0  # where this start's lines begin in the log
        self.exits = 0  # times it had exited by itself when it was to be killed

    def is_active(self) -> bool:
        """Whether the running process last said it reconciles (not that it stands by)."""
        path = self.log_dir / f"{self.name}.log"
        if not (self.proc and self.proc.poll() is None and path.exists()):
            return False
        with open(path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return text.rfind(ACTIVE) > text.rfind(STANDING_BY)

    def activations(self) -> int:
        """How often this replica became the active one (its log says so each time)."""
        path = self.log_dir / f"{self.name}.log"
        return path.read_text(errors="replace").count(ACTIVE) if path.exists() else 0

    def start(self) -> None:
        self.starts += 1
        path = self.log_dir / f"{self.name}.log"
        self.offset = path.stat().st_size if path.exists() else 0
        logf = open(path, "ab")
        env = {
            **os.environ,
            "TASKOP_HEALTH_PORT": "0",
            "TASKOP_METRICS_PORT": "0",  # two replicas on one machine: no port of their own
            "TASKOP_BBS_ENABLED": "false",
            "TASKOP_GLANCE_ENABLED": "false",
            "TASKOP_PEERING_LIFETIME": str(PEERING_LIFETIME),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskop", "run", f"--kubeconfig={self.kubeconfig}",
             f"--namespace={self.namespace}", "--log-format=plain",
             *([f"--peering={PEERING}"] if self.peering else [])],
            env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc and self.proc.poll() is not None:
            self.exits += 1
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def restart_component(name: str, cluster_dir: Path) -> float:
    """SIGKILL a cluster process, then `hack/cluster up` starts it again; seconds it took."""
    started = time.monotonic()
    pid = int((cluster_dir / "run" / f"{name}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    env = {**os.environ, "TASKOP_CLUSTER_DIR": str(cluster_dir)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "cluster"), "up"], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster up after killing {name} failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


async def create_all(api: Api, ns: str, manifests: list[Obj]) -> None:
    limit = asyncio.Semaphore(16)

    async def one(body: Obj) -> None:
        async with limit:
            for _ in range(60):  # through the API server's and etcd's restarts
                try:
                    await api.request("POST", TASKS.format(ns=ns), body)
                    return
                except ApiError as e:
                    if e.status == 409:
                        return
                except Exception:
                    pass
                await asyncio.sleep(1)
            raise RuntimeError(f"could not create {body['metadata']['name']}")

    await asyncio.gather(*(one(b) for b in manifests))


async def list_tasks(api: Api, ns: str) -> list[Obj]:
    for _ in range(60):
        try:
            return list((await api.request("GET", TASKS.format(ns=ns)))["items"])
        except Exception:
            await asyncio.sleep(1)
    raise RuntimeError("cannot list Tasks")


async def held_jobs(api: Api, ns: str, within: float) -> list[str]:
    """The Jobs still carrying the witness finalizer once ``within`` seconds have passed (or
    none, as soon as none does)."""
    deadline = time.monotonic() + within
    while True:
        try:
            jobs = (await api.request("GET", JOBS.format(ns=ns)))["items"]
        except Exception:
            jobs = None
        if jobs is not None:
            held = sorted(
                j["metadata"]["name"]
                for j in jobs
                if WITNESS in (j["metadata"].get("finalizers") or ())
            )
            if not held or time.monotonic() > deadline:
                return held
        await asyncio.sleep(2)


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"chaos-{stamp}"
    out.mkdir(parents=True)
    api = Api(args.kubeconfig)
    ns = f"chaos-{stamp[-6:]}"
    await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv" / "bin" / "kubectl"), f"--kubeconfig={args.kubeconfig}", "apply",
         "--server-side", "-f", str(ROOT / "charts" / "taskop" / "crds")],
        check=True, capture_output=True,
    )  # fmt: skip  (the chart's crds/: taskop's and kopf's peering CRDs)
    await api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    if args.standby:
        await api.request(
            "POST",
            f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
        )
    tasks = plan(args.tasks, rng)
    observer = Observer()
    watches = [
        asyncio.create_task(observer.watch(api, JOBS.format(ns=ns), observer.on_job)),
        asyncio.create_task(observer.watch(api, PODS.format(ns=ns), observer.on_pod)),
    ]
    operator = Operator(args.kubeconfig, ns, out, peering=args.standby)
    standby = Operator(args.kubeconfig, ns, out, name="standby", peering=True)
    if args.standby:
        standby.start()
    operator.start()
    takeover_at = args.kills // 3 if args.standby else 0
    replicas = [operator, standby] if args.standby else [operator]
    takeovers = 0
    started = time.monotonic()
    manifests = [m for _, m, _ in tasks.values()]
    creating = asyncio.create_task(create_all(api, ns, manifests))
    restarts: dict[str, float] = {}
    for kill in range(1, args.kills + 1):
        await asyncio.sleep(rng.uniform(0.2, 2 * args.mean_interval))
        victim = next((r for r in replicas if r.is_active()), operator)
        other = next((r for r in replicas if r is not victim), None)
        victim.kill()
        if kill == args.kills // 2:
            restarts["kube-apiserver"] = await asyncio.to_thread(
                restart_component, "kube-apiserver", args.cluster_dir
            )
            log(f"kube-apiserver restarted in {restarts['kube-apiserver']:.1f}s")
        if kill == args.kills * 3 // 4:
            restarts["etcd"] = await asyncio.to_thread(restart_component, "etcd", args.cluster_dir)
            log(f"etcd restarted in {restarts['etcd']:.1f}s")
        await asyncio.sleep(rng.uniform(0, 0.5))
        if kill == takeover_at and other is not None:
            before = other.activations()
            log(f"the active replica ({victim.name}) stays down {PEERING_LIFETIME + 20} s")
            await asyncio.sleep(PEERING_LIFETIME + 20)
            takeovers = other.activations() - before
            log(f"{other.name} took over {takeovers} time(s) meanwhile")
        victim.start()
        if kill % 10 == 0:
            log(f"{kill} kills; load {loadavg()}")
    await creating
    log("chaos over; waiting for every Task to complete")
    deadline = time.monotonic() + args.settle_timeout
    while True:
        items = await list_tasks(api, ns)
        done = sum((t.get("status") or {}).get("state") == "Completed" for t in items)
        if done == len(tasks) or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    converged_after = time.monotonic() - started
    held = await held_jobs(api, ns, within=60)
    await asyncio.sleep(3)  # let the watches see the last pods
    for w in watches:
        w.cancel()
    operator.kill()
    standby.kill()
    standby_activations = sum(r.activations() for r in replicas) - 1 if args.standby else 0

    by_name = {t["metadata"]["name"]: t for t in items}
    lost = sorted(set(tasks) - set(by_name))
    not_completed = sorted(
        n for n, t in by_name.items() if (t.get("status") or {}).get("state") != "Completed"
    )
    second_jobs = {n: sorted(u) for n, u in observer.job_uids.items() if len(u) > 1}
    wrong: dict[str, Any] = {}
    outcome_counts: dict[str, int] = defaultdict(int)
    for name, (kind, _, reason) in tasks.items():
        status = (by_name.get(name) or {}).get("status") or {}
        if status.get("state") != "Completed":
            continue
        outcome_counts[kind] += 1
        if reason:
            ok = status.get("failed") is True and status.get("failureReason", "").startswith(reason)
        else:
            reported = observer.pod_messages.get(name)
            ok = status.get("failed") is False and status.get("result") == reported == (
                f"result of {name}"
            )
        if not ok:
            wrong[name] = {"kind": kind, "status": status, "pod": observer.pod_messages.get(name)}
    crashed = {r.name: r.exits for r in replicas if r.exits}
    result = {
        "tasks": len(tasks),
        "operator_kills": args.kills,
        "operator_starts": operator.starts,
        "standby": args.standby,
        "active_replica_changes": standby_activations,
        "took_over_while_the_active_was_down": takeovers,
        "replicas_that_crashed": crashed,
        "component_restarts_s": restarts,
        "converged_after_s": round(converged_after, 1),
        "outcomes": dict(outcome_counts),
        "lost": lost,
        "not_completed": not_completed,
        "second_jobs": second_jobs,
        "jobs_still_held": held,
        "wrong_outcomes": wrong,
        "seed": args.seed,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    took_over = (takeovers > 0 or not args.standby) and not crashed
    passed = not (lost or not_completed or second_jobs or wrong or held) and took_over
    (out / "report.md").write_text(
        f"# Chaos run {stamp}\n\n"
        f"Command: `bench/chaos --tasks {args.tasks} --kills {args.kills} --seed {args.seed}"
        f"{'' if args.standby else ' --no-standby'}`\n\n"
        f"| Tasks | SIGKILLs of the active replica | active-replica changes |"
        f" API server / etcd restarts |"
        f" converged after | lost | second Jobs | wrong outcomes | not completed |"
        f" Jobs still held |\n"
        f"|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {len(tasks)} | {args.kills} | {standby_activations if args.standby else 'none'} | "
        f"{restarts.get('kube-apiserver', 0):.1f} s / {restarts.get('etcd', 0):.1f} s | "
        f"{converged_after:.0f} s | {len(lost)} | {len(second_jobs)} | {len(wrong)} | "
        f"{len(not_completed)} | {len(held)} |\n\nOutcomes: {dict(outcome_counts)}.\n\n"
        f"Verdict: **{'every promise kept' if passed else 'PROMISE BROKEN: see results.json'}**\n"
    )
    summary = {k: v for k, v in result.items() if k != "wrong_outcomes"}
    log(f"{'PASS' if passed else 'FAIL'}: {json.dumps(summary)[:2000]}")
    if wrong:
        log(f"wrong outcomes (first 3): {list(wrong.items())[:3]}")
    await api.request("DELETE", f"/api/v1/namespaces/{ns}", ok_missing=True)
    await api.close()
    return 0 if passed else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--cluster-dir", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--mean-interval", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--settle-timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a second replica under kopf peering, which must take over once (default: on)",
    )
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
