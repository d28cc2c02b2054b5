"""``sftp check|pull|push``: the OEM's SFTP server."""
from __future__ import annotations

import json

from .args import client_context, command, group, store_context
from .show import EXIT_OK, _print_table


def cmd_sftp(args, settings) -> int:
    from dealersync.services import jobs
    if args.sub == "check":
        with client_context(args, settings) as ctx:
            info = ctx.sftp().check()
        print(json.dumps(info, ensure_ascii=False) if args.json else
              "\n".join(f"{k:12s} {v}" for k, v in info.items()))
        return EXIT_OK
    settings.require("dealer_code")   # before the store is touched
    with client_context(args, settings) as ctx:
        ctx.sftp()
    with store_context(args, settings) as ctx:
        if args.sub == "pull":
            results = jobs.sftp_pull(ctx)
            rows = [{"file": r["file"], "size": r["size"], "status": (r["ingest"] or {}).get("status"),
                     "rows_read": (r["ingest"] or {}).get("rows_read"),
                     "rows_quarantined": (r["ingest"] or {}).get("rows_quarantined")} for r in results]
        else:
            results = rows = jobs.sftp_push(ctx, args.files)
    if args.json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False, default=str))
    else:
        _print_table(rows, list(rows[0]) if rows else ["file"])
    return EXIT_OK


def register(sub) -> None:
    fs = group(sub, "sftp", "the OEM's SFTP server: check, pull drops, push reports")
    command(fs, "check", cmd_sftp, "connect, verify the pinned host key, list the remote root", json=True)
    command(fs, "pull", cmd_sftp, "download new stable drops and ingest them", json=True)
    x = command(fs, "push", cmd_sftp, "upload reports (default: everything in the outbox) to /inbound/<dealer>/",
                json=True)
    x.add_argument("files", nargs="*")
