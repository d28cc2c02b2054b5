"""The store: ``db upgrade`` (the migrations), ``status`` and ``purge`` (the retention policy)."""
from __future__ import annotations

import json
import os

from dealersync.services.context import upgrade_store

from .args import command, group, store_context
from .show import EXIT_OK, _print_table, _safe_url


def cmd_db_upgrade(args, settings) -> int:
    upgrade_store(settings)
    print(f"store is up to date: {_safe_url(settings.effective_database_url)}")
    return EXIT_OK


def cmd_status(args, settings) -> int:
    from dealersync.services import ops
    from dealersync.services.ingest import pending_files
    with store_context(args, settings) as ctx:
        pending = len(pending_files(ctx.engine, [str(p) for p in settings.effective_drop_dirs], stable_seconds=0))
        with ctx.engine.begin() as conn:
            st = ops.status(conn, ctx.today(), pending, settings.claim_deadline_warning_days)
    if args.json:
        print(json.dumps(st, ensure_ascii=False, default=str))
        return EXIT_OK
    print(f"dealersync status {st['today']}  (store {_safe_url(settings.effective_database_url)})\n")
    _print_table([{"flow": k, "last activity": v or "never"} for k, v in st["last_activity"].items()],
                 ["flow", "last activity"])
    f = st["files"]
    print(f"\nfiles: {f['pending']} pending in the drop folders; "
          + ", ".join(f"{k} {v}" for k, v in f.items() if k != "pending"))
    q = st["quarantine"]
    print(f"quarantine: {q['rows']} row(s)" + (" - " + ", ".join(f"{k} {v}" for k, v in q["top_reasons"].items())
                                              if q["top_reasons"] else "")
          + (f"; {q['rows_of_replaced_loads']} more of replaced loads" if q.get("rows_of_replaced_loads") else ""))
    c = st["claims"]
    print(f"claims: " + ", ".join(f"{k} {v}" for k, v in c["local"].items()) + "; OEM: "
          + (", ".join(f"{k} {v}" for k, v in c["oem"].items()) or "-")
          + f"; {c['approaching_deadline']} within {c['deadline_within_days']} days of their deadline")
    t = st["tasks_due"]
    print(f"tasks due: " + (", ".join(f"{k} {v}" for k, v in t["open"].items()) or "none")
          + f"; {t['overdue']} overdue")
    return EXIT_OK


def cmd_purge(args, settings) -> int:
    from dealersync.services import ops
    r = ops.Retention.from_days(settings.retention_days)
    with store_context(args, settings) as ctx, ctx.engine.begin() as conn:
        rows = ops.purge(conn, ctx.today(), r, dry_run=args.dry_run, actor=os.environ.get("USER", "purge"),
                         confirm=args.yes, now=ctx.clock.real_today())
    if args.json:
        print(json.dumps(rows))
    else:
        _print_table(rows, ["table", "cutoff", "rows", "younger_than_policy", "action"])
    return EXIT_OK


def register(sub) -> None:
    command(group(sub, "db", "store administration"), "upgrade", cmd_db_upgrade, "apply Alembic migrations")


def register_ops(sub) -> None:
    command(sub, "status", cmd_status, "last activity of each flow, files pending, quarantine, claims, tasks due",
            date="", json=True)
    x = command(sub, "purge", cmd_purge, "apply the retention policy (repair records kept at least a year; "
                "customers while a vehicle, order or claim of theirs is kept); never a future --date",
                date="purge as of this day (default today)")
    x.add_argument("--dry-run", action="store_true")
    x.add_argument("--yes", action="store_true", help="confirm deleting rows younger than the default policy")
    x.add_argument("--json", action="store_true")
