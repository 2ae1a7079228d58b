"""``python -m bench.glance``: taskop's Glance door listing beside the raw API server's LIST
(bench/glance/README.md). Usually started by ``bench/glance/run`` (a private cluster)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.bbs.__main__ import cluster_pids, stop_taskop
from bench.bbs.clients import TASKS, HttpError, Raw, _session
from bench.bbs.measure import Series, interleaved, loadavg, run
from bench.bbs.report import _ms, _rate
from taskop.glance.tasktypes import build, parse_task_type

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
TASKTYPE = {
    "image": "busybox",
    "command": ["sh", "-c", "sha256sum /input/task.json > /tmp/result"],
    "input": {"path": "/input/task.json"},
    "resultFile": "/tmp/result",
}
PAIRS = [  # (what, taskop side, raw side)
    ("a page of 25 (Glance's default)", "glance_25", "raw_25"),
    ("a page of 1,000 (Glance's maximum)", "glance_1000", "raw_1000"),
    ("every task (pages of 1,000, following next)", "glance_all", "raw_all"),
]


def log(msg: str) -> None:
    print(f"[bench-glance {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Glance:
    def __init__(self, port: int, token: str, connections: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"X-Auth-Token": token}
        self.session = _session(connections)

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> bytes:
        async with self.session.get(self.base + path, headers=self.headers) as r:
            raw = await r.read()
            if r.status != 200:
                raise HttpError(f"GET {path}", r.status, raw)
            return raw

    async def count(self) -> int:
        """All tasks, by walking the pages as a client does."""
        path, total = "/v2/tasks?limit=1000", 0
        while path:
            page = json.loads(await self.get(path))
            total += len(page["tasks"])
            path = page.get("next", "")
        return total


async def setup(raw: Raw, ns: str) -> str:
    """The namespace, the TaskType and a ServiceAccount allowed to list tasks; its token."""
    await raw.ensure_namespace(ns)
    types = f"/apis/taskop.dev/v1alpha1/namespaces/{ns}/tasktypes"
    body = {"apiVersion": "taskop.dev/v1alpha1", "kind": "TaskType",
            "metadata": {"name": "checksum"}, "spec": TASKTYPE}  # fmt: skip
    await raw.request("POST", types, body)
    await raw.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                      {"metadata": {"name": "bench"}})  # fmt: skip
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    rule = {"apiGroups": ["taskop.dev"], "resources": ["tasks"], "verbs": ["get", "list"]}
    await raw.request("POST", f"{rbac}/roles", {"metadata": {"name": "bench"}, "rules": [rule]})
    await raw.request("POST", f"{rbac}/rolebindings", {
        "metadata": {"name": "bench"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench"},
        "subjects": [{"kind": "ServiceAccount", "name": "bench", "namespace": ns}],
    })  # fmt: skip
    token = await raw.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/bench/token",
                              {"spec": {"expirationSeconds": 7200}})  # fmt: skip
    return str(json.loads(token)["status"]["token"])


def start_taskop(args: argparse.Namespace, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKOP_BBS_ENABLED": "false", "TASKOP_GLANCE_ENABLED": "true",
           "TASKOP_GLANCE_LISTEN_PORT": str(args.port), "TASKOP_BBS_NAMESPACE": args.namespace,
           "TASKOP_HEALTH_PORT": "0", "TASKOP_METRICS_PORT": "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "taskop", "bbs", "--kubeconfig", args.kubeconfig]
    log(f"starting {' '.join(cmd[1:])} (the APIs alone; log {out.name})")
    with out.open("wb") as logfile:
        return subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT)


async def populate(raw: Raw, ns: str, start: int, stop: int, concurrency: int) -> None:
    """Glance tasks as the door would create them (its own `build`), created straight through
    the API server: the benchmark measures listing, not creating."""
    task_type = parse_task_type({"spec": TASKTYPE})

    async def create(i: int) -> None:
        task_id = f"00000000-0000-4000-8000-{i:012d}"
        body, _ = build("checksum", task_type, task_id=task_id, input_={"i": i, "url": "x" * 64},
                        owner="system:serviceaccount:bench:bench", domain="glance",
                        ttl_seconds=172800)  # fmt: skip
        await raw.create_task(ns, body)

    await run(Series(), range(start, stop), concurrency, create, {})


async def main(args: argparse.Namespace) -> dict[str, Any]:
    conc = args.concurrency
    raw = Raw(args.kubeconfig, conc + 16)
    info: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "results": [],
                            "load_start": loadavg(), "cores": os.cpu_count()}  # fmt: skip
    proc: subprocess.Popen[bytes] | None = None
    glance: Glance | None = None
    ns = args.namespace
    try:
        token = await setup(raw, ns)
        proc = start_taskop(args, args.out / "taskop.log")
        glance = Glance(args.port, token, conc + 2)
        deadline = time.monotonic() + 120
        while True:
            try:
                await glance.get("/v2/tasks")
                break
            except (aiohttp.ClientError, HttpError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        pids = {"taskop": proc.pid, **cluster_pids(args.cluster_dir)}
        made = 0
        for size in args.sizes:
            log(f"populating to {size:,} tasks")
            await populate(raw, ns, made, size, 16)
            made = size
            while (seen := await glance.count()) != size:
                log(f"the door sees {seen:,} of {size:,}")
                await asyncio.sleep(1)
            listed = json.loads(await raw.request("GET", TASKS.format(ns=ns)))
            assert len(listed["items"]) == size
            n = args.lists if size <= 1000 else args.lists_large
            sides = operations(glance, raw, ns)
            for what, ours, theirs in PAIRS:
                series: dict[str, Series] = await interleaved(
                    {ours: sides[ours], theirs: sides[theirs]}, n, conc, args.rounds, pids
                )
                row = {"what": what, "tasks": size, "concurrency": conc,
                       "sides": {k: v.summary() for k, v in series.items()}}  # fmt: skip
                info["results"].append(row)
                t, r = row["sides"][ours], row["sides"][theirs]
                log(f"{what} @ {size:,}: taskop p50 {t['p50_ms']:.1f} p99 {t['p99_ms']:.1f} ms;"
                    f" raw p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} ms")  # fmt: skip
    finally:
        info["load_end"] = loadavg()
        if proc is not None:
            stop_taskop(proc)
        if glance is not None:
            await glance.close()
        if not args.keep:
            await raw.delete_namespace(ns)
        await raw.close()
    return info


def operations(glance: Glance, raw: Raw, ns: str) -> dict[str, Any]:
    async def glance_25(_: int) -> None:
        await glance.get("/v2/tasks")

    async def glance_1000(_: int) -> None:
        await glance.get("/v2/tasks?limit=1000")

    async def glance_all(_: int) -> None:
        await glance.count()

    def raw_list(query: str) -> Any:
        async def op(_: int) -> None:
            await raw.request("GET", TASKS.format(ns=ns) + query,
                              headers={"Accept-Encoding": "identity"})  # fmt: skip

        return op

    return {"glance_25": glance_25, "raw_25": raw_list("?limit=25"),
            "glance_1000": glance_1000, "raw_1000": raw_list("?limit=1000"),
            "glance_all": glance_all, "raw_all": raw_list("")}  # fmt: skip


def write(out: Path, data: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(data, indent=1))
    args = data["args"]
    lines = [
        "# taskop's Glance door listing vs the raw API server LIST",
        "",
        f"Command: `{args.get('command') or 'bench/glance/run'}`; {data['cores']} cores; load"
        f" average {data['load_start']} at start, {data['load_end']} at end;"
        f" {data.get('seconds', 0):.0f} s.",
        "",
        "Latency from request to the last body byte, same concurrency for both sides, in"
        f" {args['rounds']} alternating blocks. Ratio = taskop / raw (below 1: taskop is faster)."
        " taskop: `GET /v2/tasks` with a ServiceAccount token (authentication and authorization"
        " cached); raw: `GET …/tasks` with the kubeconfig's client certificate, JSON, no gzip.",
        "",
        "| listing | tasks | conc. | n | taskop p50 / p99 ms | raw p50 / p99 ms | ratio p50 / p99"
        " | taskop CPU ms/op | API server CPU ms/op |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in data["results"]:
        t, r = row["sides"].values()
        lines.append(
            f"| {row['what']} | {row['tasks']:,} | {row['concurrency']} | {t['n']:,}"
            f" | {_ms(t['p50_ms'])} / {_ms(t['p99_ms'])} | {_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}"
            f" | {t['p50_ms'] / r['p50_ms']:.2f} / {t['p99_ms'] / r['p99_ms']:.2f}"
            f" | {_rate(t.get('cpu_ms_per_op_taskop', 0))}"
            f" | {_rate(r.get('cpu_ms_per_op_kube-apiserver', 0))} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/glance/run", description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-dir", help="the cluster's state dir (for API server/etcd CPU)")
    p.add_argument("--sizes", default="1000,10000", help="task counts to list at")
    p.add_argument("--lists", type=int, default=200, help="lists per side at ≤ 1,000 tasks")
    p.add_argument("--lists-large", type=int, default=40, help="lists per side above")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4, help="alternating blocks per comparison")
    p.add_argument("--port", type=int, default=19292)
    p.add_argument("--namespace", default=f"glancebench-{time.strftime('%H%M%S')}")
    p.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    p.add_argument("--out", type=Path, default=RESULTS / f"glance-{time.strftime('%Y%m%d-%H%M')}")
    p.add_argument("--command", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    arguments.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = asyncio.run(main(arguments))
    data["seconds"] = round(time.time() - started, 1)
    write(arguments.out, data)
    log(f"wrote {arguments.out}/report.md")
