"""``crm check|pull|push`` and ``followups`` (the day's follow-up tasks, the information officer's list)."""
from __future__ import annotations

import json
import sys

from dealersync.privacy import mask_text

from .args import client_context, command, group, store_context
from .show import EXIT_OK, _print_table


def cmd_crm(args, settings) -> int:
    from dealersync.services import jobs
    if args.sub == "check":
        with client_context(args, settings) as ctx:
            info = ctx.crm.check()
        print(json.dumps(info) if args.json else "\n".join(f"{k:16s} {v}" for k, v in info.items()))
        return EXIT_OK
    with client_context(args, settings) as ctx:
        ctx.crm   # an unset CRM URL or token stops here, before the store is touched
    with store_context(args, settings) as ctx:
        if args.sub == "pull":
            out = jobs.crm_pull(ctx, modified_since=args.since, stateless=bool(args.since))
            rows = [{"feed": k, **v} for k, v in out.items()]
        else:
            out = jobs.crm_push(ctx)
            rows = [{"what": "contacts", **{k: v for k, v in out["contacts"].items() if k != "error_codes"}},
                    {"what": "tasks", **{k: v for k, v in out["tasks"].items() if k != "error_codes"}}]
    if args.json:
        print(json.dumps(out, default=str))
    else:
        _print_table(rows, list(rows[0]))
        if args.sub == "push":
            p = out["tasks_planned"]
            print(f"tasks planned: {p['created']} new, {p['updated']} updated, {p['repointed']} re-pointed; "
                  f"{out['requests']} request(s) sent")
    return EXIT_OK


def cmd_followups(args, settings) -> int:
    from dealersync.services import jobs
    from dealersync.services.followups import due_list, write_xlsx
    with store_context(args, settings) as ctx:
        day = ctx.today()
        jobs.plan_followups(ctx)
        with ctx.engine.begin() as conn:
            df = due_list(conn, day)
    if args.xlsx:
        write_xlsx(df, args.xlsx, day, unmasked=args.unmasked)
        print(f"{len(df)} task(s) for {day} written to {args.xlsx}", file=sys.stderr)
    else:
        rows = df.assign(mobile=df["primary_mobile"].map(lambda v: v if args.unmasked or not isinstance(v, str)
                                                         else mask_text(v))).to_dict("records")
        _print_table(rows, ["type", "due_date", "overdue", "name", "mobile", "related_document", "assignee"])
    return EXIT_OK


def register(sub) -> None:
    cs = group(sub, "crm", "the CRM: check, pull leads/contacts/activities, push customers and tasks")
    command(cs, "check", cmd_crm, "connect and authenticate", json=True)
    x = command(cs, "pull", cmd_crm, "pull the change feeds from the watermarks", json=True)
    x.add_argument("--since", help="ISO time: a stateless re-read from then (watermarks untouched)")
    command(cs, "push", cmd_crm, "push changed master customers and the day's follow-up tasks", json=True,
            date="the day whose tasks to plan (default today)")

    fu = command(sub, "followups", cmd_followups, "the day's follow-up tasks (the information officer's list)",
                 date="YYYY-MM-DD (default today)")
    fu.add_argument("--xlsx", help="write the list as an XLSX workbook")
    fu.add_argument("--unmasked", action="store_true", help="show mobiles in clear")
