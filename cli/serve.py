"""Prefect: ``backfill`` (a flow once per day of a window) and ``serve`` (every deployment of
``prefect.yaml`` from this process). Both migrate the store at start-up."""
from __future__ import annotations

import contextlib
import json
import os
import sys

from dealersync.services.context import parse_day, upgrade_store

from .args import command
from .show import EXIT_ERROR, EXIT_OK, _prefect_env


def cmd_backfill(args, settings) -> int:
    from dealersync.flows import deploy
    _prefect_env()
    upgrade_store(settings)   # start-up: the runs' tasks never migrate
    start, end = parse_day(getattr(args, "from"), "--from"), parse_day(args.to, "--to")
    deployment = None
    if os.environ.get("PREFECT_API_URL") and not args.local:
        deployment = args.deployment or f"{args.flow}/{args.flow.replace('_', '-')}"
    from dealersync.flows.common import prefect_api
    from dealersync.processes import exit_on_sigterm
    exit_on_sigterm()
    with prefect_api() if not args.dry_run else contextlib.nullcontext():   # a local server dies with us
        out = deploy.run_backfill(args.flow, start, end, concurrency=args.concurrency, dry_run=args.dry_run,
                                  deployment=deployment, progress=lambda m: print(m, file=sys.stderr, flush=True),
                                  wait=not args.no_wait)
    if args.json:
        print(json.dumps(out, default=str, ensure_ascii=False))
    failed = [r for r in out if r["status"] not in ("Completed", "dry-run")]
    return EXIT_ERROR if failed else EXIT_OK


def cmd_serve(args, settings) -> int:
    """Every deployment of prefect.yaml served from this process, on its schedule, no work pool."""
    _prefect_env()
    from prefect import serve

    from dealersync.flows import deploy
    upgrade_store(settings)   # start-up: the served flows' tasks never migrate
    deployments = deploy.deployments_from_yaml()
    print(f"serving {len(deployments)} deployment(s): " + ", ".join(d.name for d in deployments), file=sys.stderr)
    from dealersync.flows.common import prefect_api
    from dealersync.processes import exit_on_sigterm
    exit_on_sigterm()
    with prefect_api():   # PREFECT_API_URL's server, or a local one that ends with this process
        serve(*deployments, pause_on_shutdown=False)
    return EXIT_OK


def register(sub) -> None:
    x = sub.add_parser("backfill", help="run a flow once per day of a window (stateless, idempotent)")
    x.add_argument("flow", help="push_crm, push_warranty_claims, sanbao_monitor, pull_crm, monthly_csi_report")
    x.add_argument("--from", required=True, help="YYYY-MM-DD")
    x.add_argument("--to", required=True, help="YYYY-MM-DD")
    x.add_argument("--dry-run", action="store_true")
    x.add_argument("--concurrency", type=int, default=1)
    x.add_argument("--deployment", help="flow/deployment to run through (default: <flow>/<flow-with-dashes>)")
    x.add_argument("--local", action="store_true", help="run here even when PREFECT_API_URL is set")
    x.add_argument("--no-wait", action="store_true", help="through a deployment: schedule the runs and return")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_backfill)

    command(sub, "serve", cmd_serve, "serve every deployment of prefect.yaml from this process (no work pool)")
