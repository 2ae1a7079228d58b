"""A taskop replica that is a standby for a test: kopf peering (`taskop run --peering`) with a
live peer of a higher priority already in the peering object, so this replica never becomes the
active one (as the second replica of the chart's replicaCount: 2 while the first lives)."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import ROOT
from tests.kubeutil import kubectl, wait_until
from tests.operatorproc import OperatorProcess

PEERING = "taskop"
KOPF_CRDS = ROOT / "charts" / "taskop" / "crds" / "kopf.dev_peerings.yaml"


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode()
    except OSError as e:
        return 0, str(e)


def start_standby(
    kubeconfig: str,
    k8s: Any,
    namespace: str,
    log_path: Path,
    settings: dict[str, Any],
    metrics_port: int,
) -> OperatorProcess:
    """`taskop run --peering` in ``namespace`` while another live peer outranks it; returns once
    its readiness says it is the standby. The caller stops it."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(KOPF_CRDS))
    kubectl(
        kubeconfig,
        *("wait", "--for=condition=Established", "--timeout=30s", "crd/kopfpeerings.kopf.dev"),
    )
    now = datetime.datetime.now(datetime.UTC).isoformat()
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING},
            # The active replica: a priority no started replica draws (they take 1 … 2**30),
            # alive for an hour.
            "status": {
                "the-active-replica": {"priority": 2**31, "lifetime": 3600, "lastseen": now}
            },
        },
    )
    proc = OperatorProcess(
        kubeconfig,
        namespace,
        log_path,
        {k: str(v) for k, v in {**settings, "metrics_port": metrics_port}.items()},
        extra_args=[f"--peering={PEERING}"],
    )
    try:
        wait_until(
            lambda: (answer := readyz(metrics_port))[0] == 503 and "standby" in answer[1],
            timeout=60,
            what="the replica to be a ready-to-serve standby",
        )
    except Exception:
        proc.stop()
        raise
    return proc
