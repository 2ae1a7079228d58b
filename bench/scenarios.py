"""The measurements: API-server ceiling, burst throughput (taskop vs bare Jobs), steady-load
latency and held-Task memory. Each runs in a namespace of its own, deleted afterwards."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.kube import (
    ADMISSION,
    ADMISSION_PLURALS,
    CRDS,
    JOBS,
    TASKS,
    Api,
    Obj,
    Timeline,
    apiserver_requests,
)
from bench.kube import watch_namespace as start_watches
from bench.procs import CpuMeter, Operator, Profiler
from taskop.domain.jobs import JobSettings, build_job
from taskop.domain.queueing import QUEUE_LABEL
from taskop.domain.spec import parse_spec
from taskop.domain.timefmt import format_ns
from taskop.kube.client import Kube, load_api_client

ROOT = Path(__file__).resolve().parent.parent
FAKE_UID = "00000000-0000-0000-0000-000000000000"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def task_manifest(name: str, kwok: dict[str, str] | None = None) -> Obj:
    """The Task of tests/tasks.py: ``sh -c 'echo hello world > /tmp/result'`` on a kwok pod."""
    return {
        "apiVersion": "taskop.dev/v1alpha1",
        "kind": "Task",
        "metadata": {
            "name": name,
            "annotations": {f"kwok.taskop.dev/{k}": v for k, v in (kwok or {}).items()},
        },
        "spec": {
            "image": "busybox",
            "action": {"run": {"path": "sh", "args": ["-c", "echo hello world > /tmp/result"]}},
            "resultFile": "/tmp/result",
        },
    }


def bare_job_manifest(name: str, namespace: str, kwok: dict[str, str] | None = None) -> Obj:
    """The very Job taskop would make for that Task (its own builder), without the owner Task."""
    task = task_manifest(name, kwok)
    job = build_job(
        name,
        namespace,
        FAKE_UID,
        parse_spec(task["spec"]),
        JobSettings(),
        annotations=task["metadata"]["annotations"],
    )
    del job["metadata"]["ownerReferences"]
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        labels["app.kubernetes.io/managed-by"] = "bench"
    return job


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 4)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_s": pct(values, 50),
        "p99_s": pct(values, 99),
        "max_s": round(max(values), 4) if values else None,
    }


async def limited(calls: Iterable[Awaitable[Any]], concurrency: int) -> None:
    """Await every call (coroutines, started lazily), at most ``concurrency`` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Awaitable[Any]) -> None:
        async with slots:
            await call

    await asyncio.gather(*(one(c) for c in calls))


@dataclass
class Queued:
    """A burst through Kueue (the `kueue` scenario, bench/kueue.py): Tasks with
    ``spec.queueName``, an operator with TASKOP_KUEUE_ENABLED=true; bare Jobs labelled with the
    queue and created suspended."""

    queue: str  # the LocalQueue's name, in each namespace
    prepare: Callable[[str], Awaitable[None]]  # make the namespace's LocalQueue, until Active
    pids: dict[str, int]  # Kueue's manager: its CPU per burst
    dump: Callable[[str, str], Awaitable[Any]]  # (namespace, kind): when not all completed


@dataclass
class Bench:
    api: Api
    kubeconfig: str
    out: Path
    cluster_pids: dict[str, int]
    concurrency: int = 32
    timeout: float = 900.0
    bbs_port: int = 0  # > 0: operators also serve the BBS API (memory with its view)
    cluster_dir: Path | None = None  # hack/cluster's state dir (the kueue scenario starts Kueue)

    # --- plumbing
    async def install_crd(self) -> None:
        """The Task CRD, the admission policy that keeps a Task's spec immutable, and the Glance
        door's TaskType CRD (``--bbs-api`` serves the door): crds/ as an install applies it."""
        for doc in yaml.safe_load_all(
            (ROOT / "crds" / "taskop.dev_tasks.immutable.yaml").read_text()
        ):
            await self.api.request(
                "PATCH",
                f"{ADMISSION}/{ADMISSION_PLURALS[doc['kind']]}/{doc['metadata']['name']}"
                "?fieldManager=bench&force=true",
                body=doc,
                content_type="application/apply-patch+yaml",
            )
        for plural in ("tasks", "tasktypes"):
            text = (ROOT / "crds" / f"taskop.dev_{plural}.yaml").read_text()
            await self.api.request(
                "PATCH",
                f"{CRDS}/{plural}.taskop.dev?fieldManager=bench&force=true",
                body=yaml.safe_load(text),  # JSON is YAML
                content_type="application/apply-patch+yaml",
            )
            while True:
                crd = await self.api.request("GET", f"{CRDS}/{plural}.taskop.dev")
                conds = (crd.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                    break
                await asyncio.sleep(0.2)

    async def new_namespace(self, ns: str) -> None:
        await self.delete_namespace(ns)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        await self.api.request("POST", "/api/v1/namespaces", body)
        while not (  # noqa: ASYNC110 - polling the API server
            await self.api.request(
                "GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default", ok_missing=True
            )
        ):
            await asyncio.sleep(0.2)

    async def delete_namespace(self, ns: str) -> None:
        """Drop taskop's finalizers (its operator is stopped by now: Tasks of taskop <= 0.1, a
        Job's witness not yet released), delete, wait until gone."""
        started = time.monotonic()
        tasks = await self.api.request("GET", TASKS.format(ns=ns), ok_missing=True)
        jobs = await self.api.request("GET", JOBS.format(ns=ns), ok_missing=True)
        patch = {"metadata": {"finalizers": None}}
        merge = "application/merge-patch+json"
        held = [
            f"{path}/{o['metadata']['name']}"
            for path, listed in ((TASKS.format(ns=ns), tasks), (JOBS.format(ns=ns), jobs))
            for o in listed.get("items", [])
            if o["metadata"].get("finalizers")
        ]
        await limited((self.api.request("PATCH", o, patch, merge) for o in held), self.concurrency)
        await self.api.request("DELETE", f"/api/v1/namespaces/{ns}", ok_missing=True)
        while await self.api.request("GET", f"/api/v1/namespaces/{ns}", ok_missing=True):
            if time.monotonic() - started > 600:
                log(f"namespace {ns} still terminating after 600s; going on")
                return
            await asyncio.sleep(1)
        if tasks.get("items"):
            log(f"deleted namespace {ns} in {time.monotonic() - started:.0f}s")

    async def create_all(self, path: str, bodies: list[Obj]) -> float:
        """Create every object (``concurrency`` in flight); returns the seconds it took."""
        started = time.monotonic()
        await limited((self.api.request("POST", path, b) for b in bodies), self.concurrency)
        return time.monotonic() - started

    async def wait_for(
        self, what: str, done: Callable[[], int], total: int, limit_s: float | None = None
    ) -> bool:
        deadline = time.monotonic() + (limit_s or self.timeout)
        last = 0.0
        while (count := done()) < total:
            if time.monotonic() > deadline:
                log(f"timed out: {count}/{total} {what}")
                return False
            if time.monotonic() - last > 10:
                log(f"  {count}/{total} {what}")
                last = time.monotonic()
            await asyncio.sleep(0.1)
        return True

    async def wait_quiet(self, op: Operator, cores: float = 0.05, window: float = 5.0) -> bool:
        """Until the operator used less than ``cores`` over the last ``window`` seconds."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            recent = [s for s in op.samples if s[0] >= op.samples[-1][0] - window]
            if recent[-1][0] - recent[0][0] >= window - 1:
                if (recent[-1][2] - recent[0][2]) / (recent[-1][0] - recent[0][0]) < cores:
                    return True
        log(f"timed out: the operator never went quiet ({op.log_path})")
        return False

    async def start_operator(
        self, ns: str, timeline: Timeline, env: dict[str, str] | None = None
    ) -> Operator:
        """The operator for ``ns``, proven live by a canary Task that reaches Completed."""
        op = Operator(self.kubeconfig, ns, self.out / f"operator-{ns}.log", self.bbs_port, env)
        await op.started()
        await self.api.request("POST", TASKS.format(ns=ns), task_manifest("canary"))
        ok = await self.wait_for("canary", lambda: timeline.count("completed", {"canary"}), 1, 60)
        if not ok:
            op.stop()
            raise RuntimeError(f"the operator never completed the canary; see {op.log_path}")
        return op

    # --- the scenarios
    async def ceiling(self, n: int) -> dict[str, Any]:
        """Raw API-server rates for taskop's objects, with no operator and no pods."""
        ns = "bench-ceiling"
        await self.new_namespace(ns)
        names = [f"c-{i:05d}" for i in range(n)]
        meter = CpuMeter(self.cluster_pids)
        tasks_path, jobs_path = TASKS.format(ns=ns), JOBS.format(ns=ns)
        result: dict[str, Any] = {"n": n, "concurrency": self.concurrency}
        took = await self.create_all(tasks_path, [task_manifest(x) for x in names])
        result["task_create_per_s"] = round(n / took, 1)
        started = time.monotonic()
        status = {"status": {"state": "Pending", "failed": False}}
        await limited(
            (
                self.api.request(
                    "PATCH", f"{tasks_path}/{x}/status", status, "application/merge-patch+json"
                )
                for x in names
            ),
            self.concurrency,
        )
        result["task_status_patch_per_s"] = round(n / (time.monotonic() - started), 1)
        started = time.monotonic()
        await limited(
            (self.api.request("GET", f"{tasks_path}/{x}") for x in names),
            self.concurrency,
        )
        result["task_get_per_s"] = round(n / (time.monotonic() - started), 1)
        jobs = []
        for x in names:
            job = bare_job_manifest(x, ns)
            job["spec"]["suspend"] = True  # a pure write: no pods
            jobs.append(job)
        took = await self.create_all(jobs_path, jobs)
        result["job_create_per_s"] = round(n / took, 1)
        result["cpu"] = meter.result()
        await self.delete_namespace(ns)
        log(f"ceiling: {result}")
        return result

    async def client_cost(self, n: int) -> dict[str, Any]:
        """CPU per API request of the operator's own client stack (taskop.kube on
        kubernetes_asyncio), as shipped and with aiohttp's ``trust_env`` off: with it on, every
        request makes two thread-pool hops (reading ~/.netrc, proxy variables)."""
        result: dict[str, Any] = {"n": n, "request": "GET Job, absent (Kube.get_job)"}
        for trust_env in (True, False, True, False):
            api = await load_api_client(self.kubeconfig)
            if not trust_env:
                api.rest_client.pool_manager._trust_env = False
            kube = Kube(api)
            await kube.get_job("default", "absent")  # connect
            cpu, wall = time.process_time(), time.monotonic()
            await limited((kube.get_job("default", "absent") for _ in range(n)), 16)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            await kube.close()
            key = "trust_env_on" if trust_env else "trust_env_off"  # the last of two rounds
            result[key] = {"cpu_ms_per_request": round(1000 * cpu / n, 3), "per_s": round(n / wall)}
        result["status_write"] = await self._status_write_cost(n // 4)
        log(f"client cost: {result}")
        return result

    async def _status_write_cost(self, n: int) -> dict[str, Any]:
        """CPU per Task status merge-patch, one at a time, through kubernetes_asyncio's generated
        call (taskop's path before issue 24) and through `Kube.patch_task_status` (straight on
        the client's aiohttp session), in alternating rounds; the last round of each is kept."""
        ns = "bench-client"
        await self.new_namespace(ns)
        kube = Kube(await load_api_client(self.kubeconfig))
        task = await kube.create_task(ns, task_manifest("t"))
        rv = task["metadata"]["resourceVersion"]

        async def generated(rv: str, i: int) -> Obj:
            body = {"metadata": {"resourceVersion": rv}, "status": {"message": f"m{i}"}}
            call = kube.custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                "taskop.dev", "v1alpha1", ns, "tasks", "t", body,
                _content_type="application/merge-patch+json", _preload_content=False,
            )  # fmt: skip
            resp = await call
            data: Obj = json.loads(await resp.read())
            return data

        async def direct(rv: str, i: int) -> Obj:
            return await kube.patch_task_status(ns, "t", rv, {"message": f"m{i}"})

        result: dict[str, Any] = {"n": n}
        for path, write in [("kubernetes_asyncio", generated), ("direct", direct)] * 2:
            cpu, wall = time.process_time(), time.monotonic()
            for i in range(n):
                rv = (await write(rv, i))["metadata"]["resourceVersion"]
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            per = {"cpu_ms_per_request": round(1000 * cpu / n, 3), "per_s": round(n / wall)}
            result[path] = per
        await kube.close()
        return result

    async def burst(
        self, n: int, bare: bool, profile: bool = False, queued: Queued | None = None
    ) -> dict[str, Any]:
        """N objects created at once; every one followed until Completed. ``queued``: through
        Kueue (`Queued`)."""
        kind = "bare" if bare else "taskop"
        ns = f"bench-kueue-{kind}-{n}" if queued else f"bench-{kind}-{n}"
        await self.new_namespace(ns)
        if queued:
            await queued.prepare(ns)
        timeline = Timeline()
        watches = await start_watches(self.api, ns, timeline, bare)
        env = {"TASKOP_KUEUE_ENABLED": "true"} if queued else None
        op = None if bare else await self.start_operator(ns, timeline, env)
        names = [f"t-{i:05d}" for i in range(n)]
        keys = set(names)
        pids = dict(self.cluster_pids, **(queued.pids if queued else {}))
        pids.update({"taskop": op.pid} if op else {})
        requests_before = await apiserver_requests(self.api)
        meter = CpuMeter(pids)
        profiler = (
            Profiler(op.pid, self.out / f"profile-{kind}-{n}.txt") if op and profile else None
        )
        if bare:
            jobs = [bare_job_manifest(x, ns) for x in names]
            if queued:
                for job in jobs:  # Kueue's: labelled, created suspended (no gate: no taskop)
                    job["metadata"]["labels"][QUEUE_LABEL] = queued.queue
                    job["spec"]["suspend"] = True
            took = await self.create_all(JOBS.format(ns=ns), jobs)
        else:
            tasks = [task_manifest(x) for x in names]
            if queued:
                for task in tasks:
                    task["spec"]["queueName"] = queued.queue
            took = await self.create_all(TASKS.format(ns=ns), tasks)
        ok = await self.wait_for(f"{kind} completed", lambda: timeline.count("completed", keys), n)
        cpu = meter.result()
        if queued and not ok:
            await queued.dump(ns, kind)
        profiler_cpu = profiler.stop() if profiler else None
        requests_after = await apiserver_requests(self.api)
        for w in watches:
            w.cancel()
        if op:
            op.stop()
        marks = [timeline.marks[k] for k in names]
        first = min(m["created"] for m in marks if "created" in m)
        ends = sorted(m["completed"] - first for m in marks if "completed" in m)
        span = ends[-1] if ends else float("nan")
        result = {
            "kind": kind,
            "n": n,
            "all_completed": ok,
            "create_s": round(took, 2),
            "span_s": round(span, 2),
            "per_s": round(len(ends) / span, 1) if ends else None,
            "create_to_completed": summary(timeline.durations("created", "completed", keys)),
            "stages": {  # where the time goes: p50/p99 of each step of an object's life
                f"{a}->{b}": summary(timeline.durations(a, b, keys))
                for a, b in (
                    (
                        ("created", "job"),
                        ("job" if not bare else "created", "unsuspended"),  # Kueue admits
                        ("unsuspended", "pod"),
                        ("pod", "bound"),  # taskop's gate released, then scheduled
                        ("bound", "pod_done"),
                        ("pod_done", "completed"),
                    )
                    if queued
                    else (
                        ("created", "job"),
                        ("job" if not bare else "created", "pod"),
                        ("pod", "pod_done"),
                        ("pod_done", "completed"),
                    )
                )
                if not (bare and b == "job")
            },
            "completion_curve_s": [round(x, 3) for x in ends],
            "api_requests_per_object": {
                k: round((v - requests_before.get(k, 0.0)) / n, 2)
                for k, v in sorted(requests_after.items())
                if v - requests_before.get(k, 0.0) >= n / 10
            },
            "cpu": cpu,
        }
        if op:
            result["operator_cpu_ms_per_task"] = round(1000 * cpu["cpu_s"]["taskop"] / n, 2)
            result["operator_peak_rss_mb"] = round(max(s[1] for s in op.samples), 1)
        if profiler:
            result["profile"] = profiler.out.name
            result["profiler_cpu_s"] = round(profiler_cpu or 0.0, 2)
        log(
            f"burst {kind} n={n}: {result['per_s']}/s, span {result['span_s']}s, "
            f"create->Completed {result['create_to_completed']}"
        )
        await self.delete_namespace(ns)
        return result

    async def steady(self, rate: float, duration: float) -> dict[str, Any]:
        """Tasks created at a steady rate; the operator's reaction times."""
        ns = f"bench-steady-{int(rate)}"
        await self.new_namespace(ns)
        timeline = Timeline()
        watches = await start_watches(self.api, ns, timeline, bare=False)
        op = await self.start_operator(ns, timeline)
        n = int(rate * duration)
        names = [f"s-{i:05d}" for i in range(n)]
        meter = CpuMeter(dict(self.cluster_pids, taskop=op.pid))
        start = time.monotonic()
        slots = asyncio.Semaphore(self.concurrency)
        late = 0

        async def create(name: str) -> None:
            async with slots:
                await self.api.request("POST", TASKS.format(ns=ns), task_manifest(name))

        pending = []
        for i, name in enumerate(names):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:
                late += 1
            pending.append(asyncio.create_task(create(name)))
        await asyncio.gather(*pending)
        offered = n / (time.monotonic() - start)
        keys = set(names)
        ok = await self.wait_for("steady completed", lambda: timeline.count("completed", keys), n)
        cpu = meter.result()
        for w in watches:
            w.cancel()
        op.stop()
        result = {
            "rate": rate,
            "duration_s": duration,
            "n": n,
            "offered_per_s": round(offered, 1),
            "late_creates": late,
            "all_completed": ok,
            "create_to_job": summary(timeline.durations("created", "job", keys)),
            "pod_done_to_completed": summary(timeline.durations("pod_done", "completed", keys)),
            "create_to_completed": summary(timeline.durations("created", "completed", keys)),
            "latencies_s": {
                "create_to_job": sorted(timeline.durations("created", "job", keys)),
                "pod_done_to_completed": sorted(timeline.durations("pod_done", "completed", keys)),
            },
            "operator_cpu_busy": round(cpu["cpu_s"]["taskop"] / cpu["wall_s"], 2),
            "cpu": cpu,
        }
        log(
            f"steady {rate}/s: create->Job {result['create_to_job']}; "
            f"pod done->Completed {result['pod_done_to_completed']}"
        )
        await self.delete_namespace(ns)
        return result

    async def held(self, n: int, window: float, cheap_above: int = 20_000) -> dict[str, Any]:
        """The operator's memory and CPU with ``n`` Tasks held: half Completed, half Pending.

        Up to ``cheap_above``, each completes through its Job and pod (or waits Pending with its
        Job, its pod never starting). Past it (100,000 pods do not fit this machine's time) they
        are held cheaply: `held_cheaply`."""
        if n > cheap_above:
            return await self.held_cheaply(n, window)
        ns = f"bench-held-{n}"
        await self.new_namespace(ns)
        timeline = Timeline()
        watches = await start_watches(self.api, ns, timeline, bare=False)
        op = await self.start_operator(ns, timeline)
        await asyncio.sleep(3)
        baseline = statistics.mean(s[1] for s in op.samples[-5:])
        cpu0 = op.samples[-1][2]
        done = [f"h-{i:05d}" for i in range(n // 2)]
        waiting = [f"p-{i:05d}" for i in range(n - n // 2)]
        bodies = [task_manifest(x) for x in done]
        bodies += [task_manifest(x, {"start": "never"}) for x in waiting]
        started = time.monotonic()
        await self.create_all(TASKS.format(ns=ns), bodies)
        d, w = set(done), set(waiting)
        ok = await self.wait_for(
            "held settled",
            lambda: timeline.count("completed", d) + timeline.count("job", w),
            n,
        )
        await asyncio.sleep(5)
        settled = time.monotonic()
        cpu_load = op.samples[-1][2] - cpu0
        await asyncio.sleep(window)
        win = [s for s in op.samples if s[0] >= settled]
        rss_held = statistics.mean(s[1] for s in win)
        idle_cpu = (win[-1][2] - win[0][2]) / max(0.1, win[-1][0] - win[0][0])
        for wt in watches:
            wt.cancel()
        op.stop()
        result = {
            "n": n,
            "completed": len(done),
            "pending": len(waiting),
            "all_settled": ok,
            "settle_s": round(settled - started - 5, 1),
            "rss_baseline_mb": round(baseline, 1),
            "rss_held_mb": round(rss_held, 1),
            "rss_peak_mb": round(max(s[1] for s in op.samples), 1),
            "rss_per_task_kb": round((rss_held - baseline) * 1024 / n, 1),
            "cpu_s_to_settle": round(cpu_load, 1),
            "cpu_ms_per_task": round(1000 * cpu_load / n, 2),
            "idle_window_s": window,
            "idle_cpu_cores": round(idle_cpu, 3),
            "rss_samples": [
                (round(t - started, 1), round(r, 1)) for t, r, _ in op.samples if t >= started - 5
            ],
        }
        log(
            f"held {n}: RSS {baseline:.0f} -> {rss_held:.0f} MB "
            f"({result['rss_per_task_kb']} KB/task), idle CPU {idle_cpu:.3f} cores"
        )
        await self.delete_namespace(ns)
        return result

    async def held_cheaply(self, n: int, window: float) -> dict[str, Any]:
        """``n`` Tasks made while no operator runs, each with the status the operator wrote on
        a canary of its kind: half Completed (no Job left), half Pending external tasks (a BBS
        external domain's: no Job, and no status: the operator writes none until there is news).
        Then an operator starts on them, as
        after a restart: the time, CPU and memory to take them all in (its first LIST, a pass
        each, nothing to write) until it is quiet; then idle."""
        ns = f"bench-held-{n}"
        await self.new_namespace(ns)
        timeline = Timeline()
        watches = await start_watches(self.api, ns, timeline, bare=False)
        empty = await self.start_operator(ns, timeline)  # proves it live; RSS with nothing held
        tasks = TASKS.format(ns=ns)
        external = {"external": True, "domain": "bench-external"}
        pending = task_manifest("canary-pending")
        await self.api.request("POST", tasks, {**pending, "spec": {**pending["spec"], **external}})
        await self.wait_for(
            "pending canary", lambda: timeline.count("created", {"canary-pending"}), 1, 60
        )
        await asyncio.sleep(3)  # its pass: no status write (a Pending external task has no news)
        baseline = statistics.mean(s[1] for s in empty.samples[-5:])
        empty.stop()
        canary = await self.api.request("GET", f"{tasks}/canary")
        final = {k: v for k, v in canary["status"].items() if k != "jobName"}  # no Job left
        waits = (await self.api.request("GET", f"{tasks}/canary-pending")).get("status") or {}
        done = [f"h-{i:06d}" for i in range(n // 2)]
        waiting = [f"p-{i:06d}" for i in range(n - n // 2)]
        made = time.monotonic()

        async def make(name: str, spec: Obj, status: Obj) -> None:
            body = task_manifest(name)
            await self.api.request("POST", tasks, {**body, "spec": {**body["spec"], **spec}})
            if not status:
                return  # as the operator left its canary
            if status.get("state") == "Pending":
                now = format_ns(time.time_ns())
                status = {**status, "createdAt": now, "updatedAt": now}
            await self.api.request(
                "PATCH",
                f"{tasks}/{name}/status",
                {"status": status},
                "application/merge-patch+json",
            )

        await limited((make(x, {}, final) for x in done), self.concurrency)
        await limited((make(x, external, waits) for x in waiting), self.concurrency)
        log(f"held {n}: made in {time.monotonic() - made:.0f}s; starting the operator")
        requests0 = await apiserver_requests(self.api)
        op = Operator(self.kubeconfig, ns, self.out / f"operator-{ns}.log", self.bbs_port)
        started = time.monotonic()
        await op.started()
        d, w = set(done), set(waiting)
        ok = await self.wait_for(
            "held seen",
            lambda: timeline.count("completed", d) + timeline.count("created", w),
            n,
        )
        ok = ok and await self.wait_quiet(op)
        settled = time.monotonic()
        cpu_load = op.samples[-1][2]
        requests1 = await apiserver_requests(self.api)
        await asyncio.sleep(window)
        requests2 = await apiserver_requests(self.api)
        win = [s for s in op.samples if s[0] >= settled]
        rss_held = statistics.mean(s[1] for s in win)
        idle_cpu = (win[-1][2] - win[0][2]) / max(0.1, win[-1][0] - win[0][0])
        for wt in watches:
            wt.cancel()
        op.stop()

        def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            return {k: round(b[k] - a.get(k, 0), 1) for k in b if b[k] - a.get(k, 0) >= 1}

        idle_requests = delta(requests1, requests2)
        result = {
            "n": n,
            "how": "cheap: made while no operator ran, each with the status the operator wrote on"
            " a canary of its kind (Completed, no Job left; Pending external tasks, no Job); then"
            " one operator started on them (its first LIST, a pass each), until quiet",
            "completed": len(done),
            "pending": len(waiting),
            "all_settled": ok,
            "settle_s": round(settled - started, 1),
            "rss_baseline_mb": round(baseline, 1),
            "rss_held_mb": round(rss_held, 1),
            "rss_peak_mb": round(max(s[1] for s in op.samples), 1),
            "rss_per_task_kb": round((rss_held - baseline) * 1024 / n, 1),
            "cpu_s_to_settle": round(cpu_load, 1),
            "cpu_ms_per_task": round(1000 * cpu_load / n, 2),
            "idle_window_s": window,
            "idle_cpu_cores": round(idle_cpu, 3),
            "settle_requests": delta(requests0, requests1),
            "idle_requests": idle_requests,
            "idle_requests_per_s": round(sum(idle_requests.values()) / window, 2),
            "rss_samples": [(round(t - started, 1), round(r, 1)) for t, r, _ in op.samples],
        }
        log(
            f"held {n} (cheap): RSS {baseline:.0f} -> {rss_held:.0f} MB, peak"
            f" {result['rss_peak_mb']} MB ({result['rss_per_task_kb']} KB/task), settled in"
            f" {result['settle_s']}s, idle CPU {idle_cpu:.3f} cores,"
            f" {result['idle_requests_per_s']} requests/s"
        )
        await self.delete_namespace(ns)
        return result

    async def hostile(self, n: int, size: int) -> dict[str, Any]:
        """What a Task larger than the operator holds (TASKOP_MAX_TASK_BYTES, 256 KiB by
        default) costs it, against an ordinary one, in one operator: ``n`` small Tasks run to
        Completed, then ``n`` Tasks of ``size`` bytes each, which fail saying why. The claim
        measured: past the limit a Task costs a constant (a stub), not its size."""
        ns = f"bench-hostile-{n}"
        await self.new_namespace(ns)
        timeline = Timeline()
        watches = await start_watches(self.api, ns, timeline, bare=False)
        op = await self.start_operator(ns, timeline)

        async def settle(names: set[str]) -> tuple[bool, float]:
            ok = await self.wait_for("settled", lambda: timeline.count("completed", names), n)
            await asyncio.sleep(8)
            return ok, statistics.mean(s[1] for s in op.samples[-5:])

        await asyncio.sleep(3)
        empty = statistics.mean(s[1] for s in op.samples[-5:])
        small = {f"s-{i:04d}" for i in range(n)}
        await self.create_all(TASKS.format(ns=ns), [task_manifest(x) for x in sorted(small)])
        small_ok, with_small = await settle(small)
        filler = "x" * 8000

        def hostile_batch(prefix: str) -> tuple[set[str], list[Obj]]:
            names = {f"{prefix}-{i:04d}" for i in range(n)}
            bodies = []
            for name in sorted(names):
                body = task_manifest(name)
                body["spec"]["action"]["run"]["args"] += [filler] * (size // len(filler))
                bodies.append(body)
            return names, bodies

        # Two batches: the first one's RSS includes what the allocator keeps of the transient
        # decoding of 300 KB objects (freed, not returned to the OS); the second reuses it, so
        # it shows what a hostile Task costs once held.
        big, bodies = hostile_batch("b")
        await self.create_all(TASKS.format(ns=ns), bodies)
        big_ok, with_big = await settle(big)
        more, more_bodies = hostile_batch("c")
        await self.create_all(TASKS.format(ns=ns), more_bodies)
        more_ok, with_more = await settle(more)
        for wt in watches:
            wt.cancel()
        op.stop()
        result = {
            "n": n,
            "hostile_task_bytes": len(json.dumps(bodies[0])),
            "all_settled": small_ok and big_ok and more_ok,
            "rss_empty_mb": round(empty, 1),
            "rss_with_small_mb": round(with_small, 1),
            "rss_with_both_mb": round(with_big, 1),
            "rss_peak_mb": round(max(s[1] for s in op.samples), 1),
            "kb_per_small_task": round((with_small - empty) * 1024 / n, 1),
            "kb_per_hostile_task": round((with_big - with_small) * 1024 / n, 1),
            "rss_with_second_batch_mb": round(with_more, 1),
            "kb_per_hostile_task_second_batch": round((with_more - with_big) * 1024 / n, 1),
        }
        log(
            f"hostile {n} x {result['hostile_task_bytes']} B: {result['kb_per_small_task']} KB per"
            f" small Task, {result['kb_per_hostile_task']} KB per hostile Task (second batch:"
            f" {result['kb_per_hostile_task_second_batch']} KB)"
        )
        await self.delete_namespace(ns)
        return result
