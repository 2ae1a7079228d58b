"""Pod start overhead of the in-pod executor, on the real node with real containers.

    .venv/bin/python -m bench.executor_overhead [--runs 20]

Needs the local cluster with its real node (`hack/cluster up`, `hack/cluster node up`) and the
operator image imported there (`hack/build-image --containerd-address $(hack/cluster node
containerd-address)`). No operator runs: each run creates two Jobs one after the other, built by
taskop's own Job builder from the same Task spec (``sh -c 'echo hi'``):

  executor  the Job taskop creates: init container copying the executor, downward-API spec,
            the task container running ``taskop-executor run``
  plain     the same pod without the executor: the command itself, no init container

and times, with the client's monotonic clock, Job creation → the watch showing the pod Succeeded.
Runs alternate (executor, plain, executor, …) so that drift on the machine hits both alike.
Writes bench/results/executor-overhead-<time>.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from taskop.domain.jobs import JobSettings, build_job  # noqa: E402
from taskop.domain.spec import parse_spec  # noqa: E402

NODE = {"taskop.dev/real-node": "true"}
TOLERATION = {"key": "taskop.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}


def manifests(namespace: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = parse_spec(
        {
            "image": "busybox",
            "action": {"run": {"path": "sh", "args": ["-c", "echo hi"]}},
            "podTemplate": {"nodeSelector": NODE, "tolerations": [TOLERATION]},
        }
    )
    executor = build_job(name, namespace, str(uuid.uuid4()), spec, JobSettings())
    executor["metadata"].pop("ownerReferences")  # no Task behind these Jobs
    plain = copy.deepcopy(executor)
    plain["metadata"]["name"] = f"{name}-plain"
    pod = plain["spec"]["template"]["spec"]
    pod.pop("initContainers")
    pod.pop("volumes")
    container = pod["containers"][0]
    container.pop("volumeMounts")
    container["command"] = ["sh", "-c", "echo hi"]
    plain["spec"]["template"]["metadata"].pop("annotations")
    return executor, plain


def time_job(api: client.ApiClient, namespace: str, job: dict[str, Any]) -> float:
    """Seconds from creating ``job`` to its pod Succeeded (seen by a watch started before)."""
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    name = job["metadata"]["name"]
    done = threading.Event()
    end: list[float] = []

    def follow() -> None:
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_pod,
            namespace,
            label_selector=f"job-name={name}",
            timeout_seconds=120,
        ):
            if event["object"].status.phase in ("Succeeded", "Failed"):
                end.append(time.monotonic())
                if event["object"].status.phase == "Failed":
                    end.append(float("nan"))
                w.stop()
        done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.3)  # the watch is established
    start = time.monotonic()
    batch.create_namespaced_job(namespace, job)
    done.wait(130)
    if not end or len(end) > 1:
        raise SystemExit(f"job {name} did not succeed")
    batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    return end[0] - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--kubeconfig", default=str(Path.home() / ".cache/taskop/cluster/kubeconfig")
    )
    args = parser.parse_args()
    config.load_kube_config(args.kubeconfig)
    api = client.ApiClient()
    core = client.CoreV1Api(api)
    namespace = f"bench-executor-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    times: dict[str, list[float]] = {"executor": [], "plain": []}
    try:
        for i in range(args.runs):
            executor, plain = manifests(namespace, f"run{i}")
            times["executor"].append(time_job(api, namespace, executor))
            times["plain"].append(time_job(api, namespace, plain))
            print(
                f"run {i + 1}/{args.runs}: executor {times['executor'][-1]:.2f}s,"
                f" plain {times['plain'][-1]:.2f}s",
                file=sys.stderr,
            )
    finally:
        core.delete_namespace(namespace)
    med = {k: statistics.median(v) for k, v in times.items()}
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    report = ROOT / "bench" / "results" / f"executor-overhead-{stamp}.md"
    command = f".venv/bin/python -m bench.executor_overhead --runs {args.runs}"
    overhead = med["executor"] - med["plain"]
    rows = "".join(
        f"| {k} | {len(v)} | {med[k]:.2f} | {min(v):.2f} | {max(v):.2f} |\n"
        for k, v in times.items()
    )
    report.write_text(
        f"# In-pod executor: pod start overhead ({stamp} UTC)\n\n"
        f"Command: `{command}` on the real node (containerd + runc), alternating runs.\n"
        "Time: Job created → pod Succeeded, seen by the client's watch.\n\n"
        "| pod | runs | median s | min s | max s |\n|---|---|---|---|---|\n"
        f"{rows}\n"
        f"Overhead of the executor (median difference): **{overhead:.2f} s** per pod"
        f" (ratio {med['executor'] / med['plain']:.2f} to the plain pod).\n"
    )
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
