"""hack/cluster restarts cleanly (state kept) and `down` leaves no process behind.

Runs a second, private cluster on other ports and another state directory, so the shared
session cluster is not disturbed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.conftest import cluster_tool, port_free, private_cluster_ports

pytestmark = pytest.mark.cluster

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_cluster_up_refuses_a_port_another_process_holds(tmp_path: Path, kubeconfig: str) -> None:
    env = {"TASKOP_CLUSTER_DIR": str(tmp_path / "cluster"), **private_cluster_ports()}
    etcd_port = int(env["TASKOP_ETCD_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", etcd_port))
        squatter.listen()
        with pytest.raises(RuntimeError) as refused:
            cluster_tool("up", "--no-build", env=env)
    assert f"cannot start etcd: 127.0.0.1:{etcd_port} is already in use" in str(refused.value)
    assert "TASKOP_ETCD_PORT" in str(refused.value)
    assert not list((tmp_path / "cluster" / "run").glob("*.pid"))


def test_cluster_restarts_with_its_state_and_down_leaves_nothing_running(
    tmp_path: Path, kubeconfig: str
) -> None:
    env = {
        "TASKOP_CLUSTER_DIR": str(tmp_path / "cluster"),
        **private_cluster_ports(),
        "TASKOP_FAKE_NODES": "1",
    }
    etcd_port = int(env["TASKOP_ETCD_PORT"])
    ports = [
        etcd_port,
        etcd_port + 1,
        int(env["TASKOP_APISERVER_PORT"]),
        int(env["TASKOP_KWOK_PORT"]),
    ]
    cluster_tool("up", "--no-build", env=env)
    try:
        kc = cluster_tool("kubeconfig", env=env).strip()
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(config_file=kc))
        api.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survives"), data={"k": "v"}),
        )
        pids_before = {
            c: int((tmp_path / "cluster" / "run" / f"{c}.pid").read_text()) for c in COMPONENTS
        }

        cluster_tool("restart", env=env)

        pids_after = {
            c: int((tmp_path / "cluster" / "run" / f"{c}.pid").read_text()) for c in COMPONENTS
        }
        assert all(not _alive(p) for p in pids_before.values())
        assert all(_alive(p) for p in pids_after.values())
        assert "ok" in cluster_tool("status", env=env)
        api = client.CoreV1Api(config.new_client_from_config(config_file=kc))
        assert api.read_namespaced_config_map("survives", "default").data == {"k": "v"}
    finally:
        cluster_tool("down", env=env)

    assert all(not _alive(p) for p in pids_after.values())
    assert not list((tmp_path / "cluster" / "run").glob("*.pid"))
    assert all(port_free(p) for p in ports), [p for p in ports if not port_free(p)]
