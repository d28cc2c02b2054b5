"""``ingest`` (DMS export files or folders), ``quarantine list`` and ``sample``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dealersync.errors import BadSourceData
from dealersync.privacy import mask_text, render_exception

from .args import command, store_context
from .show import EXIT_BAD_INPUT, EXIT_OK, SUMMARY_COLS, _print_table


def cmd_ingest(args, settings) -> int:
    from dealersync.services.ingest import expand_paths
    from dealersync.services.jobs import ingest_path
    files = expand_paths(args.paths)
    if not files:
        print(f"error: no export files found in {', '.join(args.paths)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    rc = EXIT_OK
    results = []
    with store_context(args, settings) as ctx:
        for f in files:
            try:
                res = ingest_path(ctx, f, feed=args.feed, profile=args.profile, dealer=args.dealer, force=args.force,
                                  progress=None if args.json else _progress)
            except BadSourceData as e:
                print(f"error: {render_exception(e)}", file=sys.stderr)
                rc = EXIT_BAD_INPUT
                continue
            if not args.json and sys.stderr.isatty():
                print(file=sys.stderr)
            if res.status in ("rejected", "failed"):
                print(f"error: {mask_text(res.message)}", file=sys.stderr)
                rc = EXIT_BAD_INPUT
            elif res.status in ("busy", "replaced"):
                print(f"note: {res.file}: {res.message}", file=sys.stderr)
            results.append(res)
            if args.json:
                print(json.dumps(res.to_json(), ensure_ascii=False), flush=True)
    if not args.json:
        _print_table([r.to_json() for r in results], SUMMARY_COLS)
        for r in results:
            for w in r.file_warnings:
                print(f"warning: {r.file}: {w}", file=sys.stderr)
    return rc


def _progress(res) -> None:
    if sys.stderr.isatty():
        print(f"\r{res.file}: {res.rows_read:,} rows read, {res.rows_quarantined:,} quarantined",
              end="", file=sys.stderr, flush=True)


def cmd_quarantine_list(args, settings) -> int:
    """Open quarantined rows, masked unless --unmasked; --xlsx writes the work list and correction sheets."""
    from dealersync.cli import worklists
    return worklists.cmd_quarantine_list(args, settings)


def cmd_sample(args, settings) -> int:
    from dealersync.services.sample import generate
    written = generate(Path(args.out), rows=args.rows, seed=args.seed, profile=args.profile,
                       dealer=args.dealer or settings.dealer_code or "DEMO01")
    for feed, p in written.items():
        print(f"{feed:20s} {p}")
    return EXIT_OK


def register(sub):
    """``ingest``, ``quarantine`` and ``sample``; returns the ``quarantine`` group (``replay`` joins it)."""
    s = command(sub, "ingest", cmd_ingest, "ingest DMS export files or folders")
    s.add_argument("paths", nargs="+")
    s.add_argument("--feed", help="feed name (customers, repair_orders...) when the file name does not say")
    s.add_argument("--profile", help="export profile (dms_a, dms_b or a custom one); default: detect")
    s.add_argument("--dealer", help="dealer code when the file name does not say")
    s.add_argument("--force", action="store_true", help="re-read files already ingested or rejected (e.g. after a profile change); "
                   "the new load replaces the earlier one")
    s.add_argument("--json", action="store_true", help="one JSON object per file on stdout")

    qs = sub.add_parser("quarantine", help="quarantined rows").add_subparsers(dest="sub", required=True)
    ql = command(qs, "list", cmd_quarantine_list, "list quarantined rows with their reasons")
    ql.add_argument("--file", help="only this file (name or path)")
    ql.add_argument("--limit", type=int)
    ql.add_argument("--json", action="store_true")
    ql.add_argument("--xlsx", help="write the work list (and a correction sheet per feed for `quarantine replay`)")
    ql.add_argument("--unmasked", action="store_true", help="show raw values in clear (mobiles, ID numbers, names)")

    s = command(sub, "sample", cmd_sample, "write realistic sample exports with ground truth")
    s.add_argument("--out", required=True)
    s.add_argument("--rows", type=int, default=200, help="number of people (customers)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--profile", default="dms_a", choices=["dms_a", "dms_b"])
    s.add_argument("--dealer")
    return qs
