"""``taskop run``: the operator (and the BBS compatible API) against the current kubeconfig.

``taskop bbs`` serves the BBS compatible API alone, without the reconciler (Job-run tasks are
then created but not run until an operator runs somewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

import kopf

from taskop.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    run.add_argument("--namespace", help="watch only this namespace (default: all)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument("--log-format", choices=["json", "plain"], default="json")
    bbs = sub.add_parser("bbs", help="serve only the BBS compatible Tasks API (no reconciler)")
    bbs.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    bbs.add_argument("--namespace", help="namespace of the BBS tasks (TASKOP_BBS_NAMESPACE)")
    bbs.add_argument("--verbose", action="store_true", help="debug logging")
    bbs.add_argument("--log-format", choices=["json", "plain"], default="json")
    return parser


async def serve_bbs(settings: Settings, kubeconfig: str | None) -> None:
    """The BBS compatible API until cancelled, with its own Kubernetes client."""
    from taskop.bbs.app import serve
    from taskop.kube.client import Kube, load_api_client

    kube = Kube(await load_api_client(kubeconfig))
    try:
        await serve(settings, kube)
    finally:
        await kube.close()


async def run_bbs_only(settings: Settings, kubeconfig: str | None) -> None:
    """`serve_bbs` until SIGINT or SIGTERM."""
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main_task.cancel)
    try:
        await serve_bbs(settings, kubeconfig)
    except asyncio.CancelledError:
        logging.getLogger("taskop.bbs").info("BBS API stopped")


async def run(settings: Settings, kubeconfig: str | None) -> None:
    from taskop.reconciler.handlers import registry

    namespaces = [settings.namespace] if settings.namespace else []
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(settings=settings, kubeconfig=kubeconfig),
            liveness_endpoint=(
                f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
            ),
        ),
        name="taskop-operator",
    )
    tasks = {operator}
    if settings.bbs_enabled:
        tasks.add(asyncio.create_task(serve_bbs(settings, kubeconfig), name="taskop-bbs"))
    # kopf returns when signalled; the BBS server only ends by failing (e.g. its port is taken).
    # Either way the other one is stopped, and a failure is raised.
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        sys.exit(f"taskop: {e}")
    if args.namespace:
        field = "bbs_namespace" if args.command == "bbs" else "namespace"
        settings = settings.replace(**{field: args.namespace})
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
        log_refkey="object",
    )
    logging.getLogger("taskop").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if args.command == "bbs":
        asyncio.run(run_bbs_only(settings, kubeconfig))
    else:
        asyncio.run(run(settings, kubeconfig))


if __name__ == "__main__":
    main()
