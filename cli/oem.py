"""The OEM portal: ``oem check``, ``claims`` (list, show, submit, resubmit, poll, deadlines),
``surveys push``, ``report csi`` (the other reports join the ``report`` group from ``cli/worklists.py``)
and ``sanbao alerts``."""
from __future__ import annotations

import json
import re

from dealersync.errors import ConfigurationError

from .args import client_context, command, group, store_context
from .show import EXIT_OK, _print_table


def cmd_oem(args, settings) -> int:
    with client_context(args, settings) as ctx:
        info = ctx.portal.check()
    print(json.dumps(info) if args.json else "\n".join(f"{k:16s} {v}" for k, v in info.items()))
    return EXIT_OK


def cmd_claims(args, settings) -> int:
    from dealersync.services import claims, jobs
    if args.sub == "list" and getattr(args, "xlsx", None):
        from dealersync.cli import worklists
        return worklists.claims_xlsx(args, settings)
    if args.sub in ("list", "show", "deadlines"):
        with store_context(args, settings) as ctx, ctx.engine.begin() as conn:
            if args.sub == "list":
                rows = claims.claims_table(conn, args.status)
                cols = ["claim_no", "ro_number", "local_status", "oem_status", "oem_status_raw", "submission_count",
                        "claimed_amount", "to_be_paid", "deadline"]
            elif args.sub == "deadlines":
                rows = claims.approaching_deadline(conn, ctx.today(), args.days or settings.claim_deadline_warning_days)
                cols = ["claim_no", "ro_number", "local_status", "deadline", "days_left"]
            else:
                doc = claims.show_claim(conn, args.claim)
                if doc is None:
                    raise ConfigurationError(f"no claim {args.claim}")
                if args.json:
                    print(json.dumps(doc, ensure_ascii=False, default=str))
                    return EXIT_OK
                for k in ("claim_no", "ro_number", "vin", "master_id", "local_status", "oem_status", "oem_status_raw",
                          "submission_count", "oem_claim_number", "claimed_amount", "to_be_paid", "settlement_date",
                          "deadline", "last_error"):
                    print(f"{k:18s} {'' if doc[k] is None else doc[k]}")
                if doc["errors"]:
                    print("\nerrors")
                    _print_table(doc["errors"], ["ErrorCode", "FieldPath", "Message"])
                print("\nsubmissions")
                _print_table(doc["submissions"], ["submission_count", "bodid", "state", "http_status", "attempts",
                                                  "sent_at", "acked_at"])
                print("\nOEM status history")
                _print_table(doc["statuses"], ["submission_count", "status_code", "status_raw", "to_be_paid", "updated_at"])
                return EXIT_OK
        if args.json:
            for r in rows:
                print(json.dumps(r, ensure_ascii=False, default=str))
        else:
            _print_table(rows, cols)
        return EXIT_OK
    with client_context(args, settings) as ctx:
        ctx.portal   # an unset OEM identifier stops here, before any claim is touched
    with store_context(args, settings) as ctx:
        if args.sub == "submit":
            out = jobs.claims_submit(ctx, workers=args.workers)
        elif args.sub == "poll":
            out = jobs.claims_poll(ctx)
        else:  # resubmit
            out = claims.resubmit(ctx.engine, args.claim)
            out.update(jobs.claims_submit(ctx, workers=1))
    print(json.dumps(out, default=str, ensure_ascii=False) if args.json else
          "\n".join(f"{k:22s} {v}" for k, v in out.items()))
    return EXIT_OK


def cmd_surveys(args, settings) -> int:
    from dealersync.services import jobs
    with client_context(args, settings) as ctx:
        ctx.portal
    with store_context(args, settings) as ctx:
        out = jobs.surveys_push(ctx)
    print(json.dumps(out) if args.json else "\n".join(f"{k:10s} {v}" for k, v in out.items()))
    return EXIT_OK


def cmd_report(args, settings) -> int:
    from dealersync.services import jobs
    if not re.fullmatch(r"\d{4}-\d{2}", args.month or ""):
        raise ConfigurationError(f"--month {args.month!r}: expected YYYY-MM")
    settings.require("oem_dealer_number")
    if not args.no_upload:
        with client_context(args, settings) as ctx:
            ctx.portal
    with store_context(args, settings) as ctx:
        out = jobs.csi_report(ctx, args.month, upload=not args.no_upload)
    if args.json:
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print("\n".join(f"{k:12s} {csi_upload_words(v) if k == 'upload' else v}" for k, v in out.items()))
    return EXIT_OK


def csi_upload_words(up: dict) -> str:
    """The CSI report's upload answer in words (not a dict): accepted with its id, already sent, refused."""
    rid = f"，报表编号 {up['reportId']}" if up.get("reportId") else ""
    if up.get("status") == "already uploaded":
        return f"厂家门户此前已接收{rid}；本次未重复上传。"
    if up.get("status") in (200, 201):
        return f"厂家门户已接收{rid}。"
    return f"厂家门户拒收（HTTP {up.get('status')}），见 dealersync 日志。"


def cmd_sanbao(args, settings) -> int:
    from dealersync.services import jobs
    with store_context(args, settings) as ctx:
        rows = jobs.sanbao_alerts(ctx)
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    else:
        _print_table(rows, ["vin", "rule", "message"])
    return EXIT_OK


def register(sub):
    """``sanbao``, ``oem``, ``claims``, ``surveys`` and ``report``; returns the ``report`` group."""
    sbs = group(sub, "sanbao", "三包 monitor")
    command(sbs, "alerts", cmd_sanbao, "VINs at a 三包 threshold", date="", json=True)

    command(group(sub, "oem", "the OEM portal"), "check", cmd_oem,
            "get a token and read the labor-operation code table", json=True)

    cls_ = group(sub, "claims", "warranty claims to the OEM portal")
    x = command(cls_, "list", cmd_claims, "claims with their local and OEM status")
    x.add_argument("--status", help="a local or OEM status (QUEUED, VALIDATION_FAILED, RETURNED, SETTLED...)")
    x.add_argument("--json", action="store_true")
    x.add_argument("--xlsx", help="write the claims' errors as a work list (file, row, column, value, reason)")
    x = command(cls_, "show", cmd_claims, "one claim: errors, submissions (BODIDs) and its OEM status history")
    x.add_argument("claim")
    x.add_argument("--json", action="store_true")
    x = command(cls_, "submit", cmd_claims, "validate new claims and send every queued one (exactly once)",
                date="today, for the claim window (default today)")
    x.add_argument("--workers", type=int, default=4)
    x.add_argument("--json", action="store_true")
    x = command(cls_, "resubmit", cmd_claims, "send a RETURNED claim again, corrected, with submission count + 1")
    x.add_argument("claim")
    x.add_argument("--json", action="store_true")
    command(cls_, "poll", cmd_claims, "read the portal's status feed", json=True)
    x = command(cls_, "deadlines", cmd_claims, "claims not yet accepted whose window is closing", date="")
    x.add_argument("--days", type=int)
    x.add_argument("--json", action="store_true")

    command(group(sub, "surveys", "CSI survey results to the OEM"), "push", cmd_surveys,
            "send new survey results (masked mobile, shareable customers only)", json=True)

    rps = group(sub, "report", "reports to the OEM")
    x = command(rps, "csi", cmd_report, "the monthly CSI report: XLSX, uploaded to the portal (and SFTP when set)")
    x.add_argument("--month", required=True, help="YYYY-MM")
    x.add_argument("--no-upload", action="store_true")
    x.add_argument("--json", action="store_true")
    return rps
