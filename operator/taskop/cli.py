"""``taskop run``: the operator (and the BBS compatible API) against the current kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
    return parser


async def run(settings: Settings, kubeconfig: str | None) -> None:
    from taskop.reconciler.handlers import registry

    namespaces = [settings.namespace] if settings.namespace else []
    await kopf.operator(
        registry=registry,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        memo=kopf.Memo(settings=settings, kubeconfig=kubeconfig),
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
        ),
    )


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        sys.exit(f"taskop: {e}")
    if args.namespace:
        settings = settings.replace(namespace=args.namespace)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
        log_refkey="object",
    )
    logging.getLogger("taskop").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(run(settings, args.kubeconfig or os.environ.get("KUBECONFIG")))


if __name__ == "__main__":
    main()
