"""Every manifest in examples/ does what its comment says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.operatorproc import OperatorFactory
from tests.tasks import Tasks

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXPECTED = {
    "hello-task.yaml": {"failed": False, "result": "hello world", "failureReason": ""},
    "failing-task.yaml": {"failed": True, "result": "", "failureReason": "exit status 3"},
    "ttl-task.yaml": {"failed": False, "result": "report done"},
}


REAL_NODE = {"secret-config-task.yaml", "pvc-tasks.yaml"}
"""Examples that need real containers: tests/integration/test_task_inputs.py."""


GLANCE = {"glance-tasktype.yaml"}
"""A TaskType, run through the Glance API: tests/e2e/test_glance_gophercloud.py."""


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(
        {*EXPECTED, *REAL_NODE, *GLANCE}
    )


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_task_completes_as_documented(
    example: str, operator: OperatorFactory, k8s: client.ApiClient, namespace: str
) -> None:
    operator.start()
    tasks = Tasks(k8s, namespace)
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    tasks.create(manifest)

    status = tasks.wait_state(manifest["metadata"]["name"], "Completed")

    assert {k: status[k] for k in EXPECTED[example]} == EXPECTED[example]
