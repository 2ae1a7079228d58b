"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def bbsconformance() -> Path:
    """The conformance program, built (or reused) by hack/build-bbs-tools."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-bbs-tools")], capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        pytest.fail(f"hack/build-bbs-tools failed:\n{proc.stderr[-5000:]}")
    binary = Path(proc.stdout.strip()) / "bbsconformance"
    assert binary.is_file(), f"no {binary}"
    return binary
