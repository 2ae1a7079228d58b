"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.kubeutil import kubectl

CHART = ROOT / "charts" / "taskop"


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


@pytest.fixture(scope="session")
def glanceclient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gophercloud test client (tests/glanceclient), built from its pinned go.mod."""
    binary = tmp_path_factory.mktemp("glanceclient") / "glanceclient"
    proc = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=ROOT / "tests" / "glanceclient",
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
    )
    if proc.returncode != 0:
        pytest.fail(f"building tests/glanceclient failed:\n{proc.stderr[-5000:]}")
    return binary


@pytest.fixture(scope="module")
def helm() -> str:
    out = subprocess.run(
        [str(ROOT / "hack" / "build-helm")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def chart_crds(kubeconfig: str, crds: None) -> None:
    """The chart's CRDs (taskop's and kopf's peering CRDs), as `helm install` would create them."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/kopfpeerings.kopf.dev",
    )
