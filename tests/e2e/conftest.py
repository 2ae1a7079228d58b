"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, built_tool
from tests.kubeutil import kubectl

CHART = ROOT / "charts" / "taskop"


@pytest.fixture(scope="session")
def bbsconformance() -> Path:
    """The conformance program, built by hack/bootstrap (hack/build-bbs-tools)."""
    binary = Path(built_tool("build-bbs-tools")) / "bbsconformance"
    assert binary.is_file(), f"no {binary}"
    return binary


@pytest.fixture(scope="session")
def glanceclient() -> Path:
    """The gophercloud test client (tests/glanceclient), built by hack/bootstrap."""
    return Path(built_tool("build-glanceclient"))


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
