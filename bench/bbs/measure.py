"""Timing: N operations at a fixed concurrency, with the CPU each process spent meanwhile."""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Series:
    """One side of one comparison, accumulated over rounds."""

    latencies: list[float] = field(default_factory=list)  # seconds
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # process → CPU seconds

    def summary(self) -> dict[str, float]:
        n = len(self.latencies)
        return {
            "n": n,
            "p50_ms": percentile(self.latencies, 50) * 1e3,
            "p99_ms": percentile(self.latencies, 99) * 1e3,
            "mean_ms": sum(self.latencies) / n * 1e3,
            "ops_per_s": n / self.wall if self.wall else 0.0,
            **{f"cpu_ms_per_op_{k}": v / n * 1e3 for k, v in sorted(self.cpu.items())},
        }


Op = Callable[[int], Awaitable[None]]


async def run(series: Series, ops: range, concurrency: int, op: Op, pids: dict[str, int]) -> None:
    """Run ``op(i)`` for each i in ``ops``, ``concurrency`` at a time, into ``series``."""
    todo = iter(ops)

    async def worker() -> None:
        for i in todo:  # one shared iterator: each i is taken by exactly one worker
            start = time.perf_counter()
            await op(i)
            series.latencies.append(time.perf_counter() - start)

    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client_before = own_cpu()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    series.wall += time.perf_counter() - start
    for name, pid in pids.items():
        series.cpu[name] = series.cpu.get(name, 0.0) + cpu_seconds(pid) - before[name]
    series.cpu["client"] = series.cpu.get("client", 0.0) + own_cpu() - client_before


async def interleaved(
    sides: dict[str, Op], n: int, concurrency: int, rounds: int, pids: dict[str, int]
) -> dict[str, Series]:
    """Each side ``n`` times, in ``rounds`` alternating blocks (the order flips every round), so
    that the machine's load, which others share, weighs on both sides alike."""
    result = {name: Series() for name in sides}
    names = list(sides)
    per_round = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    done = 0
    for r, count in enumerate(per_round):
        for name in names if r % 2 == 0 else reversed(names):
            await run(result[name], range(done, done + count), concurrency, sides[name], pids)
        done += count
    return result
