"""Results → results.json, report.md and PNG plots; py-spy collapsed stacks → top functions."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

# Frames on every stack (event loop, thread pool, entry point): no news in an inclusive ranking.
_PLUMBING = re.compile(
    r"^(<module>|main|run|_run_module_as_main|_run_code) "
    r"|.*\((asyncio|threading|concurrent|<frozen)"
)
# Where an idle thread sits (epoll, the thread pool's queue): py-spy still samples some of them.
_WAITING = re.compile(r"^(EpollSelector\.select|_worker) \((selectors|concurrent/futures/thread)")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _where(path: str) -> str:
    """A short module-ish name for a source path: ``kopf/_core/...`` or ``stdlib/json``."""
    for marker in ("site-packages/", "/operator/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if m := re.search(r"lib/python3\.\d+/(.*)", path):
        return "stdlib/" + m.group(1)
    return path


def _package(where: str) -> str:
    head = where.split("/", 1)[0]
    if head == "stdlib":
        return "stdlib/" + where.split("/")[1].removesuffix(".py")
    return head.removesuffix(".py")


def analyse_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function and per package, from py-spy --format raw."""
    selfs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = waiting = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack.split(";"):
            if m := _FRAME.match(raw):
                frames.append(f"{m['func']} ({_where(m['file'])})")
        if not frames or _WAITING.match(frames[-1]):
            waiting += count
            continue
        total += count
        selfs[frames[-1]] += count
        packages[_package(frames[-1].rsplit(" (", 1)[1].rstrip(")"))] += count
        for frame in set(frames):
            if not _PLUMBING.match(frame):
                inclusive[frame] += count

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(1, total), 1)) for k, v in c.most_common(top)]

    return {
        "file": path.name,
        "samples": total,
        "waiting_samples_dropped": waiting,
        "self_pct": share(selfs),
        "inclusive_pct": share(inclusive),
        "package_self_pct": share(packages),
    }


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    made = []
    bursts = results.get("throughput", [])
    if bursts:
        fig, axes = plt.subplots(1, len(bursts), figsize=(5 * len(bursts), 4), squeeze=False)
        for ax, row in zip(axes[0], bursts, strict=True):
            for kind in ("bare", "taskop"):
                curve = row[kind]["completion_curve_s"]
                ax.plot(curve, range(1, len(curve) + 1), label=kind)
            ax.set_title(f"N = {row['n']}")
            ax.set_xlabel("seconds since first create")
            ax.set_ylabel("Completed")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "throughput.png", dpi=90)
        plt.close(fig)
        made.append("throughput.png")
    queued = (results.get("kueue") or {}).get("runs", [])
    if queued:
        fig, axes = plt.subplots(1, len(queued), figsize=(5 * len(queued), 4), squeeze=False)
        for ax, row in zip(axes[0], queued, strict=True):
            for kind in ("bare", "taskop"):
                curve = row[kind]["completion_curve_s"]
                ax.plot(curve, range(1, len(curve) + 1), label=f"{kind} through Kueue")
            ax.set_title(f"N = {row['n']}, through Kueue")
            ax.set_xlabel("seconds since first create")
            ax.set_ylabel("Completed")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "kueue.png", dpi=90)
        plt.close(fig)
        made.append("kueue.png")
    steady = results.get("steady", [])
    if steady:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, title in (
            (axes[0], "create_to_job", "Task created → Job created"),
            (axes[1], "pod_done_to_completed", "pod done → Task Completed"),
        ):
            for row in steady:
                xs = row["latencies_s"][key]
                ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=f"{row['rate']}/s")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(title)
            ax.set_xlabel("seconds")
            ax.set_ylabel("fraction of Tasks")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=90)
        plt.close(fig)
        made.append("latency.png")
    held = results.get("memory", [])
    if held:
        fig, ax = plt.subplots(figsize=(7, 4))
        for row in held:
            ts, rss = zip(*row["rss_samples"], strict=True)
            ax.plot(ts, rss, label=f"{row['n']} Tasks held")
        ax.set_xlabel("seconds since the first create")
        ax.set_ylabel("operator RSS (MB)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=90)
        plt.close(fig)
        made.append("memory.png")
    prof = results.get("profile")
    if prof:
        fig, ax = plt.subplots(figsize=(8, 4))
        names, shares = zip(*reversed(prof["package_self_pct"][:12]), strict=True)
        ax.barh(names, shares)
        ax.set_xlabel("% of CPU samples (self)")
        ax.set_title(f"operator CPU by package ({prof['file']})")
        fig.tight_layout()
        fig.savefig(out / "profile.png", dpi=90)
        plt.close(fig)
        made.append("profile.png")
    return made


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    meta = results["meta"]
    lines = [
        f"# taskop benchmark — {meta['started']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['cpus']} cores; load average at start {meta['loadavg_start']}, "
        f"at end {meta.get('loadavg_end')}; cluster: {meta['cluster']}; "
        f"wall time {meta.get('wall_s')} s. Times are client-side watch timestamps.",
        "",
    ]
    if c := results.get("ceiling"):
        lines += [
            "## API-server ceiling (no operator, no pods)",
            "",
            f"{c['n']} objects, {c['concurrency']} requests in flight from one Python client.",
            "",
            "| Task create/s | Task status patch/s | Task get/s | Job create/s (suspended) |",
            "|---|---|---|---|",
            f"| {c['task_create_per_s']} | {c['task_status_patch_per_s']} | "
            f"{c['task_get_per_s']} | {c['job_create_per_s']} |",
            "",
        ]
    if c := results.get("status_writes"):
        lines += _status_writes(c)
    if c := results.get("client_cost"):
        on, off = c["trust_env_on"], c["trust_env_off"]
        lines += [
            "## The operator's client stack: CPU per API request",
            "",
            f"{c['n']} x {c['request']}, 16 in flight, through taskop.kube (kubernetes_asyncio).",
            "",
            "| aiohttp trust_env | CPU ms/request | requests/s |",
            "|---|---|---|",
            f"| on (kubernetes_asyncio's) | {on['cpu_ms_per_request']} | {on['per_s']} |",
            f"| off | {off['cpu_ms_per_request']} | {off['per_s']} |",
            "",
        ]
        if w := c.get("status_write"):
            lines += [
                f"{w['n']} Task status merge-patches, one at a time, in the same run:",
                "",
                "| path | CPU ms/request | requests/s |",
                "|---|---|---|",
                *(
                    f"| {path} | {w[path]['cpu_ms_per_request']} | {w[path]['per_s']} |"
                    for path in ("kubernetes_asyncio", "direct")
                ),
                "",
            ]
    if rows := results.get("throughput"):
        lines += [
            "## Burst throughput: N created at once, until all Completed",
            "",
            "| N | kind | objects/s | span s | p50 s | p99 s | operator CPU ms/Task | "
            "machine busy cores | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            for kind in ("bare", "taskop"):
                r = row[kind]
                lines.append(
                    f"| {row['n']} | {kind} | {r['per_s']} | {r['span_s']} | "
                    f"{r['create_to_completed']['p50_s']} | {r['create_to_completed']['p99_s']} | "
                    f"{_fmt(r.get('operator_cpu_ms_per_task'))} | "
                    f"{r['cpu']['machine_busy_cores']} | {r['cpu']['loadavg_end'][0]} |"
                )
        lines += ["", "| N | throughput taskop/bare | p50 taskop/bare | p99 taskop/bare |"]
        lines += ["|---|---|---|---|"]
        for row in rows:
            ratio = row["ratio"]
            lines.append(
                f"| {row['n']} | {ratio['throughput']} | {ratio['p50']} | {ratio['p99']} |"
            )
        big = rows[-1]
        lines += [
            "",
            f"API requests per object at N = {big['n']} (all clients: operator, controllers, "
            "scheduler, kwok, bench):",
            "",
            "| request | bare | taskop |",
            "|---|---|---|",
        ]
        keys = sorted(
            set(big["bare"]["api_requests_per_object"])
            | set(big["taskop"]["api_requests_per_object"])
        )
        for k in keys:
            lines.append(
                f"| {k} | {_fmt(big['bare']['api_requests_per_object'].get(k))} | "
                f"{_fmt(big['taskop']['api_requests_per_object'].get(k))} |"
            )
        lines += ["", "Where the time goes, p50 / p99 seconds per step:", ""]
        steps = list(rows[-1]["taskop"]["stages"])
        lines += ["| N | kind | " + " | ".join(steps) + " |", "|---" * (len(steps) + 2) + "|"]
        for row in rows:
            for kind in ("bare", "taskop"):
                st = row[kind]["stages"]
                cells = [f"{st[s]['p50_s']} / {st[s]['p99_s']}" if s in st else "-" for s in steps]
                lines.append(f"| {row['n']} | {kind} | " + " | ".join(cells) + " |")
        lines += ["", f"CPU seconds by process at N = {big['n']}:", ""]
        procs = list(big["taskop"]["cpu"]["cpu_s"])
        lines += ["| kind | " + " | ".join(procs) + " |", "|---" * (len(procs) + 1) + "|"]
        for kind in ("bare", "taskop"):
            cpu = big[kind]["cpu"]["cpu_s"]
            lines.append(f"| {kind} | " + " | ".join(_fmt(cpu.get(p)) for p in procs) + " |")
        lines.append("")
    if rows := results.get("steady"):
        lines += [
            "## Reconcile latency under steady load",
            "",
            "| offered /s (target) | Tasks | create→Job p50 | p99 | pod done→Completed p50 | p99 | "
            "create→Completed p50 | p99 | operator CPU (cores) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            cells = [f"{r['offered_per_s']} ({r['rate']})", r["n"]]
            for key in ("create_to_job", "pod_done_to_completed", "create_to_completed"):
                cells += [r[key]["p50_s"], r[key]["p99_s"]]
            cells.append(r["operator_cpu_busy"])
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    if rows := results.get("memory"):
        lines += [
            "## Operator memory and CPU with Tasks held (half Completed, half Pending)",
            "",
            "| Tasks | RSS empty MB | RSS held MB | peak MB | KB/Task | s to settle | CPU s to "
            "settle | CPU ms/Task | idle CPU (cores, window s) | idle API requests/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['n']} | {r['rss_baseline_mb']} | {r['rss_held_mb']} | {r['rss_peak_mb']} | "
                f"{r['rss_per_task_kb']} | {r['settle_s']} | {r['cpu_s_to_settle']} | "
                f"{r['cpu_ms_per_task']} | {r['idle_cpu_cores']} ({r['idle_window_s']}) | "
                f"{r.get('idle_requests_per_s', '-')} |"
            )
        lines.append("")
        for r in rows:
            if r.get("how"):
                lines.append(f"- {r['n']} held: {r['how']}; idle requests {r['idle_requests']}.")
        lines.append("")
    if r := results.get("hostile"):
        lines += [
            "## Tasks larger than the operator holds (TASKOP_MAX_TASK_BYTES)",
            "",
            f"{r['n']} small Tasks run to Completed, then two batches of {r['n']} Tasks of"
            f" {r['hostile_task_bytes']:,} bytes each (which fail: too large), in one operator."
            f" All settled: {r['all_settled']}. The first hostile batch's RSS includes what the"
            " allocator keeps of decoding them (freed, not returned to the OS); the second"
            " batch reuses it.",
            "",
            "| RSS empty MB | + small MB | + hostile MB | + 2nd hostile MB | peak MB |"
            " KB/small Task | KB/hostile Task | KB/hostile Task, 2nd batch |",
            "|---|---|---|---|---|---|---|---|",
            f"| {r['rss_empty_mb']} | {r['rss_with_small_mb']} | {r['rss_with_both_mb']} |"
            f" {r['rss_with_second_batch_mb']} | {r['rss_peak_mb']} | {r['kb_per_small_task']} |"
            f" {r['kb_per_hostile_task']} | {r['kb_per_hostile_task_second_batch']} |",
            "",
        ]
    if k := results.get("kueue"):
        lines += _kueue(k)
    if prof := results.get("profile"):
        lines += [
            f"## Profile: py-spy, operator during {prof['phase']}",
            "",
            f"{prof['samples']} busy samples at 100 Hz ({prof['waiting_samples_dropped']} samples"
            " of threads waiting in epoll or the thread pool's queue dropped)."
            + (
                f" Operator CPU in that burst: {prof['operator_cpu_ms_per_task']} ms per Task;"
                f" py-spy's own: {prof['profiler_cpu_s']} s."
                if "profiler_cpu_s" in prof
                else ""
            ),
            "",
            "| package (self) | % | function (inclusive) | % |",
            "|---|---|---|---|",
        ]
        for (pkg, p1), (fn, p2) in zip(
            prof["package_self_pct"][:12], prof["inclusive_pct"][:12], strict=False
        ):
            lines.append(f"| {pkg} | {p1} | `{fn}` | {p2} |")
        lines += ["", "Top self time:", ""]
        lines += [f"- {p}% `{fn}`" for fn, p in prof["self_pct"][:10]]
        lines.append("")
    lines += _bottleneck(results)
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _kueue(k: dict[str, Any]) -> list[str]:
    setup = k["setup"]
    lines = [
        "## Through Kueue: N bare Jobs, then N Tasks, each labelled with a LocalQueue",
        "",
        "Kueue's manager (`hack/cluster kueue up`) admits from a ClusterQueue with room for all"
        f" N at once (quota {setup['cluster_queue_quota']}; a pod asks at most"
        f" {setup['pod_request_upper_bound']}). Bare Jobs are created suspended and labelled;"
        " Tasks carry `spec.queueName` and the operator runs with TASKOP_KUEUE_ENABLED=true (its"
        " Jobs created suspended, their pods gated until taskop records and releases them).",
        "",
        "| N | kind | all done | objects/s | span s | p50 s | p99 s | operator CPU ms/Task |"
        " Kueue CPU s | machine busy cores | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in k["runs"]:
        for kind in ("bare", "taskop"):
            r = row[kind]
            lines.append(
                f"| {row['n']} | {kind} | {r['all_completed']} | {r['per_s']} | {r['span_s']} | "
                f"{r['create_to_completed']['p50_s']} | {r['create_to_completed']['p99_s']} | "
                f"{_fmt(r.get('operator_cpu_ms_per_task'))} | "
                f"{_fmt(row['kueue_cpu_s'][kind])} | "
                f"{r['cpu']['machine_busy_cores']} | {r['cpu']['loadavg_end'][0]} |"
            )
    lines += ["", "| N | throughput taskop/bare | p50 taskop/bare | p99 taskop/bare |"]
    lines += ["|---|---|---|---|"]
    for row in k["runs"]:
        ratio = row["ratio"]
        lines.append(f"| {row['n']} | {ratio['throughput']} | {ratio['p50']} | {ratio['p99']} |")
    for row in k["runs"]:
        bare, taskop = row["bare"], row["taskop"]
        lines += [
            "",
            f"N = {row['n']}: where the time goes, p50 / p99 seconds per step (a bare Job's"
            " job->unsuspended is from its creation; Kueue's admission is the unsuspend,"
            " taskop's gate release is in pod->bound):",
            "",
        ]
        steps = list(taskop["stages"])
        lines += ["| kind | " + " | ".join(steps) + " |", "|---" * (len(steps) + 1) + "|"]
        for kind, r in (("bare", bare), ("taskop", taskop)):
            st = r["stages"]
            cells = []
            for step in steps:
                got = st.get(step) or st.get(step.replace("job->", "created->"))
                cells.append(f"{got['p50_s']} / {got['p99_s']}" if got else "-")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "API requests per object (all clients: operator, Kueue, controllers, scheduler,"
            " kwok, bench):",
            "",
            "| request | bare | taskop |",
            "|---|---|---|",
        ]
        keys = sorted(set(bare["api_requests_per_object"]) | set(taskop["api_requests_per_object"]))
        for key in keys:
            lines.append(
                f"| {key} | {_fmt(bare['api_requests_per_object'].get(key))} | "
                f"{_fmt(taskop['api_requests_per_object'].get(key))} |"
            )
        procs = list(taskop["cpu"]["cpu_s"])
        lines += ["", "CPU seconds by process:", ""]
        lines += ["| kind | " + " | ".join(procs) + " |", "|---" * (len(procs) + 1) + "|"]
        for kind, r in (("bare", bare), ("taskop", taskop)):
            cpu = r["cpu"]["cpu_s"]
            lines.append(f"| {kind} | " + " | ".join(_fmt(cpu.get(p)) for p in procs) + " |")
    return [*lines, ""]


def _status_writes(c: dict[str, Any]) -> list[str]:
    rules = ", ".join(
        f"{v}: {r['rules']} ({r['oldSelf_rules']} oldSelf)" for v, r in c["rules"].items()
    )
    lines = [
        "## Status writes: the API server's cost of one status PATCH, Task against Job",
        "",
        f"{c['n']} writes to `/status` per variant (merge patches; `task-put`: updates) over "
        f"{c['objects']} objects each, "
        f"{c['inflight']} in flight, in {c['rounds']} interleaved rounds; no operator, no pods. "
        f"kube-apiserver CPU from /proc (idle: {_fmt(c['apiserver_idle_cores'])} cores); "
        f"latency at the client. CEL rules per CRD: {rules}.",
        "",
        "| variant | writes/s | API server CPU ms/write | ratio | p50 ms | ratio | p99 ms | "
        "etcd CPU ms/write | CPU ms/write by round |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, r in c["variants"].items():
        ratio = r["ratio_to_job"]
        lines.append(
            f"| {variant} | {r['per_s']} | {_fmt(r['apiserver_cpu_ms_per_write'])} | "
            f"{_fmt(ratio['apiserver_cpu_ms_per_write'])} | {r['latency_p50_ms']} | "
            f"{_fmt(ratio['latency_p50_ms'])} | {r['latency_p99_ms']} | "
            f"{_fmt(r['etcd_cpu_ms_per_write'])} | "
            f"{' '.join(str(x) for x in r['apiserver_cpu_ms_per_write_rounds'])} |"
        )
    return [*lines, ""]


def _bottleneck(results: dict[str, Any]) -> list[str]:
    """Where taskop's cost over bare Jobs goes, from the largest burst and the profile."""
    if not results.get("throughput"):
        return []
    big = results["throughput"][-1]
    n, bare, taskop = big["n"], big["bare"], big["taskop"]
    extra = {
        k: round(v - bare["api_requests_per_object"].get(k, 0.0), 2)
        for k, v in taskop["api_requests_per_object"].items()
    }
    reads = sum(v for k, v in extra.items() if k.split()[0] in ("GET", "LIST"))
    writes = sum(v for k, v in extra.items() if k.split()[0] not in ("GET", "LIST"))
    cpu_t, cpu_b = taskop["cpu"]["cpu_s"], bare["cpu"]["cpu_s"]
    wall = taskop["cpu"]["wall_s"]
    per_task = {p: round(1000 * (cpu_t.get(p, 0.0) - cpu_b.get(p, 0.0)) / n, 1) for p in cpu_t}
    lines = [
        f"## Bottleneck (derived from the burst of {n})",
        "",
        f"- taskop adds {reads:.1f} reads (GET/LIST) and {writes:.1f} writes per Task over a bare "
        f"Job: {', '.join(f'{k} {v:+}' for k, v in sorted(extra.items()) if abs(v) >= 0.5)}.",
        "- CPU per Task, taskop run minus bare run (ms): "
        + ", ".join(f"{p} {v}" for p, v in per_task.items())
        + ".",
        f"- The operator used {cpu_t.get('taskop', 0.0) / max(wall, 0.1):.2f} cores on average "
        f"(one Python thread: at most ~1) while the machine had "
        f"{taskop['cpu']['machine_busy_cores']} of {results['meta']['cpus']} cores busy.",
    ]
    if prof := results.get("profile"):
        top = ", ".join(f"{k} {v}%" for k, v in prof["package_self_pct"][:8])
        lines.append(f"- Operator CPU by package (py-spy, self): {top}.")
    return [*lines, ""]


def write(results: dict[str, Any], out: Path) -> Path:
    plots = _plots(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report = out / "report.md"
    report.write_text(markdown(results, plots))
    return report
