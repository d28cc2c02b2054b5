"""``resolve`` (master records from the store), ``resolve-file`` (a CSV, without the store) and
``master`` (show, link, split, review, export, erase)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dealersync.errors import ConfigurationError
from dealersync.privacy import mask_text

from .args import add_audit, add_json, command, group, store_context
from .show import EXIT_OK, _print_table


def cmd_resolve_file(args, settings) -> int:
    from dealersync.resolution.filemode import resolve_file
    stats = resolve_file(args.input, args.out, progress=_resolve_progress)
    print(json.dumps(stats) if args.json else
          f"{stats['records']:,} records -> {stats['masters']:,} master records in {stats['seconds']} s "
          f"({stats['merge_pairs']:,} merged pairs, {stats['review_pairs']:,} for review, "
          f"{stats['household_pairs']:,} household links); written {args.out}", file=sys.stderr)
    return EXIT_OK


def _resolve_progress(event) -> None:
    """A resolve's progress on stderr: counts, rate and ETA per stage (no record's values); a short run
    prints only the end of each stage."""
    if event.final or event.elapsed >= 2:
        print(f"  {event.line()}", file=sys.stderr, flush=True)


def cmd_resolve(args, settings) -> int:
    from dealersync.services import jobs
    with store_context(args, settings) as ctx:
        stats = jobs.resolve(ctx, full=args.full, progress=None if args.json else _resolve_progress)
    if args.json:
        print(json.dumps(stats, default=str))
    else:
        _print_table([{k: v for k, v in stats.items() if k != "timings"}],
                     ["records", "scored_records", "candidate_pairs", "created", "merged", "split", "review_links",
                      "household_links", "masters"])
    return EXIT_OK


def _mask_master(doc: dict) -> dict:
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
    with store_context(args, settings) as ctx, ctx.engine.begin() as conn:
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
            if args.xlsx or args.import_:
                return _master_review_sheet(conn, args)
            if args.decide:
                link_id, decision = args.decide
                service.decide_review(conn, int(link_id), decision, actor=args.actor, reason=args.reason)
                print(f"review {link_id}: {decision}")
                return EXIT_OK
            rows = service.review_queue(conn, limit=100 if args.limit is None else (args.limit or None))
            if args.json:
                for r in rows:
                    print(json.dumps(r, ensure_ascii=False, default=str))
            else:
                _print_table(rows, ["id", "weight", "a_source", "a_source_id", "a_name", "a_master", "b_source",
                                    "b_source_id", "b_name", "b_master", "evidence"])
    return EXIT_OK


def _master_review_sheet(conn, args) -> int:
    """``master review --xlsx OUT`` (the queue as a workbook to fill in) / ``--import IN`` (apply it)."""
    from dealersync.services import master_review
    if args.xlsx and args.import_:
        raise ConfigurationError("master review: give --xlsx OUT or --import IN, not both")
    if args.xlsx:
        n = master_review.export_review(conn, args.xlsx, unmasked=args.unmasked, limit=args.limit or None)
        print(f"{n} pair(s) of masters to review written to {args.xlsx}"
              + ("" if args.unmasked else " (mobiles and IDs masked)"), file=sys.stderr)
        return EXIT_OK
    outcomes = master_review.import_review(conn, args.import_, actor=args.actor)
    rows = [{"row": o.row, "review": o.review_id, "decision": o.decision, "result": o.result,
             "note": mask_text(o.note)} for o in outcomes]
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    else:
        _print_table([r for r in rows if r["result"] != "skipped"], ["row", "review", "decision", "result", "note"])
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result] = counts.get(o.result, 0) + 1
    print(f"{args.import_}: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no decisions"),
          file=sys.stderr)
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


def register(sub) -> None:
    rs = command(sub, "resolve", cmd_resolve, "match customer records in the store into master records", json=True)
    rs.add_argument("--full", action="store_true", help="re-score every record (after a model change)")

    mss = group(sub, "master", "master customer records: show, manual link / split, review queue")
    x = command(mss, "show", cmd_master, "golden record, contacts, vehicles, lineage and audit of a master")
    x.add_argument("id")
    add_json(x)
    x.add_argument("--unmasked", action="store_true", help="show mobiles, IDs and e-mails in clear")
    for name, text in [("link", "these source records are one customer (SOURCE:SOURCE_ID or record id)"),
                       ("split", "separate these source records from the rest of their master")]:
        x = command(mss, name, cmd_master, text)
        x.add_argument("records", nargs="+", metavar="RECORD")
        add_audit(x)
    x = command(mss, "export", cmd_master, "everything held about one customer, as JSON (a data subject's request)")
    x.add_argument("id")
    x.add_argument("--out", help="write to this file (default stdout)")
    add_audit(x, "the request this answers (kept in the audit)")
    x = command(mss, "erase", cmd_master, "remove or anonymise one customer across every table (audited)")
    x.add_argument("id")
    x.add_argument("--yes", action="store_true", help="confirm")
    add_audit(x, "the request this answers (kept in the audit)")
    add_json(x)
    x = command(mss, "review", cmd_master,
                "pairs the model was not sure of; decide with --decide ID link|separate|dismiss")
    x.add_argument("--decide", nargs=2, metavar=("ID", "DECISION"))
    add_audit(x)
    x.add_argument("--limit", type=int, help="pairs listed (default 100, 0: all; --xlsx writes all unless given)")
    x.add_argument("--xlsx", metavar="OUT", help="write the queue as a workbook to decide in (合并/不合并/跳过)")
    x.add_argument("--import", dest="import_", metavar="IN", help="apply the decisions of a filled-in --xlsx workbook")
    x.add_argument("--unmasked", action="store_true", help="--xlsx: mobiles and IDs in clear")
    add_json(x)

    rf = command(sub, "resolve-file", cmd_resolve_file, "match a customer CSV into master ids, without the store")
    rf.add_argument("input", help="UTF-8 CSV: source,source_id,customer_type,name,company,mobile,phone,"
                                  "id_number,email,address,vin,plate")
    rf.add_argument("--out", required=True, help="CSV written: source,source_id,master_id")
    rf.add_argument("--json", action="store_true", help="summary as JSON on stderr")
