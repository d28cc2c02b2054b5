"""``dealersync`` command line.

Exit codes: 0 success; 2 bad input (a one-line message naming file, row and column);
1 unexpected error.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from dealersync.errors import BadSourceData, ConfigurationError, DealersyncError
from dealersync.privacy import mask_text, render_exception

from .demo import add_parser as add_demo_parser
from .front import add_parsers as add_front_parsers
from .show import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, SUMMARY_COLS, _print_table, _prefect_env, _safe_url


def _engine(settings):
    from dealersync.store.db import make_engine, upgrade
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return engine


# ------------------------------------------------------------------------------------ commands

def cmd_ingest(args, settings) -> int:
    from dealersync.schemas.profiles import load_profiles

    from dealersync.services.ingest import expand_paths, ingest_file
    engine = _engine(settings)
    profiles = load_profiles(settings.profile_files)
    files = expand_paths(args.paths)
    if not files:
        print(f"error: no export files found in {', '.join(args.paths)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    rc = EXIT_OK
    results = []
    for f in files:
        try:
            res = ingest_file(engine, f, feed=args.feed, profile=args.profile or settings.profile,
                              dealer=args.dealer, profiles=profiles, chunk_rows=settings.chunk_rows,
                              **({"default_dealer": settings.dealer_code} if settings.dealer_code else {}),
                              force=args.force, stale_seconds=settings.load_stale_seconds,
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


def cmd_db_upgrade(args, settings) -> int:
    _engine(settings)
    print(f"store is up to date: {_safe_url(settings.effective_database_url)}")
    return EXIT_OK


def cmd_sftp(args, settings) -> int:
    from dealersync.connectors.sftp import SftpConnector, SftpSettings
    connector = SftpConnector(SftpSettings.from_settings(settings))
    if args.sub == "check":
        info = connector.check()
        print(json.dumps(info, ensure_ascii=False) if args.json else
              "\n".join(f"{k:12s} {v}" for k, v in info.items()))
        return EXIT_OK
    from dealersync.services import sftp_jobs
    settings.require("dealer_code")
    engine = _engine(settings)
    if args.sub == "pull":
        results = sftp_jobs.pull_all(engine, connector, settings)
        rows = [{"file": r["file"], "size": r["size"], "status": (r["ingest"] or {}).get("status"),
                 "rows_read": (r["ingest"] or {}).get("rows_read"),
                 "rows_quarantined": (r["ingest"] or {}).get("rows_quarantined")} for r in results]
    else:
        settings.require("dealer_code")
        files = [Path(f) for f in args.files] or sorted(p for p in settings.outbox.glob("*") if p.is_file())
        results = sftp_jobs.push(engine, connector, files, dealer=settings.dealer_code)
        rows = results
    if args.json:
        for r in results:
            print(json.dumps(r, ensure_ascii=False, default=str))
    else:
        _print_table(rows, list(rows[0]) if rows else ["file"])
    return EXIT_OK


def cmd_resolve_file(args, settings) -> int:
    from dealersync.resolution.filemode import resolve_file
    stats = resolve_file(args.input, args.out,
                         progress=lambda stage, message: print(f"  {message}", file=sys.stderr, flush=True))
    print(json.dumps(stats) if args.json else
          f"{stats['records']:,} records -> {stats['masters']:,} master records in {stats['seconds']} s "
          f"({stats['merge_pairs']:,} merged pairs, {stats['review_pairs']:,} for review, "
          f"{stats['household_pairs']:,} household links); written {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_resolve(args, settings) -> int:
    from dealersync.resolution import service
    from dealersync.store.locks import RESOLVE, job_lock
    engine = _engine(settings)
    with job_lock(engine, RESOLVE, wait_seconds=settings.lock_wait_seconds, stale_seconds=settings.load_stale_seconds), \
            engine.begin() as conn:   # one resolve at a time on a store: a second waits, or stops saying who runs
        stats = service.resolve(conn, full=args.full, precedence=settings.resolution_source_precedence).as_dict()
    if args.json:
        print(json.dumps(stats, default=str))
    else:
        _print_table([{k: v for k, v in stats.items() if k != "timings"}],
                     ["records", "scored_records", "candidate_pairs", "created", "merged", "split", "review_links",
                      "household_links", "masters"])
    return EXIT_OK


def _mask_master(doc: dict) -> dict:
    from dealersync.privacy import mask_text
    def m(v):
        return mask_text(v) if isinstance(v, str) else v
    doc = dict(doc)
    for k in ("id_number", "primary_mobile", "primary_email", "address"):
        doc[k] = m(doc.get(k)) if k != "address" else doc.get(k)
    doc["contacts"] = [{**c, "value": m(c["value"])} for c in doc.get("contacts", [])]
    for a in doc.get("audit", []):
        for k in ("before", "after"):
            a[k] = m(a.get(k))
    return doc


def cmd_master(args, settings) -> int:
    from dealersync.resolution import service
    engine = _engine(settings)
    with engine.begin() as conn:
        if args.sub == "show":
            doc = service.show_master(conn, args.id)
            if doc is None:
                raise ConfigurationError(f"no master {args.id}")
            doc = doc if args.unmasked else _mask_master(doc)
            if args.json:
                print(json.dumps(doc, ensure_ascii=False, default=str))
            else:
                for k in ("master_id", "status", "survivor", "customer_type", "name", "company", "gender",
                          "birth_date", "id_number", "primary_mobile", "primary_email", "address",
                          "marketing_consent", "record_count"):
                    if k in doc:
                        print(f"{k:18s} {'' if doc[k] is None else doc[k]}")
                print("\nsource records (lineage)")
                _print_table(doc["records"], ["id", "source", "source_id", "raw_name", "match_weight", "match_rule",
                                              "model_version", "decided_at"])
                print("\ncontact points")
                _print_table(doc["contacts"], ["kind", "value", "source", "record_id", "last_seen", "is_primary"])
                print(f"\nvehicles: {', '.join(doc['vehicles']) or '-'}\n\naudit")
                _print_table(doc["audit"], ["at", "action", "master_id", "other_ids", "reason", "actor"])
        elif args.sub in ("erase", "export"):
            return _master_personal(conn, args)
        elif args.sub == "link":
            mid = service.force_link(conn, args.records, reason=args.reason, actor=args.actor)
            print(f"linked: master {mid} (a manual decision, kept on every later run)")
        elif args.sub == "split":
            mids = service.force_split(conn, args.records, reason=args.reason, actor=args.actor)
            print(f"split: now {', '.join(mids)} (a manual decision, kept on every later run)")
        elif args.sub == "review":
            if args.decide:
                link_id, decision = args.decide
                service.decide_review(conn, int(link_id), decision, actor=args.actor, reason=args.reason)
                print(f"review {link_id}: {decision}")
                return EXIT_OK
            rows = service.review_queue(conn, limit=args.limit)
            if args.json:
                for r in rows:
                    print(json.dumps(r, ensure_ascii=False, default=str))
            else:
                _print_table(rows, ["id", "weight", "a_source", "a_source_id", "a_name", "a_master", "b_source",
                                    "b_source_id", "b_name", "b_master", "evidence"])
    return EXIT_OK


def _master_personal(conn, args) -> int:
    """``master export ID`` (the customer's data, in clear: their own copy) and ``master erase ID --yes``."""
    from dealersync.store import personal
    if args.sub == "export":
        doc = personal.export_customer(conn, args.id)
        if doc is None:
            raise ConfigurationError(f"no master {args.id}")
        personal.log_export(conn, doc["master_id"], actor=args.actor, reason=args.reason)
        text = json.dumps(doc, ensure_ascii=False, default=str, indent=1)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"master {doc['master_id']}: {len(doc['source_records'])} source record(s) exported to {args.out}",
                  file=sys.stderr)
        else:
            print(text)
        return EXIT_OK
    if not args.yes:
        raise ConfigurationError(f"master erase {args.id}: removes the customer's data from every table; "
                                 "run again with --yes to confirm (export it first with `dealersync master export`)")
    counts = personal.erase_customer(conn, args.id, actor=args.actor, reason=args.reason)
    if counts is None:
        raise ConfigurationError(f"no master {args.id}")
    print(json.dumps(counts) if args.json else
          f"master {args.id} erased: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing left to erase")
          + " (recorded in the master audit; the next `crm push` deletes the CRM contact; erase it in the DMS too)")
    return EXIT_OK


def _crm(settings):
    from dealersync.flows.common import crm_client
    return crm_client(settings)


def _day(v: str | None):
    from datetime import date
    try:
        return date.fromisoformat(v) if v else date.today()
    except ValueError:
        raise ConfigurationError(f"--date {v!r}: expected YYYY-MM-DD") from None


def cmd_crm(args, settings) -> int:
    from dealersync.services import crm_sync
    from dealersync.services.followups import Rules
    client = _crm(settings)
    if args.sub == "check":
        info = client.check()
        print(json.dumps(info) if args.json else "\n".join(f"{k:16s} {v}" for k, v in info.items()))
        return EXIT_OK
    engine = _engine(settings)
    if args.sub == "pull":
        out = crm_sync.pull(engine, client, modified_since=args.since, stateless=bool(args.since))
        rows = [{"feed": k, **v} for k, v in out.items()]
    else:
        out = crm_sync.push(engine, client, _day(args.date), Rules.from_settings(settings))
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
    from dealersync.services import crm_sync
    from dealersync.services.followups import Rules, due_list, write_xlsx
    from dealersync.privacy import mask_text
    engine = _engine(settings)
    day = _day(args.date)
    crm_sync.plan_tasks(engine, day, Rules.from_settings(settings))
    with engine.begin() as conn:
        df = due_list(conn, day)
    if args.xlsx:
        write_xlsx(df, args.xlsx, day, unmasked=args.unmasked)
        print(f"{len(df)} task(s) for {day} written to {args.xlsx}", file=sys.stderr)
    else:
        rows = df.assign(mobile=df["primary_mobile"].map(lambda v: v if args.unmasked or not isinstance(v, str)
                                                         else mask_text(v))).to_dict("records")
        _print_table(rows, ["type", "due_date", "overdue", "name", "mobile", "related_document", "assignee"])
    return EXIT_OK


def cmd_sanbao(args, settings) -> int:
    from dealersync.services.sanbao import alerts
    engine = _engine(settings)
    with engine.begin() as conn:
        rows = alerts(conn, _day(args.date))
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    else:
        _print_table(rows, ["vin", "rule", "message"])
    return EXIT_OK


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


def _oem(settings):
    from dealersync.flows.common import oem_client
    return oem_client(settings)


def cmd_oem(args, settings) -> int:
    info = _oem(settings).check()
    print(json.dumps(info) if args.json else "\n".join(f"{k:16s} {v}" for k, v in info.items()))
    return EXIT_OK


def cmd_claims(args, settings) -> int:
    from dealersync.services import claims
    engine = _engine(settings)
    if args.sub == "list" and getattr(args, "xlsx", None):
        from dealersync.cli import worklists
        return worklists.claims_xlsx(args, settings)
    if args.sub in ("list", "show", "deadlines"):
        with engine.begin() as conn:
            if args.sub == "list":
                rows = claims.claims_table(conn, args.status)
                cols = ["claim_no", "ro_number", "local_status", "oem_status", "oem_status_raw", "submission_count",
                        "claimed_amount", "to_be_paid", "deadline"]
            elif args.sub == "deadlines":
                rows = claims.approaching_deadline(conn, _day(args.date), args.days or settings.claim_deadline_warning_days)
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
    client = _oem(settings)
    if args.sub == "submit":
        out = claims.push(engine, client, _day(args.date), settings.claim_window_days, workers=args.workers)
    elif args.sub == "poll":
        out = claims.poll_status(engine, client)
    else:  # resubmit
        out = claims.resubmit(engine, args.claim)
        out.update(claims.push(engine, client, _day(None), settings.claim_window_days, workers=1))
    print(json.dumps(out, default=str, ensure_ascii=False) if args.json else
          "\n".join(f"{k:22s} {v}" for k, v in out.items()))
    return EXIT_OK


def cmd_surveys(args, settings) -> int:
    from dealersync.services import surveys
    out = surveys.push_surveys(_engine(settings), _oem(settings))
    print(json.dumps(out) if args.json else "\n".join(f"{k:10s} {v}" for k, v in out.items()))
    return EXIT_OK


def cmd_report(args, settings) -> int:
    import re as _re

    from dealersync.services import surveys
    if not _re.fullmatch(r"\d{4}-\d{2}", args.month or ""):
        raise ConfigurationError(f"--month {args.month!r}: expected YYYY-MM")
    settings.require("oem_dealer_number")
    out = surveys.monthly_csi(_engine(settings), None if args.no_upload else _oem(settings), args.month,
                              settings.data_dir / "reports", settings.oem_dealer_number,
                              settings.outbox if settings.sftp_host else None)
    print(json.dumps(out, ensure_ascii=False, default=str) if args.json else
          "\n".join(f"{k:12s} {v}" for k, v in out.items()))
    return EXIT_OK


def cmd_status(args, settings) -> int:
    from dealersync.services import ops
    from dealersync.services.ingest import pending_files
    engine = _engine(settings)
    pending = len(pending_files(engine, [str(p) for p in settings.effective_drop_dirs], stable_seconds=0))
    with engine.begin() as conn:
        st = ops.status(conn, _day(args.date), pending, settings.claim_deadline_warning_days)
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
    engine = _engine(settings)
    r = ops.Retention.from_days(settings.retention_days)
    with engine.begin() as conn:
        rows = ops.purge(conn, _day(args.date), r, dry_run=args.dry_run, actor=os.environ.get("USER", "purge"),
                         confirm=args.yes)
    if args.json:
        print(json.dumps(rows))
    else:
        _print_table(rows, ["table", "cutoff", "rows", "younger_than_policy", "action"])
    return EXIT_OK


def cmd_backfill(args, settings) -> int:
    from dealersync.flows import deploy
    _prefect_env()
    _engine(settings)
    start, end = _day(getattr(args, "from")), _day(args.to)
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
    _engine(settings)
    deployments = deploy.deployments_from_yaml()
    print(f"serving {len(deployments)} deployment(s): " + ", ".join(d.name for d in deployments), file=sys.stderr)
    from dealersync.flows.common import prefect_api
    from dealersync.processes import exit_on_sigterm
    exit_on_sigterm()
    with prefect_api():   # PREFECT_API_URL's server, or a local one that ends with this process
        serve(*deployments, pause_on_shutdown=False)
    return EXIT_OK


# ------------------------------------------------------------------------------------ main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dealersync", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="ingest DMS export files or folders")
    s.add_argument("paths", nargs="+")
    s.add_argument("--feed", help="feed name (customers, repair_orders...) when the file name does not say")
    s.add_argument("--profile", help="export profile (dms_a, dms_b or a custom one); default: detect")
    s.add_argument("--dealer", help="dealer code when the file name does not say")
    s.add_argument("--force", action="store_true", help="re-read files already ingested or rejected (e.g. after a profile change); "
                   "the new load replaces the earlier one")
    s.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    s.set_defaults(fn=cmd_ingest)

    q = sub.add_parser("quarantine", help="quarantined rows")
    qs = q.add_subparsers(dest="sub", required=True)
    ql = qs.add_parser("list", help="list quarantined rows with their reasons")
    ql.add_argument("--file", help="only this file (name or path)")
    ql.add_argument("--limit", type=int)
    ql.add_argument("--json", action="store_true")
    ql.add_argument("--xlsx", help="write the work list (and a correction sheet per feed for `quarantine replay`)")
    ql.add_argument("--unmasked", action="store_true", help="show raw values in clear (mobiles, ID numbers, names)")
    ql.set_defaults(fn=cmd_quarantine_list)

    s = sub.add_parser("sample", help="write realistic sample exports with ground truth")
    s.add_argument("--out", required=True)
    s.add_argument("--rows", type=int, default=200, help="number of people (customers)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--profile", default="dms_a", choices=["dms_a", "dms_b"])
    s.add_argument("--dealer")
    s.set_defaults(fn=cmd_sample)

    d = sub.add_parser("db", help="store administration")
    ds = d.add_subparsers(dest="sub", required=True)
    du = ds.add_parser("upgrade", help="apply Alembic migrations")
    du.set_defaults(fn=cmd_db_upgrade)

    f = sub.add_parser("sftp", help="the OEM's SFTP server: check, pull drops, push reports")
    fs = f.add_subparsers(dest="sub", required=True)
    for name, text in [("check", "connect, verify the pinned host key, list the remote root"),
                       ("pull", "download new stable drops and ingest them"),
                       ("push", "upload reports (default: everything in the outbox) to /inbound/<dealer>/")]:
        x = fs.add_parser(name, help=text)
        x.add_argument("--json", action="store_true")
        if name == "push":
            x.add_argument("files", nargs="*")
        x.set_defaults(fn=cmd_sftp)

    rs = sub.add_parser("resolve", help="match customer records in the store into master records")
    rs.add_argument("--full", action="store_true", help="re-score every record (after a model change)")
    rs.add_argument("--json", action="store_true")
    rs.set_defaults(fn=cmd_resolve)

    ms = sub.add_parser("master", help="master customer records: show, manual link / split, review queue")
    mss = ms.add_subparsers(dest="sub", required=True)
    x = mss.add_parser("show", help="golden record, contacts, vehicles, lineage and audit of a master")
    x.add_argument("id")
    x.add_argument("--json", action="store_true")
    x.add_argument("--unmasked", action="store_true", help="show mobiles, IDs and e-mails in clear")
    x.set_defaults(fn=cmd_master)
    for name, text in [("link", "these source records are one customer (SOURCE:SOURCE_ID or record id)"),
                       ("split", "separate these source records from the rest of their master")]:
        x = mss.add_parser(name, help=text)
        x.add_argument("records", nargs="+" if name == "split" else "+", metavar="RECORD")
        x.add_argument("--reason")
        x.add_argument("--actor", default=os.environ.get("USER", "manual"))
        x.set_defaults(fn=cmd_master)
    x = mss.add_parser("export", help="everything held about one customer, as JSON (a data subject's request)")
    x.add_argument("id")
    x.add_argument("--out", help="write to this file (default stdout)")
    x.add_argument("--reason", help="the request this answers (kept in the audit)")
    x.add_argument("--actor", default=os.environ.get("USER", "manual"))
    x.set_defaults(fn=cmd_master)
    x = mss.add_parser("erase", help="remove or anonymise one customer across every table (audited)")
    x.add_argument("id")
    x.add_argument("--yes", action="store_true", help="confirm")
    x.add_argument("--reason", help="the request this answers (kept in the audit)")
    x.add_argument("--actor", default=os.environ.get("USER", "manual"))
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_master)
    x = mss.add_parser("review", help="pairs the model was not sure of; decide with --decide ID link|separate|dismiss")
    x.add_argument("--decide", nargs=2, metavar=("ID", "DECISION"))
    x.add_argument("--reason")
    x.add_argument("--actor", default=os.environ.get("USER", "manual"))
    x.add_argument("--limit", type=int, default=100)
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_master)

    c = sub.add_parser("crm", help="the CRM: check, pull leads/contacts/activities, push customers and tasks")
    cs = c.add_subparsers(dest="sub", required=True)
    for name, text in [("check", "connect and authenticate"), ("pull", "pull the change feeds from the watermarks"),
                       ("push", "push changed master customers and the day's follow-up tasks")]:
        x = cs.add_parser(name, help=text)
        x.add_argument("--json", action="store_true")
        if name == "pull":
            x.add_argument("--since", help="ISO time: a stateless re-read from then (watermarks untouched)")
        if name == "push":
            x.add_argument("--date", help="the day whose tasks to plan (default today)")
        x.set_defaults(fn=cmd_crm)

    fu = sub.add_parser("followups", help="the day's follow-up tasks (the information officer's list)")
    fu.add_argument("--date", help="YYYY-MM-DD (default today)")
    fu.add_argument("--xlsx", help="write the list as an XLSX workbook")
    fu.add_argument("--unmasked", action="store_true", help="show mobiles in clear")
    fu.set_defaults(fn=cmd_followups)

    sb = sub.add_parser("sanbao", help="三包 monitor")
    sbs = sb.add_subparsers(dest="sub", required=True)
    x = sbs.add_parser("alerts", help="VINs at a 三包 threshold")
    x.add_argument("--date")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_sanbao)

    sx = sub.add_parser("sandbox", help="run the sandbox CRM (and later the OEM portal) on this machine")
    sxs = sx.add_subparsers(dest="sub", required=True)
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

    o = sub.add_parser("oem", help="the OEM portal")
    os_ = o.add_subparsers(dest="sub", required=True)
    x = os_.add_parser("check", help="get a token and read the labor-operation code table")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_oem)

    cl = sub.add_parser("claims", help="warranty claims to the OEM portal")
    cls_ = cl.add_subparsers(dest="sub", required=True)
    x = cls_.add_parser("list", help="claims with their local and OEM status")
    x.add_argument("--status", help="a local or OEM status (QUEUED, VALIDATION_FAILED, RETURNED, SETTLED...)")
    x.add_argument("--json", action="store_true")
    x.add_argument("--xlsx", help="write the claims' errors as a work list (file, row, column, value, reason)")
    x.set_defaults(fn=cmd_claims)
    x = cls_.add_parser("show", help="one claim: errors, submissions (BODIDs) and its OEM status history")
    x.add_argument("claim")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_claims)
    x = cls_.add_parser("submit", help="validate new claims and send every queued one (exactly once)")
    x.add_argument("--date", help="today, for the claim window (default today)")
    x.add_argument("--workers", type=int, default=4)
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_claims)
    x = cls_.add_parser("resubmit", help="send a RETURNED claim again, corrected, with submission count + 1")
    x.add_argument("claim")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_claims)
    x = cls_.add_parser("poll", help="read the portal's status feed")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_claims)
    x = cls_.add_parser("deadlines", help="claims not yet accepted whose window is closing")
    x.add_argument("--date")
    x.add_argument("--days", type=int)
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_claims)

    sv = sub.add_parser("surveys", help="CSI survey results to the OEM")
    svs = sv.add_subparsers(dest="sub", required=True)
    x = svs.add_parser("push", help="send new survey results (masked mobile, shareable customers only)")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_surveys)

    rp = sub.add_parser("report", help="reports to the OEM")
    rps = rp.add_subparsers(dest="sub", required=True)
    x = rps.add_parser("csi", help="the monthly CSI report: XLSX, uploaded to the portal (and SFTP when set)")
    x.add_argument("--month", required=True, help="YYYY-MM")
    x.add_argument("--no-upload", action="store_true")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_report)
    from dealersync.cli import worklists   # it imports this module's table printer
    worklists.register(sub, qs, rps)

    x = sub.add_parser("status", help="last activity of each flow, files pending, quarantine, claims, tasks due")
    x.add_argument("--date")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_status)

    x = sub.add_parser("purge", help="apply the retention policy (repair records kept at least a year; "
                                   "customers while a vehicle, order or claim of theirs is kept); never a future --date")
    x.add_argument("--date", help="purge as of this day (default today)")
    x.add_argument("--dry-run", action="store_true")
    x.add_argument("--yes", action="store_true", help="confirm deleting rows younger than the default policy")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_purge)

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

    x = sub.add_parser("serve", help="serve every deployment of prefect.yaml from this process (no work pool)")
    x.set_defaults(fn=cmd_serve)

    rf = sub.add_parser("resolve-file", help="match a customer CSV into master ids, without the store")
    rf.add_argument("input", help="UTF-8 CSV: source,source_id,customer_type,name,company,mobile,phone,"
                                  "id_number,email,address,vin,plate")
    rf.add_argument("--out", required=True, help="CSV written: source,source_id,master_id")
    rf.add_argument("--json", action="store_true", help="summary as JSON on stderr")
    rf.set_defaults(fn=cmd_resolve_file)

    add_front_parsers(sub)
    add_demo_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from dealersync.config import get_settings
        from dealersync.privacy import install_log_filter
        settings = get_settings()
        install_log_filter(settings)
        return args.fn(args, settings)
    except (BadSourceData, ConfigurationError) as e:
        print(f"error: {render_exception(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DealersyncError as e:
        print(f"error: {render_exception(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001
        if args.debug:   # the traceback, masked like every other text that leaves (never Python's raw one)
            print(render_exception(e, with_traceback=True), file=sys.stderr, end="")
            return EXIT_ERROR
        print(f"unexpected error: {render_exception(e)} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
