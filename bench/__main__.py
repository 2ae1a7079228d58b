"""``python -m bench``: run the benchmarks against a cluster and write bench/results/<time>/.

Usually started by ``bench/run``, which brings up a private cluster first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.kube import Api
from bench.kueue import kueue
from bench.procs import RUNNING, component_pids, loadavg
from bench.report import analyse_profile
from bench.scenarios import Bench, log
from bench.status_writes import status_writes

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ["client", "ceiling", "status-writes", "throughput", "steady", "memory", "hostile"]
OPTIONAL = ["kueue"]  # only when named in --only: not in any preset
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(
        sizes="100", rates="20", steady_seconds=15, held="200", hold_window=10, ceiling=500,
        status_writes=1000,
    ),
    "standard": dict(
        sizes="100,1000", rates="20,50", steady_seconds=15, held="1000", hold_window=20,
        ceiling=2000, status_writes=2000,
    ),
    "full": dict(
        sizes="100,1000,5000", rates="20,50", steady_seconds=60, held="1000,10000",
        hold_window=130, ceiling=5000, status_writes=4000,
    ),
}  # fmt: skip


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--cluster-dir", help="the cluster's state dir (pid files: per-process CPU)")
    p.add_argument("--only", default=",".join(SCENARIOS), help="a comma-separated subset of "
                   + ",".join(SCENARIOS) + " (the default), or of those and "
                   + ",".join(OPTIONAL))  # fmt: skip
    p.add_argument("--sizes", help="burst sizes, e.g. 100,1000,5000 (kueue: 1000 unless given)")
    p.add_argument("--kueue-ports", default="39443,39080,39081", help="Kueue's webhook, metrics"
                   " and health ports (the kueue scenario; the shared cluster's Kueue uses"
                   " 19443,19080,19081)")  # fmt: skip
    p.add_argument("--rates", help="steady rates in Tasks/s, e.g. 20,50")
    p.add_argument("--steady-seconds", type=float)
    p.add_argument("--held", help="held-Task counts, e.g. 1000,10000")
    p.add_argument("--hold-window", type=float, help="seconds to watch the idle operator")
    p.add_argument("--held-cheap-above", type=int, default=20_000, help="held counts above this"
                   " are made cheaply: no pods (see Bench.held_cheaply)")  # fmt: skip
    p.add_argument("--ceiling", type=int, help="objects per API-server ceiling measurement")
    p.add_argument("--status-writes", type=int, help="status writes per variant (status-writes)")
    p.add_argument("--status-base", help="git revision whose crds/ the status-writes scenario"
                   " also measures (variant task-base), e.g. HEAD before a CRD change")  # fmt: skip
    p.add_argument("--status-crd", action="append", help="name=path: a Task CRD file that"
                   " status-writes also measures (variant file-<name>); repeatable")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=32, help="client requests in flight")
    p.add_argument("--hostile", type=int, default=200, help="Tasks of each kind in the hostile"
                   " scenario (300 KiB Tasks, past the operator's per-Task limit, against small)")
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the extra taskop burst (the largest size) profiled with py-spy",
    )
    p.add_argument("--bbs-api", action="store_true",
                   help="operators also serve the BBS API and the Glance door")  # fmt: skip
    p.add_argument("--no-latest", action="store_true", help="leave results/LATEST.md as it is")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS) - set(OPTIONAL)
    if unknown:
        p.error(f"unknown scenario(s) in --only: {', '.join(sorted(unknown))}")
    args.kueue_sizes = args.sizes or "1000"
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


async def run(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    only = set(args.only.split(","))
    api = Api(args.kubeconfig)
    cluster_dir = Path(args.cluster_dir) if args.cluster_dir else None
    bench = Bench(
        api,
        args.kubeconfig,
        out,
        component_pids(cluster_dir),
        args.concurrency,
        bbs_port=18889 if args.bbs_api else 0,
        cluster_dir=cluster_dir,
    )
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": "bench/run " + shlex.join(sys.argv[1:]),
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg(),
            "cluster": args.kubeconfig,
            "args": vars(args),
        }
    }
    started = time.monotonic()
    try:
        await bench.install_crd()
        if "client" in only:
            results["client_cost"] = await bench.client_cost(2000)
        if "ceiling" in only:
            results["ceiling"] = await bench.ceiling(args.ceiling)
        if "status-writes" in only:
            results["status_writes"] = await status_writes(
                bench, args.status_writes, args.status_base, args.status_crd
            )
        if "throughput" in only:
            sizes = _ints(args.sizes)
            results["throughput"] = []
            for n in sizes:
                bare = await bench.burst(n, bare=True)
                taskop = await bench.burst(n, bare=False)
                ratio = {
                    "throughput": _ratio(taskop["per_s"], bare["per_s"]),
                    "p50": _ratio(
                        taskop["create_to_completed"]["p50_s"], bare["create_to_completed"]["p50_s"]
                    ),
                    "p99": _ratio(
                        taskop["create_to_completed"]["p99_s"], bare["create_to_completed"]["p99_s"]
                    ),
                }
                results["throughput"].append(
                    {"n": n, "bare": bare, "taskop": taskop, "ratio": ratio}
                )
            if not args.no_profile:
                # A burst of its own: py-spy's sampling takes CPU from the machine the cluster
                # runs on, so it never runs during a burst that a ratio compares.
                n = max(sizes)
                profiled = await bench.burst(n, bare=False, profile=True)
                results["profile"] = {
                    "phase": f"a taskop burst of {n} Tasks of its own, after the measured ones",
                    "operator_cpu_ms_per_task": profiled["operator_cpu_ms_per_task"],
                    "profiler_cpu_s": profiled["profiler_cpu_s"],
                    **analyse_profile(out / profiled["profile"]),
                }
        if "steady" in only:
            results["steady"] = [
                await bench.steady(rate, args.steady_seconds) for rate in _ints(args.rates)
            ]
        if "memory" in only:
            results["memory"] = [
                await bench.held(n, args.hold_window, args.held_cheap_above)
                for n in _ints(args.held)
            ]
        if "hostile" in only:
            results["hostile"] = await bench.hostile(args.hostile, 300 * 1024)
        if "kueue" in only:
            results["kueue"] = await kueue(bench, _ints(args.kueue_sizes), _ints(args.kueue_ports))
    finally:
        await api.close()
        results["meta"]["loadavg_end"] = loadavg()
        results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    return results


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def point_latest(out: Path, report_path: Path) -> None:
    """bench/results/LATEST.md: the latest report, its links made relative to bench/results/."""
    rel = out.name
    text = re.sub(r"\]\((?!https?:)([^)]+)\)", rf"]({rel}/\1)", report_path.read_text())
    header = f"<!-- written by bench/run -->\nLatest run: [{rel}]({rel}/report.md)\n\n"
    (RESULTS / "LATEST.md").write_text(header + text)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    prefix = f"{args.only}-" if args.only in ("status-writes", "kueue") else ""
    out = RESULTS / (prefix + time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True)
    log(f"results in {out}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        results = asyncio.run(run(args, out))
    finally:
        for op in list(RUNNING):
            op.stop()
    report_path = report.write(results, out)
    if not args.no_latest:
        point_latest(out, report_path)
    log(f"report: {report_path}")


if __name__ == "__main__":
    main()
