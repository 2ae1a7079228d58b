"""``python -m bench.taskstore``: taskstore claims/s with 20 workers beside the raw API server's
single-object update rate, in the same run (bench/taskstore/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.bbs.__main__ import cluster_pids, stop_taskop
from bench.bbs.clients import TASKS, Raw, _session
from bench.bbs.measure import interleaved, loadavg
from bench.bbs.report import _ms, _rate

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def log(msg: str) -> None:
    print(f"[bench-taskstore {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Store:
    def __init__(self, port: int, connections: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = _session(connections)

    async def close(self) -> None:
        await self.session.close()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.base + path, json=body) as r:
            answer: dict[str, Any] = json.loads(await r.read())
            if r.status != 200 or answer.get("error"):
                raise RuntimeError(f"{path}: {r.status} {answer}")
            return answer


def start_taskop(args: argparse.Namespace, out: Path) -> subprocess.Popen[bytes]:
    profiles = Path(tempfile.mkdtemp()) / "profiles.yaml"
    profiles.write_text("domains: {work: {run: taskstore}}\n")
    env = {**os.environ, "TASKOP_BBS_ENABLED": "false", "TASKOP_GLANCE_ENABLED": "false",
           "TASKOP_TASKSTORE_LISTEN_PORT": str(args.port), "TASKOP_BBS_NAMESPACE": args.namespace,
           "TASKOP_DOMAIN_PROFILES_FILE": str(profiles), "TASKOP_HEALTH_PORT": "0",
           "TASKOP_METRICS_PORT": "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "taskop", "bbs", "--kubeconfig", args.kubeconfig]
    log(f"starting {' '.join(cmd[1:])} (the APIs alone; log {out.name})")
    with out.open("wb") as logfile:
        return subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    conc, n = args.workers, args.tasks
    raw, store = Raw(args.kubeconfig, conc + 4), Store(args.port, conc + 4)
    info: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "results": [],
                            "load_start": loadavg(), "cores": os.cpu_count()}  # fmt: skip
    proc: subprocess.Popen[bytes] | None = None
    try:
        await raw.ensure_namespace(args.namespace)
        proc = start_taskop(args, args.out / "taskop.log")
        deadline = time.monotonic() + 120
        while True:
            try:
                async with store.session.get(store.base + "/group") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the taskstore API did not answer")
            await asyncio.sleep(0.2)
        for i in range(0, n, 100):
            adds = [{"group": "jobs", "data": f"item-{j}"} for j in range(i, min(n, i + 100))]
            await store.post("/update", {"clientid": 1, "adds": adds})
        names = [
            t["metadata"]["name"]
            for t in json.loads(await raw.request("GET", TASKS.format(ns=args.namespace)))["items"]
        ]
        assert len(names) == n, len(names)
        pids = {"taskop": proc.pid, **cluster_pids(args.cluster_dir)}

        async def claim(i: int) -> None:
            # A 1 ns lease: the task is free again at once, so claims never run out.
            body = {"clientid": 100 + i % conc, "group": "jobs", "duration": 1, "depends": []}
            answer = await store.post("/claim", body)
            assert answer["tasks"], "no task to claim"

        async def raw_update(i: int) -> None:
            # What a claim writes, straight to the API server: one object's merge patch.
            path = f"{TASKS.format(ns=args.namespace)}/{names[i % n]}"
            patch = {"metadata": {"annotations": {"bench.taskop.dev/at": str(time.time_ns())}}}
            await raw.request("PATCH", path, patch)

        sides = await interleaved(
            {"claim": claim, "raw": raw_update}, args.ops, conc, args.rounds, pids
        )
        info["results"].append({k: v.summary() for k, v in sides.items()})
        c, r = sides["claim"].summary(), sides["raw"].summary()
        log(f"claims {c['ops_per_s']:.0f}/s (p50 {c['p50_ms']:.1f} ms); raw updates"
            f" {r['ops_per_s']:.0f}/s (p50 {r['p50_ms']:.1f} ms)")  # fmt: skip
    finally:
        info["load_end"] = loadavg()
        if proc is not None:
            stop_taskop(proc)
        await store.close()
        if not args.keep:
            await raw.delete_namespace(args.namespace)
        await raw.close()
    return info


def write(out: Path, data: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(data, indent=1))
    args, sides = data["args"], data["results"][0]
    c, r = sides["claim"], sides["raw"]
    lines = [
        "# taskstore claims vs the raw API server's single-object updates",
        "",
        f"Command: `{args.get('command') or 'bench/taskstore/run'}`; {data['cores']} cores; load"
        f" average {data['load_start']} at start, {data['load_end']} at end;"
        f" {data.get('seconds', 0):.0f} s. {args['workers']} workers, {args['tasks']} tasks,"
        f" {args['rounds']} alternating blocks.",
        "",
        "A claim: pick an available task, merge-patch its lease with its resourceVersion as the"
        " precondition, answer it (1 ns leases, so tasks are free again at once). Raw: the same"
        " kind of merge patch of one Task, straight to the API server, at the same concurrency.",
        "",
        "| operation | n | ops/s | p50 / p99 ms | taskop CPU ms/op | API server CPU ms/op |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, s in (("taskstore claim", c), ("raw API server update", r)):
        lines.append(
            f"| {name} | {s['n']:,} | {_rate(s['ops_per_s'])} | {_ms(s['p50_ms'])} /"
            f" {_ms(s['p99_ms'])} | {_rate(s.get('cpu_ms_per_op_taskop', 0))}"
            f" | {_rate(s.get('cpu_ms_per_op_kube-apiserver', 0))} |"
        )
    lines += ["", f"Claims/s ÷ raw updates/s: **{c['ops_per_s'] / r['ops_per_s']:.2f}**."]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/taskstore/run", description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-dir", help="the cluster's state dir (for API server/etcd CPU)")
    p.add_argument("--workers", type=int, default=20)
    p.add_argument("--tasks", type=int, default=500)
    p.add_argument("--ops", type=int, default=4000, help="claims and raw updates, each")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--port", type=int, default=18890)
    p.add_argument("--namespace", default=f"tsbench-{time.strftime('%H%M%S')}")
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--out", type=Path, default=RESULTS / f"taskstore-{time.strftime('%Y%m%d-%H%M')}"
    )
    p.add_argument("--command", default="", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    arguments.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = asyncio.run(main(arguments))
    data["seconds"] = round(time.time() - started, 1)
    write(arguments.out, data)
    log(f"wrote {arguments.out}/report.md")
