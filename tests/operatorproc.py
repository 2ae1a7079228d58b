"""The operator as a real process in tests: started, killed and restarted at will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        log_path: Path,
        settings: dict[str, str],
        extra_args: Sequence[str] = (),
        clusterwide: bool = False,
    ) -> None:
        env = {
            **os.environ,
            "TASKOP_HEALTH_PORT": "0",
            "TASKOP_METRICS_PORT": "0",  # tests that read metrics give a port
            "TASKOP_BBS_ENABLED": "false",
            "TASKOP_GLANCE_ENABLED": "false",  # tests of the Glance API give a port
            **{f"TASKOP_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskop",
                "run",
                f"--kubeconfig={kubeconfig}",
                *([] if clusterwide else [f"--namespace={namespace}"]),
                *extra_args,
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: the harshest crash, no cleanup at all."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self._log.closed:  # stopped or killed already
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


class OperatorFactory:
    def __init__(self, kubeconfig: str, namespace: str, tmp_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.started: list[OperatorProcess] = []

    def start(
        self,
        *,
        clusterwide: bool = False,
        kubeconfig: str | None = None,
        extra_args: Sequence[str] = (),
        **settings: object,
    ) -> OperatorProcess:
        """`taskop run` watching the test's namespace (or every namespace), with ``settings``
        (and another ``kubeconfig``, e.g. the API proxy's of tests/apiproxy.py)."""
        log = self.tmp_path / f"operator-{len(self.started)}.log"
        proc = OperatorProcess(
            kubeconfig or self.kubeconfig,
            self.namespace,
            log,
            {k: str(v) for k, v in settings.items()},
            extra_args=extra_args,
            clusterwide=clusterwide,
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()
        failed = [p for p in self.started if "Traceback" in p.logs()]
        if failed:
            sys.stderr.write(failed[0].logs()[-5000:])
