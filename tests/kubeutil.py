"""Small helpers for tests that talk to a real cluster."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def kubectl(
    kubeconfig: str, *args: str, input_: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the project's kubectl (from PyPI, in the venv) against ``kubeconfig``."""
    exe = Path(sys.executable).parent / "kubectl"
    proc = subprocess.run(
        [str(exe), f"--kubeconfig={kubeconfig}", *args],
        input=input_,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc
