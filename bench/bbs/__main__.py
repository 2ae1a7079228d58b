"""``python -m bench.bbs``: taskop's BBS Tasks API beside the raw API server (bench/bbs/README.md).

Usually started by ``bench/bbs/run``, which brings up a private cluster first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.bbs import report
from bench.bbs.clients import BBS, Raw, check_bbs
from bench.bbs.measure import Series, interleaved, loadavg, run
from taskop.bbs import models
from taskop.bbs.desire import build_task
from taskop.domain.names import task_name

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DOMAIN = "cells"  # external: a cell would run them, so no Jobs and no pods


def log(msg: str) -> None:
    print(f"[bench-bbs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def definition() -> models.TaskDefinition:
    """A Cloud Foundry-like task (about 1 KB of protobuf, 3 KB as a Task object)."""
    env = [models.EnvironmentVariable(name=f"VAR_{i}", value="x" * 40) for i in range(8)]
    return models.TaskDefinition(
        root_fs="docker:///cloudfoundry/run:bionic",
        memory_mb=256,
        disk_mb=1024,
        cpu_weight=10,
        log_guid="4c9e1a6e-3f0b-4a9b-9d52-0c1e55d2b8a1",
        log_source="APP/TASK/migrate",
        result_file="/tmp/result.json",
        annotation='{"task_guid":"x","app_guid":"4c9e1a6e-3f0b-4a9b-9d52-0c1e55d2b8a1"}',
        environment_variables=env,
        placement_tags=["zone-a"],
        action=models.Action(
            run_action=models.RunAction(
                path="/bin/sh",
                args=["-c", "bundle exec rake db:migrate && echo done"],
                user="vcap",
                env=env[:2],
                log_source="APP/TASK/migrate",
            )
        ),
    )


def desire_request(guid: str, td: models.TaskDefinition) -> models.DesireTaskRequest:
    return models.DesireTaskRequest(task_guid=guid, domain=DOMAIN, task_definition=td)


def start_taskop(args: argparse.Namespace, out: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TASKOP_BBS_ENABLED": "true",
        "TASKOP_BBS_LISTEN_PORT": str(args.port),
        "TASKOP_BBS_NAMESPACE": args.namespace,
        "TASKOP_BBS_EXTERNAL_DOMAINS": DOMAIN,
        "TASKOP_HEALTH_PORT": "0",
        "TASKOP_GLANCE_ENABLED": "false",
    }
    cmd = [sys.executable, "-m", "taskop", args.mode, "--kubeconfig", args.kubeconfig,
           "--namespace", args.namespace]  # fmt: skip
    log(f"starting {' '.join(cmd[1:])} (log {out.name})")
    with out.open("wb") as logfile:
        return subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT)


class Profiler:
    """py-spy record (raw collapsed stacks) of taskop while a phase runs; off if unavailable."""

    def __init__(self, pid: int, enabled: bool) -> None:
        self.pid = pid
        exe = Path(sys.executable).parent / "py-spy"
        self.exe = exe if enabled and exe.exists() else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, out: Path) -> None:
        if self.exe is None:
            return
        cmd = [str(self.exe), "record", "-p", str(self.pid), "-r", "250", "-f", "raw", "-o",
               str(out), "--nonblocking"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
            self.proc = None


class Bench:
    def __init__(self, args: argparse.Namespace, raw: Raw, bbs: BBS, pids: dict[str, int]) -> None:
        self.args = args
        self.raw = raw
        self.bbs = bbs
        self.pids = pids
        self.ns, self.raw_ns = args.namespace, args.namespace + "-raw"
        self.td = definition()
        self.desired = 0  # BBS tasks desired so far: bbs-000000 … in self.ns
        self.status: dict[str, Any] = {}  # the status taskop writes on DesireTask, for raw
        self.results: list[dict[str, Any]] = []

    def record(
        self, op: str, tasks: int, conc: int, sides: dict[str, Series], **extra: Any
    ) -> None:
        row = {"op": op, "tasks": tasks, "concurrency": conc, "load_end": loadavg(), **extra}
        row["sides"] = {name: s.summary() for name, s in sides.items()}
        self.results.append(row)
        text = ", ".join(
            f"{n}: p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms {v['ops_per_s']:.0f}/s"
            for n, v in row["sides"].items()
        )
        log(f"{op} @ {tasks} tasks: {text}")

    # --- DesireTask vs create (and create + status patch, what DesireTask does)
    async def bbs_desire(self, i: int) -> None:
        guid = f"bbs-{self.desired + i:06d}"
        check_bbs(await self.bbs.desire(desire_request(guid, self.td).SerializeToString()),
                  models.TaskLifecycleResponse)  # fmt: skip

    def raw_body(self, guid: str) -> dict[str, Any]:
        return build_task(desire_request(guid, self.td), external=True)

    async def raw_create(self, i: int) -> None:
        await self.raw.create_task(self.raw_ns, self.raw_body(f"raw-{i:06d}"))

    async def raw_create_status(self, i: int) -> None:
        created = await self.raw.create_task(self.raw_ns, self.raw_body(f"rawst-{i:06d}"))
        await self.raw.patch_status(self.raw_ns, created, self.status)

    async def desires(self) -> None:
        n, conc = self.args.desires, self.args.desire_concurrency
        await self.bbs_desire(0)  # warm-up, and the status taskop writes, for the raw side
        self.desired = 1
        obj = json.loads(await self.raw.get_task(self.ns, task_name("bbs-000000")))
        self.status = obj["status"]
        sides = await interleaved(
            {"taskop": self.bbs_desire, "raw": self.raw_create,
             "raw_create+status": self.raw_create_status},
            n - 1, conc, self.args.rounds, self.pids,
        )  # fmt: skip
        self.desired = n
        self.record("DesireTask vs create", n, conc, sides)

    async def populate(self, size: int) -> None:
        todo = size - self.desired
        if todo <= 0:
            return
        series = Series()
        await run(series, range(todo), self.args.desire_concurrency, self.bbs_desire, self.pids)
        self.desired = size
        self.record("populate (DesireTask)", size, self.args.desire_concurrency, {"taskop": series})

    # --- reads
    async def reads(self, size: int) -> None:
        got = check_bbs(await self.bbs.tasks(), models.TasksResponse)
        listed = json.loads(await self.raw.list_tasks(self.ns, "identity"))
        if len(got.tasks) != size or len(listed["items"]) != size:
            raise RuntimeError(f"expected {size} tasks: BBS {len(got.tasks)}, "
                               f"API server {len(listed['items'])}")  # fmt: skip
        guids = [f"bbs-{i:06d}" for i in range(size)]
        requests = [models.TaskByGuidRequest(task_guid=g).SerializeToString() for g in guids]
        names = [task_name(g) for g in guids]
        stride = 7919  # a prime: spread the gets over all tasks

        async def bbs_get(i: int) -> None:
            raw = await self.bbs.task_by_guid(requests[i * stride % size])
            if len(raw) < 64:  # a TaskResponse with a task is far bigger than an error
                check_bbs(raw, models.TaskResponse)

        async def raw_get(i: int) -> None:
            await self.raw.get_task(self.ns, names[i * stride % size])

        n, conc, rounds = self.args.gets, self.args.get_concurrency, self.args.rounds
        sides = await interleaved({"taskop": bbs_get, "raw": raw_get}, n, conc, rounds, self.pids)
        self.record("TaskByGuid vs GET", size, conc, sides)

        async def bbs_list(_: int) -> None:
            await self.bbs.tasks()

        async def raw_list_identity(_: int) -> None:
            await self.raw.list_tasks(self.ns, "identity")

        async def raw_list_gzip(_: int) -> None:
            await self.raw.list_tasks(self.ns, "gzip")

        n = self.args.lists if size <= 1000 else self.args.lists_large
        conc = self.args.list_concurrency
        profile = self.args.out / f"profile-tasks-list-{size}.txt"
        self.profiler.start(profile)
        sides = await interleaved(
            {"taskop": bbs_list, "raw": raw_list_identity, "raw_gzip": raw_list_gzip},
            n,
            conc,
            rounds,
            self.pids,
        )
        self.profiler.stop()
        self.record("Tasks vs LIST", size, conc, sides, response_bytes={
            "taskop": len(await self.bbs.tasks()),
            "raw": len(await self.raw.list_tasks(self.ns, "identity")),
        })  # fmt: skip

    profiler: Profiler


async def main(args: argparse.Namespace) -> dict[str, Any]:
    raw = Raw(args.kubeconfig, max(args.desire_concurrency, args.get_concurrency) + 2)
    bbs = BBS(args.port, max(args.desire_concurrency, args.get_concurrency) + 2)
    info: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                            "load_start": loadavg(), "cores": os.cpu_count()}  # fmt: skip
    proc: subprocess.Popen[bytes] | None = None
    try:
        for ns in (args.namespace, args.namespace + "-raw"):
            await raw.ensure_namespace(ns)
        proc = start_taskop(args, args.out / "taskop.log")
        await bbs.wait_ready(120)
        pids = {"taskop": proc.pid, **cluster_pids(args.cluster_dir)}
        bench = Bench(args, raw, bbs, pids)
        bench.profiler = Profiler(proc.pid, not args.no_profile)
        bench.profiler.start(args.out / "profile-desire.txt")
        await bench.desires()
        bench.profiler.stop()
        for size in args.sizes:
            await bench.populate(size)
            await bench.reads(size)
        info["results"] = bench.results
    finally:
        info["load_end"] = loadavg()
        if proc is not None:
            stop_taskop(proc)
        if not args.keep:
            for ns in (args.namespace, args.namespace + "-raw"):
                await raw.delete_namespace(ns)
        await raw.close()
        await bbs.close()
    return info


def stop_taskop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cluster_pids(cluster_dir: str | None) -> dict[str, int]:
    pids: dict[str, int] = {}
    for name in ("kube-apiserver", "etcd"):
        path = Path(cluster_dir or "/nonexistent") / "run" / f"{name}.pid"
        if path.exists():
            pids[name] = int(path.read_text())
    return pids


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/bbs/run", description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-dir", help="the cluster's state dir (for API server/etcd CPU)")
    p.add_argument(
        "--mode",
        choices=["bbs", "run"],
        default="bbs",
        help="taskop bbs (the API alone, default) or taskop run (with the reconciler)",
    )
    p.add_argument("--sizes", default="1000,10000", help="task counts to read at")
    p.add_argument("--desires", type=int, default=1000, help="DesireTasks measured (≤ sizes[0])")
    p.add_argument("--desire-concurrency", type=int, default=16)
    p.add_argument("--gets", type=int, default=2000)
    p.add_argument("--get-concurrency", type=int, default=8)
    p.add_argument("--lists", type=int, default=200, help="lists at ≤ 1,000 tasks")
    p.add_argument("--lists-large", type=int, default=50, help="lists at > 1,000 tasks")
    p.add_argument("--list-concurrency", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4, help="alternating blocks per comparison")
    p.add_argument("--port", type=int, default=18889)
    p.add_argument("--namespace", default=f"bbsbench-{time.strftime('%H%M%S')}")
    p.add_argument("--no-profile", action="store_true", help="skip py-spy")
    p.add_argument("--keep", action="store_true", help="keep the namespaces afterwards")
    p.add_argument("--out", type=Path, default=RESULTS / f"bbs-{time.strftime('%Y%m%d-%H%M')}")
    p.add_argument("--command", default="", help=argparse.SUPPRESS)  # as typed, for the report
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.desires > args.sizes[0]:
        p.error("--desires must not exceed the first of --sizes")
    return args


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    arguments.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = asyncio.run(main(arguments))
    data["seconds"] = round(time.time() - started, 1)
    report.write(arguments.out, data)
    log(f"wrote {arguments.out}/report.md")
