"""Commands for the work lists and the reports (issue #19 items 3-4; #16 item 2: listings masked unless
``--unmasked``): ``quarantine list [--xlsx F] [--unmasked]``, ``quarantine replay F.xlsx``,
``value-issues list [--xlsx F] [--unmasked]``, ``claims list --status S --xlsx F`` and
``report salesday|rvweek|complaints|maintenance|showroom``."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from dealersync.schemas.profiles import load_profiles
from dealersync.services import jobs, worklists
from dealersync.services.replay import replay_workbook
from dealersync.services.reports.run import REPORTS, period_for, upload_words
from dealersync.services.xlsx import write_workbook

from .args import store_context
from .show import EXIT_OK, _print_table

COLS = ["source_file", "row_number", "column", "shown_value", "reason", "reason_code"]


@contextlib.contextmanager
def _conn(args, settings):
    with store_context(args, settings) as ctx, ctx.engine.connect() as conn:
        yield conn


def _emit(args, rows: list[dict], sheets, what: str) -> int:
    if args.xlsx:
        write_workbook(args.xlsx, sheets, what)
        print(f"{len(rows)} 条{what}已写入 {args.xlsx}", file=sys.stderr)
    elif args.json:
        for r in rows:   # the value as shown (masked unless --unmasked); the raw row only in clear
            out = {k: v for k, v in r.items() if k not in ("raw_row", "raw_value")}
            if getattr(args, "unmasked", False):
                out["raw_value"], out["raw_row"] = r.get("raw_value"), r.get("raw_row")
            print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        _print_table(rows, COLS)
    return EXIT_OK


def cmd_quarantine_list(args, settings) -> int:
    profiles = load_profiles(settings.profile_files)
    with _conn(args, settings) as conn:
        rows = worklists.quarantine_rows(conn, file=args.file, limit=args.limit, unmasked=args.unmasked,
                                         profiles=profiles)
    sheets = [worklists.worklist_sheet("隔离行", "隔离行清单", rows, "隔离行"),
              *worklists.correction_sheets(rows, unmasked=args.unmasked)]
    return _emit(args, rows, sheets, "隔离行")


def cmd_quarantine_replay(args, settings) -> int:
    with store_context(args, settings) as ctx:
        out = replay_workbook(ctx.engine, Path(args.workbook), load_profiles(settings.profile_files))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    elif out["status"] == "skipped":
        print(f"{out['file']}: {out['message']}")
    else:
        for feed, s in out["feeds"].items():
            print(f"{feed}: 重新校验 {s['rows']} 行，入库 {s['loaded']} 行，仍有问题 {s['quarantined']} 行"
                  f"（`dealersync quarantine list` 查看）")
    return EXIT_OK


def cmd_value_issues_list(args, settings) -> int:
    with _conn(args, settings) as conn:
        rows = worklists.value_issue_rows(conn, file=args.file, limit=args.limit, unmasked=args.unmasked,
                                          profiles=load_profiles(settings.profile_files), warnings=not args.issues_only)
    return _emit(args, rows, [worklists.worklist_sheet("值问题", "值问题清单（已置空的值与行规则警告）", rows, "值问题")],
                 "值问题")


def claims_xlsx(args, settings) -> int:
    with _conn(args, settings) as conn:
        rows = worklists.failed_claim_rows(conn, args.status or "VALIDATION_FAILED", load_profiles(settings.profile_files))
    return _emit(args, rows, [worklists.worklist_sheet("索赔问题", f"索赔单问题清单（{args.status or 'VALIDATION_FAILED'}）",
                                                       rows, "索赔问题")], "索赔问题")


def cmd_report_run(args, settings) -> int:
    period = period_for(args.sub, getattr(args, "date", None), week=getattr(args, "week", None),
                        month=getattr(args, "month", None))
    settings.require("dealer_code")   # files and folders are named by it: before the store is touched
    with store_context(args, settings, migrate=True) as ctx:
        out = jobs.report(ctx, args.sub, period, upload=not args.no_upload)
    if args.json:
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print(f"{out['title']} {out['period']}：{out['summary']}\n文件：{out['file']}\n上传：{upload_words(out)}")
    return EXIT_OK


def add_worklist_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--xlsx", help="write the list as an XLSX work list (Chinese reasons, masked values)")
    p.add_argument("--unmasked", action="store_true", help="show personal values in clear")


def register(sub, quarantine_sub, report_sub) -> None:
    """Add the commands to the parsers ``cli/main.py`` builds."""
    x = quarantine_sub.add_parser("replay", help="load a corrected quarantine workbook back (same checks, original lineage)")
    x.add_argument("workbook")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_quarantine_replay)
    vi = sub.add_parser("value-issues", help="values blanked at ingestion and row-rule warnings")
    vs = vi.add_subparsers(dest="sub", required=True)
    x = vs.add_parser("list", help="list value issues with the reason in Chinese")
    x.add_argument("--file")
    x.add_argument("--limit", type=int)
    x.add_argument("--issues-only", action="store_true", help="without the row-rule warnings")
    x.add_argument("--json", action="store_true")
    add_worklist_options(x)
    x.set_defaults(fn=cmd_value_issues_list)
    for name, d in REPORTS.items():
        x = report_sub.add_parser(name, help=f"{d.title}{'（上传厂家）' if d.to_oem else '（店内）'}")
        if d.period == "date":
            x.add_argument("--date", help="YYYY-MM-DD (default yesterday)")
        if d.period in ("week",) or name == "showroom":
            x.add_argument("--week", help="YYYY-Www (default last week)")
        if d.period == "month" or name == "showroom":
            x.add_argument("--month", help="YYYY-MM (default last month)")
        x.add_argument("--no-upload", action="store_true")
        x.add_argument("--json", action="store_true")
        x.set_defaults(fn=cmd_report_run)
