"""Processes: the operator under test, /proc readings (RSS, CPU, machine load) and py-spy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def component_pids(cluster_dir: Path | None, names: list[str] = COMPONENTS) -> dict[str, int]:
    """The pids hack/cluster recorded (``<cluster dir>/run/<name>.pid``; `kueue` once started)."""
    pids: dict[str, int] = {}
    if cluster_dir is None:
        return pids
    for name in names:
        try:
            pids[name] = int((cluster_dir / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            pass
    return pids


@dataclass
class CpuMeter:
    """CPU seconds used by each named process, and the machine's busy cores, over a phase."""

    pids: dict[str, int]
    start_wall: float = field(default_factory=time.monotonic)
    start: dict[str, float] = field(default_factory=dict)
    start_machine: tuple[float, float] = (0.0, 0.0)
    start_load: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.start = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self.start_machine = machine_cpu()
        self.start_load = loadavg()

    def result(self) -> dict[str, Any]:
        wall = time.monotonic() - self.start_wall
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        used = {n: round(cpu_seconds(p) - self.start[n], 2) for n, p in self.pids.items()}
        return {
            "wall_s": round(wall, 2),
            "cpu_s": used,
            "machine_busy_cores": round(
                cores * (busy - self.start_machine[0]) / max(1.0, total - self.start_machine[1]), 2
            ),
            "loadavg_start": self.start_load,
            "loadavg_end": loadavg(),
        }


RUNNING: set[Operator] = set()  # stopped by bench's main even when the run is interrupted


class Operator:
    """``python -m taskop run`` for one namespace, sampled from /proc while it runs."""

    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        log_path: Path,
        bbs_port: int = 0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``bbs_port``: also serve the BBS API (its view of the namespace's Tasks) there, and
        the Glance door on the next port (its views). ``extra_env``: more settings (e.g.
        TASKOP_KUEUE_ENABLED)."""
        env = {
            **os.environ,
            "TASKOP_HEALTH_PORT": "0",
            "TASKOP_BBS_ENABLED": "false",
            "TASKOP_GLANCE_ENABLED": "false",
            **(extra_env or {}),
        }
        if bbs_port:
            env.update(
                TASKOP_BBS_ENABLED="true",
                TASKOP_BBS_NAMESPACE=namespace,
                TASKOP_BBS_LISTEN_PORT=str(bbs_port),
                TASKOP_GLANCE_ENABLED="true",
                TASKOP_GLANCE_LISTEN_PORT=str(bbs_port + 1),
            )
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskop", "run", f"--kubeconfig={kubeconfig}",
                 f"--namespace={namespace}", "--log-format=json"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.pid = self.proc.pid
        RUNNING.add(self)
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, rss MB, cpu s)
        self._sampler: asyncio.Task[None] | None = None

    async def started(self, limit_s: float = 60) -> None:
        deadline = time.monotonic() + limit_s
        while "taskop reconciler started" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start; see {self.log_path}")
            await asyncio.sleep(0.2)
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while self.proc.poll() is None:
            self.samples.append((time.monotonic(), rss_mb(self.pid), cpu_seconds(self.pid)))
            await asyncio.sleep(0.5)

    def stop(self) -> None:
        RUNNING.discard(self)
        if self._sampler:
            self._sampler.cancel()
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()


class Profiler:
    """py-spy record (collapsed stacks) of a process until stopped."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        exe = Path(sys.executable).parent / "py-spy"
        self.proc = subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
             "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> float:
        """Stop sampling; the CPU seconds py-spy itself used."""
        used = cpu_seconds(self.proc.pid) if self.proc.poll() is None else 0.0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return used
