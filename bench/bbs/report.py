"""Results → results.json, report.md (the table) and latency.png; py-spy stacks → top functions."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any

IDLE = ("select (selectors.py", "epoll", "_worker (concurrent/futures/thread.py", "wait (threading")
PAIRS = {  # taskop side → the raw side it is compared with (first is the headline)
    "DesireTask vs create": ["raw", "raw_create+status"],
    "TaskByGuid vs GET": ["raw"],
    "Tasks vs LIST": ["raw", "raw_gzip"],
}
LABELS = {
    "raw": "raw",
    "raw_create+status": "raw create + status patch",
    "raw_gzip": "raw, gzip",
}


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| operation | tasks | conc. | n | taskop p50 / p99 ms | raw API server p50 / p99 ms "
        "| ratio p50 / p99 | taskop ops/s | raw ops/s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in results:
        sides = row["sides"]
        t = sides["taskop"]
        for raw_name in PAIRS.get(row["op"], []):
            r = sides[raw_name]
            label = (
                row["op"].replace(" vs ", " vs raw ")
                if raw_name == "raw"
                else (f"{row['op'].split(' vs ')[0]} vs {LABELS[raw_name]}")
            )
            lines.append(
                f"| {label} | {row['tasks']:,} | {row['concurrency']} | {t['n']:,} "
                f"| {_ms(t['p50_ms'])} / {_ms(t['p99_ms'])} | {_ms(r['p50_ms'])} / "
                f"{_ms(r['p99_ms'])} | {t['p50_ms'] / r['p50_ms']:.2f} / "
                f"{t['p99_ms'] / r['p99_ms']:.2f} | {_rate(t['ops_per_s'])} "
                f"| {_rate(r['ops_per_s'])} |"
            )
        if row["op"] not in PAIRS:
            lines.append(
                f"| {row['op']} | {row['tasks']:,} | {row['concurrency']} | {t['n']:,} "
                f"| {_ms(t['p50_ms'])} / {_ms(t['p99_ms'])} | | | {_rate(t['ops_per_s'])} | |"
            )
    return lines


def cpu_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| operation | tasks | side | taskop | kube-apiserver | etcd | bench client |",
        "|---|--:|---|--:|--:|--:|--:|",
    ]
    for row in results:
        for side, s in row["sides"].items():
            cells = [
                _ms(s[f"cpu_ms_per_op_{p}"]) if f"cpu_ms_per_op_{p}" in s else "-"
                for p in ("taskop", "kube-apiserver", "etcd", "client")
            ]
            lines.append(f"| {row['op']} | {row['tasks']:,} | {side} | {' | '.join(cells)} |")
    return lines


def top_functions(path: Path, limit: int = 12) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) of the busiest functions in a py-spy raw profile."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE):
            continue
        count = int(count_text)
        total += count
        self_counts[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames}:
            incl[frame] += count
    if not total:
        return []
    return [(f, 100 * c / total, 100 * incl[f] / total) for f, c in self_counts.most_common(limit)]


def _short(frame: str) -> str:
    return re.sub(r"\(.*/(site-packages|lib/python3\.\d+)/", "(", frame)


def plot(out: Path, results: list[dict[str, Any]]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results if r["op"] in PAIRS]
    labels = [f"{r['op'].split(' vs ')[0]}\n{r['tasks']:,} tasks" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key in zip(axes, ("p50_ms", "p99_ms"), strict=True):
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["sides"]["taskop"][key] for r in rows], 0.4,
               label="taskop BBS API")  # fmt: skip
        ax.bar([x + 0.2 for x in xs], [r["sides"]["raw"][key] for r in rows], 0.4,
               label="raw API server")  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_ylabel(f"{key.split('_')[0]} latency (ms, log)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)
    return True


def write(out: Path, data: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(data, indent=1))
    results = data.get("results", [])
    args = data["args"]
    lines = [
        "# taskop BBS API vs the raw API server",
        "",
        f"Command: `{args.get('command') or 'bench/bbs/run'}`; taskop mode `{args['mode']}`; "
        f"{data['cores']} cores; load average {data['load_start']} at start, "
        f"{data['load_end']} at end; {data.get('seconds', 0):.0f} s.",
        "",
        "Latency from request to the last body byte (no decoding), same concurrency for each "
        f"pair, in {args['rounds']} alternating blocks per pair. Ratio = taskop / raw (below 1: "
        "taskop is faster). DesireTask: external domain `cells` (no Jobs); the raw side creates "
        "the same Task object (built by taskop's `build_task`) in a namespace "
        "taskop does not watch.",
        "",
        *table(results),
        "",
        "CPU milliseconds per operation, per process (from /proc, over each side's blocks; other "
        "engineers' processes share the machine, so only the per-process numbers are clean):",
        "",
        *cpu_table(results),
        "",
    ]
    for row in results:
        if "response_bytes" in row:
            b = row["response_bytes"]
            lines.append(f"- Response size at {row['tasks']:,} tasks: taskop {b['taskop']:,} B "
                         f"(protobuf), API server {b['raw']:,} B (JSON).")  # fmt: skip
    if plot(out, results):
        lines += ["", "![latency](latency.png)"]
    else:
        lines += ["", "(no plot: matplotlib is not installed; `pip install -e '.[bench]'`)"]
    for profile in sorted(out.glob("profile-*.txt")):
        top = top_functions(profile)
        if not top:
            continue
        lines += ["", f"## py-spy: `{profile.name}` (busiest functions, idle excluded)", "",
                  "| function | self % | inclusive % |", "|---|--:|--:|"]  # fmt: skip
        lines += [f"| `{f}` | {s:.1f} | {i:.1f} |" for f, s, i in top]
    (out / "report.md").write_text("\n".join(lines) + "\n")
