"""``sandbox crm|portal``: the CRM and OEM portal contracts served on this machine."""
from __future__ import annotations

import sys

from .args import group
from .show import EXIT_OK


def cmd_sandbox(args, settings) -> int:
    if args.sub == "portal":
        from dealersync.sandbox.portal import Clock, PortalFaults, serve
        faults = PortalFaults(rate_per_second=args.rate or 0.0, error_rate=args.error_rate, drop_rate=args.drop_rate,
                              latency_ms=args.latency_ms, expire_rate=args.expire_rate, throttle_rate=args.throttle_rate,
                              token_lifetime=args.token_lifetime)
        clock = Clock(review_after=args.review_after, decide_after=args.decide_after, settle_after=args.settle_after,
                      claim_window_days=args.claim_window_days or settings.claim_window_days)
        db = args.db or str(settings.data_dir / "sandbox-portal.db")
        print(f"sandbox OEM portal on http://127.0.0.1:{args.port}/api/v1 (state in {db}); Ctrl-C stops it",
              file=sys.stderr)
        serve(port=args.port, db=db, faults=faults, clock=clock,
              clients={settings.oem_client_id or "dealersync": settings.oem_client_secret.get_secret_value()
                       if settings.oem_client_secret else "sandbox-secret"})
    if args.sub == "crm":
        from dealersync.sandbox.crm import FaultConfig, serve
        faults = FaultConfig(rate_per_second=args.rate or 0.0, error_rate=args.error_rate, drop_rate=args.drop_rate,
                             latency_ms=args.latency_ms)
        db = args.db or str(settings.data_dir / "sandbox-crm.db")
        print(f"sandbox CRM on http://127.0.0.1:{args.port}/crm/v1 (state in {db}); Ctrl-C stops it", file=sys.stderr)
        serve(port=args.port, db=db, token=settings.crm_token.get_secret_value() if settings.crm_token
              else "sandbox-token", faults=faults)
    return EXIT_OK


def register(sub) -> None:
    sxs = group(sub, "sandbox", "run the sandbox CRM (and later the OEM portal) on this machine")
    x = sxs.add_parser("crm", help="the sandbox CRM")
    x.add_argument("--port", type=int, default=8720)
    x.add_argument("--db", help="state file (default <data_dir>/sandbox-crm.db)")
    x.add_argument("--rate", type=float, help="requests/s before 429")
    x.add_argument("--error-rate", type=float, default=0.0, help="share of 503s")
    x.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped connections")
    x.add_argument("--latency-ms", type=float, default=0.0)
    x.set_defaults(fn=cmd_sandbox)

    x = sxs.add_parser("portal", help="the sandbox OEM portal")
    x.add_argument("--port", type=int, default=8710)
    x.add_argument("--db", help="state file (default <data_dir>/sandbox-portal.db)")
    x.add_argument("--rate", type=float, help="requests/s before 429")
    x.add_argument("--error-rate", type=float, default=0.0)
    x.add_argument("--drop-rate", type=float, default=0.0)
    x.add_argument("--expire-rate", type=float, default=0.0, help="share of requests whose token dies early")
    x.add_argument("--throttle-rate", type=float, default=0.0, help="share of requests answered 429 at random")
    x.add_argument("--token-lifetime", type=int, default=3600)
    x.add_argument("--latency-ms", type=float, default=0.0)
    x.add_argument("--review-after", type=float, default=2.0, help="seconds until UNDER_REVIEW")
    x.add_argument("--decide-after", type=float, default=6.0, help="seconds until the decision")
    x.add_argument("--settle-after", type=float, default=12.0, help="seconds until SETTLED")
    x.add_argument("--claim-window-days", type=int, help="default: the claim_window_days setting (the same as our own check)")
    x.set_defaults(fn=cmd_sandbox)
