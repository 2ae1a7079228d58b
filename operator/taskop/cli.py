"""``taskop run``: the operator (and its APIs: BBS, Glance, taskstore) against the current
kubeconfig.

``taskop bbs`` serves the APIs alone, without the reconciler (Job-run tasks are
then created but not run until an operator runs somewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import signal
import socket
import sys

import kopf
import uvloop

from taskop import metrics
from taskop.kube.feed import TaskFeed, doors
from taskop.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    run.add_argument("--namespace", help="watch only this namespace (default: all)")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument("--log-format", choices=["json", "plain"], default="json")
    run.add_argument(
        "--peering",
        metavar="NAME",
        help="hot standby: coordinate through the kopf peering object NAME (ClusterKopfPeering, "
        "or KopfPeering with --namespace); only the highest (random) priority runs. "
        "Default: standalone",
    )
    bbs = sub.add_parser(
        "bbs", help="serve only the APIs (BBS, Glance, taskstore, as enabled), no reconciler"
    )
    bbs.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    bbs.add_argument("--namespace", help="namespace of the BBS tasks (TASKOP_BBS_NAMESPACE)")
    bbs.add_argument("--verbose", action="store_true", help="debug logging")
    bbs.add_argument("--log-format", choices=["json", "plain"], default="json")
    return parser


async def serve_doors(
    settings: Settings, kubeconfig: str | None, feed: TaskFeed | None = None
) -> None:
    """The enabled APIs (BBS, Glance, taskstore) until cancelled, with their own Kubernetes
    client, their Tasks from ``feed`` (the reconciler's; without one, a feed of their own); when
    one stops (e.g. its port is taken), the others are stopped and its error raised."""
    from taskop.kube.client import Kube, load_api_client

    servers = []
    kube = Kube(await load_api_client(kubeconfig))
    if feed is None:
        feed = TaskFeed.for_settings(settings, reconciler=False)
        servers.append(asyncio.create_task(feed.run(kube), name="taskop-tasks"))
    try:
        enabled = doors(settings)
        if "bbs" in enabled:
            from taskop.bbs.app import serve as serve_bbs

            servers.append(asyncio.create_task(serve_bbs(settings, kube, feed), name="taskop-bbs"))
        if "glance" in enabled:
            from taskop.glance.app import serve as serve_glance

            servers.append(
                asyncio.create_task(serve_glance(settings, kube, feed), name="taskop-glance")
            )
        if "taskstore" in enabled:
            from taskop.taskstore.app import serve as serve_taskstore

            servers.append(
                asyncio.create_task(serve_taskstore(settings, kube, feed), name="taskop-taskstore")
            )
        if servers:
            done, _ = await asyncio.wait(servers, return_when=asyncio.FIRST_COMPLETED)
            for server in done:
                server.result()
    finally:
        for server in servers:
            server.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
        await kube.close()


async def run_bbs_only(settings: Settings, kubeconfig: str | None) -> None:
    """`serve_doors` until SIGINT or SIGTERM."""
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main_task.cancel)
    try:
        await serve_doors(settings, kubeconfig)
    except asyncio.CancelledError:
        logging.getLogger("taskop.bbs").info("APIs stopped")


async def run(settings: Settings, kubeconfig: str | None, peering: str | None = None) -> None:
    from taskop.reconciler.handlers import registry

    namespaces = [settings.namespace] if settings.namespace else []
    feed = TaskFeed.for_settings(settings, reconciler=True)  # one Task watch for all (feed.py)
    memo = kopf.Memo(settings=settings, kubeconfig=kubeconfig, feed=feed)
    priority = random.randint(1, 2**30) if peering else 0  # distinct: one replica runs
    identity = f"taskop-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    if peering:
        memo["peering"] = {"name": peering, "identity": identity, "priority": priority}
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            standalone=peering is None,
            peering_name=peering,
            priority=priority,
            identity=identity,  # type: ignore[arg-type]  # kopf.Identity is a NewType of str
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=memo,
            liveness_endpoint=(
                f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
            ),
        ),
        name="taskop-operator",
    )
    metrics_runner = (
        await metrics.serve(settings.metrics_listen_address, settings.metrics_port)
        if settings.metrics_port
        else None
    )
    apis: asyncio.Task[None] | None = None
    if doors(settings):
        apis = asyncio.create_task(serve_doors(settings, kubeconfig, feed), name="taskop-apis")

        async def stop_apis(**_: object) -> None:
            # In kopf's cleanup, so that kopf does not wait for the server's tasks as hung ones.
            if apis is not None:
                apis.cancel()
                await asyncio.gather(apis, return_exceptions=True)

        kopf.on.cleanup(registry=registry, id="stop_apis")(stop_apis)
        # kopf returns when signalled (its cleanup stops the APIs); the APIs end by themselves
        # only by failing (e.g. its port is taken): then the operator is stopped and it raises.
        await asyncio.wait({operator, apis}, return_when=asyncio.FIRST_COMPLETED)
        if apis.done() and not apis.cancelled() and not operator.done():
            operator.cancel()
            await asyncio.gather(operator, return_exceptions=True)
            apis.result()
            raise RuntimeError("the APIs stopped unexpectedly")
    try:
        await operator
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if apis is not None and not apis.done():
            apis.cancel()
            await asyncio.gather(apis, return_exceptions=True)


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
    if not args.verbose:
        # kopf's per-handler and per-activity lines ("Handler 'x' succeeded.", "Activity 'y'
        # succeeded.", authentication steps) for every event are noise, and cost CPU at scale:
        # debug only. Its warnings and errors stay.
        for name in ("kopf.objects", "kopf.activities", "kopf._core.engines.activities"):
            logging.getLogger(name).setLevel(logging.WARNING)
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    # uvloop, as kopf's own CLI runs (kopf._kits.loops.proper_loop): the operator's CPU is
    # mostly its event path (watch streams, TLS, aiohttp), which uvloop runs in C.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if args.command == "bbs":
            runner.run(run_bbs_only(settings, kubeconfig))
        else:
            runner.run(run(settings, kubeconfig, args.peering))


if __name__ == "__main__":
    main()
