"""`kubectl task`: a Task's result, logs, completion, cancellation and description in one word.

Installed with the package as the ``kubectl-task`` entry point, which kubectl finds on PATH as a
plugin. It uses the user's kubeconfig (``--kubeconfig``, ``--context``, ``-n``), as kubectl does,
and answers errors as kubectl does: ``Error from server (NotFound): …`` and exit code 1.

    kubectl task result NAME        the result, verbatim (exit 1 if the Task has not succeeded)
    kubectl task logs NAME [-f]     the task container's log, the pod found through the status
    kubectl task wait NAME          exit 0 on success; non-zero with the failure reason
    kubectl task cancel NAME        ask taskop to cancel it (spec.cancelled)
    kubectl task describe NAME      state, reason, timings, node, callback and conditions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from taskop.domain.jobs import CONTAINER_NAME
from taskop.domain.urls import redact_url, redact_urls

GROUP, VERSION, PLURAL = "taskop.dev", "v1alpha1", "tasks"
EXIT_FAILED = 1
"""kubectl's exit code for every error; `wait` uses it for a failed Task too."""
EXIT_TIMEOUT = 2
Obj = dict[str, Any]


class TaskError(Exception):
    """Printed as ``error: <message>``, exit 1, as kubectl prints client-side errors."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl task", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="path to the kubeconfig file")
    parser.add_argument("--context", help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("result", help="print the result of a succeeded Task").add_argument("name")
    logs = commands.add_parser("logs", help="print the task container's log")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream it until it ends")
    wait = commands.add_parser("wait", help="wait for completion: exit 0 on success")
    wait.add_argument("name")
    wait.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    commands.add_parser("cancel", help="cancel a Task").add_argument("name")
    commands.add_parser("describe", help="show a Task in a human layout").add_argument("name")
    return parser


async def _api(args: argparse.Namespace) -> tuple[client.ApiClient, str]:
    await config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    namespace = args.namespace
    if not namespace:
        contexts, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        chosen = next((c for c in contexts if c["name"] == args.context), None)
        context = (chosen if args.context else active) or {}
        namespace = (context.get("context") or {}).get("namespace") or "default"
    return client.ApiClient(), str(namespace)


async def _task(api: client.ApiClient, namespace: str, name: str) -> Obj:
    task: Obj = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return task


def _completed(task: Obj) -> bool:
    return (task.get("status") or {}).get("state") in ("Completed", "Resolving")


async def result(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> int:
    task = await _task(api, namespace, args.name)
    status = task.get("status") or {}
    if not _completed(task):
        raise TaskError(f'task "{args.name}" is {status.get("state") or "Pending"}: no result yet')
    if status.get("failed"):
        raise TaskError(f'task "{args.name}" failed: {status.get("failureReason")}')
    sys.stdout.write(str(status.get("result") or ""))
    return 0


async def logs(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> int:
    task = await _task(api, namespace, args.name)
    pod = (task.get("status") or {}).get("podName")
    if not pod:
        raise TaskError(f'task "{args.name}" has no pod yet (state {_state(task)})')
    core = client.CoreV1Api(api)
    if args.follow:
        resp: Any = await core.read_namespaced_pod_log(
            pod, namespace, container=CONTAINER_NAME, follow=True, _preload_content=False
        )
        async for chunk in resp.content.iter_any():
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return 0
    text = await core.read_namespaced_pod_log(pod, namespace, container=CONTAINER_NAME)
    sys.stdout.write(text)
    return 0


async def wait_for(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> int:
    custom = client.CustomObjectsApi(api)

    async def until_done() -> Obj:
        while True:
            task = await _task(api, namespace, args.name)
            if _completed(task):
                return task
            try:
                async with watch.Watch() as w:
                    async for event in w.stream(
                        custom.list_namespaced_custom_object,
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        field_selector=f"metadata.name={args.name}",
                        resource_version=task["metadata"]["resourceVersion"],
                        timeout_seconds=60,
                    ):
                        if event["type"] == "DELETED":
                            raise TaskError(f'task "{args.name}" was deleted before it completed')
                        if _completed(event["object"]):
                            return dict(event["object"])
            except client.ApiException as e:
                if e.status != 410:  # Gone: the API server's watch window moved on; read again
                    raise

    try:
        task = await asyncio.wait_for(until_done(), args.timeout)
    except TimeoutError:
        print(f'error: timed out waiting for task "{args.name}" to complete', file=sys.stderr)
        return EXIT_TIMEOUT
    status = task.get("status") or {}
    if status.get("failed"):
        print(f'task "{args.name}" failed: {status.get("failureReason")}', file=sys.stderr)
        return EXIT_FAILED
    print(f"task.taskop.dev/{args.name} succeeded")
    return 0


async def cancel(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> int:
    await client.CustomObjectsApi(api).patch_namespaced_custom_object(  # type: ignore[call-arg]
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        args.name,
        {"spec": {"cancelled": True}},
        _content_type="application/merge-patch+json",
    )
    print(f"task.taskop.dev/{args.name} cancelled")
    return 0


def _state(task: Obj) -> str:
    return str((task.get("status") or {}).get("state") or "Pending")


async def describe(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> int:
    task = await _task(api, namespace, args.name)
    spec, status = task.get("spec") or {}, task.get("status") or {}
    rows = [
        ("Name", task["metadata"]["name"]),
        ("Namespace", namespace),
        ("Guid", spec.get("guid") or task["metadata"]["name"]),
        ("Domain", spec.get("domain") or "taskop"),
        ("State", _state(task)),
        ("Failed", str(bool(status.get("failed"))).lower() if _completed(task) else ""),
        ("Reason", status.get("failureReason") or ""),
        ("Created", status.get("createdAt") or task["metadata"].get("creationTimestamp", "")),
        ("Updated", status.get("updatedAt") or ""),
        ("Completed", status.get("firstCompletedAt") or ""),
        ("Node", status.get("cellId") or ""),
        ("Job", status.get("jobName") or ""),
        ("Pod", status.get("podName") or ""),
        ("Result", _short(status.get("result") or "")),
    ]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{value}")
    callback = status.get("callback") or {}
    if spec.get("completionCallbackUrl"):
        print(f"{'Callback:':<{width}}{redact_url(spec['completionCallbackUrl'])}")
        attempts = callback.get("attempts", 0)
        print(f"  {'Attempts:':<{width - 2}}{attempts}")
        if callback.get("lastError"):
            print(f"  {'Last error:':<{width - 2}}{redact_urls(callback['lastError'])}")
    print("Conditions:")
    print(f"  {'Type':<10} {'Status':<7} {'Reason':<18} {'Since':<21} Message")
    for c in status.get("conditions") or ():
        print(
            f"  {c.get('type', ''):<10} {c.get('status', ''):<7} {c.get('reason', ''):<18}"
            f" {c.get('lastTransitionTime', ''):<21} {c.get('message', '')}"
        )
    return 0


def _short(text: str, limit: int = 200) -> str:
    one_line = text.replace("\n", "\\n")
    return one_line if len(one_line) <= limit else one_line[:limit] + f"… ({len(text)} bytes)"


COMMANDS = {
    "result": result,
    "logs": logs,
    "wait": wait_for,
    "cancel": cancel,
    "describe": describe,
}


async def _run(args: argparse.Namespace) -> int:
    api, namespace = await _api(args)
    async with api:
        return await COMMANDS[args.command](api, namespace, args)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        code = asyncio.run(_run(args))
    except ApiException as e:
        print(_server_error(e, args), file=sys.stderr)
        code = EXIT_FAILED
    except (TaskError, config.ConfigException) as e:
        print(f"error: {e}", file=sys.stderr)
        code = EXIT_FAILED
    sys.exit(code)


def _server_error(e: ApiException, args: argparse.Namespace) -> str:
    """kubectl's form: ``Error from server (NotFound): tasks.taskop.dev "x" not found``."""
    try:
        status = json.loads(e.body or "{}")
    except ValueError:
        status = {}
    reason = status.get("reason") or e.reason or "Unknown"
    message = status.get("message") or f'{PLURAL}.{GROUP} "{args.name}": {e.reason}'
    return f"Error from server ({reason}): {message}"
