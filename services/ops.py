"""Operations: the status overview and the retention purge. Plain functions; the CLI wraps them
(backfills and serving, which need the flows, live in ``dealersync.flows.deploy``)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from dealersync.store import ledger
from dealersync.store.tables import (FEED_TABLES, claim_status_snapshot, claim_submission, crm_activity, crm_cursor, crm_push,
                          customer_record, followup_task, ingest_file, master_audit, oem_cursor, purge_run, quarantine,
                          sftp_transfer, value_issue, warranty_claim_job)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ status

def status(conn: Connection, today: date, pending_files: int | None = None, warning_days: int = 5) -> dict:
    """What an IT person asks first: when did each job last do something, what is waiting, what is wrong."""
    def one(q):
        return conn.execute(q).scalar()
    last = {
        "ingest_dms_exports": one(select(func.max(ingest_file.c.finished_at)).where(ingest_file.c.source == "DMS")),
        "pull_sftp_drops": one(select(func.max(sftp_transfer.c.finished_at)).where(sftp_transfer.c.direction == "PULL")),
        "push_sftp_reports": one(select(func.max(sftp_transfer.c.finished_at)).where(sftp_transfer.c.direction == "PUSH")),
        "resolve_customers": one(select(func.max(customer_record.c.decided_at))),
        "pull_crm": one(select(func.max(crm_cursor.c.updated_at))),
        "push_crm": one(select(func.max(crm_push.c.pushed_at))),
        "push_warranty_claims": one(select(func.max(claim_submission.c.sent_at))),
        "poll_claim_status": one(select(func.max(oem_cursor.c.updated_at))),
    }
    files = dict(conn.execute(select(ingest_file.c.status, func.count()).group_by(ingest_file.c.status)).all())
    claims_local = dict(conn.execute(select(warranty_claim_job.c.local_status, func.count())
                                     .group_by(warranty_claim_job.c.local_status)).all())
    claims_oem = dict(conn.execute(select(warranty_claim_job.c.oem_status, func.count())
                                   .where(warranty_claim_job.c.oem_status.is_not(None))
                                   .group_by(warranty_claim_job.c.oem_status)).all())
    near = conn.execute(select(func.count()).select_from(warranty_claim_job).where(
        warranty_claim_job.c.local_status != "SUBMITTED", warranty_claim_job.c.deadline >= today,
        warranty_claim_job.c.deadline <= today + timedelta(days=warning_days))).scalar()
    tasks = dict(conn.execute(select(followup_task.c.type, func.count()).where(
        followup_task.c.status == "OPEN", followup_task.c.created_for <= today).group_by(followup_task.c.type)).all())
    overdue = conn.execute(select(func.count()).select_from(followup_task).where(
        followup_task.c.status == "OPEN", followup_task.c.due_date < today)).scalar()
    return {"today": today.isoformat(),
            "last_activity": {k: v.isoformat(sep=" ") if v else None for k, v in last.items()},
            "files": {"pending": pending_files, **{str(k).lower(): v for k, v in files.items()}},
            "quarantine": ledger.quarantine_counts(conn),   # rows of replaced loads apart (issue #17 item 9)
            "claims": {"local": claims_local, "oem": claims_oem, "deadline_within_days": warning_days,
                       "approaching_deadline": near},
            "tasks_due": {"open": tasks, "overdue": overdue}}


# ------------------------------------------------------------------------------------ purge

@dataclass(frozen=True)
class Retention:
    """Days each kind of record is kept. Repair records are kept at least a year (三包 and warranty
    disputes look back that far); nothing is kept longer than its line says."""
    repair_orders: int = 3 * 365
    sales: int = 5 * 365
    customers: int = 5 * 365
    quarantine: int = 180
    value_issues: int = 180
    ledger: int = 2 * 365
    crm_activities: int = 2 * 365
    done_tasks: int = 365
    claim_history: int = 5 * 365
    audit: int = 5 * 365
    MINIMUM_REPAIR_DAYS = 365

    def check(self) -> None:
        from dealersync.errors import ConfigurationError
        if self.repair_orders < self.MINIMUM_REPAIR_DAYS:
            raise ConfigurationError(f"retention: repair records must be kept at least {self.MINIMUM_REPAIR_DAYS} days "
                                     f"(asked {self.repair_orders})")
        for k, v in self.__dict__.items():
            if v < 1:
                raise ConfigurationError(f"retention.{k} must be at least 1 day")


def _plan(today: date, r: Retention):
    """(label, table, date column, cutoff) per purge target."""
    def cut(days):
        return datetime.combine(today - timedelta(days=days), datetime.min.time())
    ro, lines = FEED_TABLES["repair_orders"], FEED_TABLES["repair_order_lines"]
    return [
        ("repair_order_lines", lines, lines.c.ingested_at, cut(r.repair_orders)),
        ("repair_orders", ro, ro.c.opened_at, cut(r.repair_orders)),
        ("vehicle_sales", FEED_TABLES["vehicle_sales"], FEED_TABLES["vehicle_sales"].c.ingested_at, cut(r.sales)),
        ("quarantine", quarantine, None, cut(r.quarantine)),
        ("value_issue", value_issue, None, cut(r.value_issues)),
        ("crm_activity", crm_activity, crm_activity.c.pulled_at, cut(r.crm_activities)),
        ("followup_task (done/cancelled)", followup_task, followup_task.c.updated_at, cut(r.done_tasks)),
        ("claim_status_snapshot", claim_status_snapshot, claim_status_snapshot.c.received_at, cut(r.claim_history)),
        ("master_audit", master_audit, master_audit.c.at, cut(r.audit)),
        ("sftp_transfer", sftp_transfer, sftp_transfer.c.finished_at, cut(r.ledger)),
    ]


def purge(conn: Connection, today: date, retention: Retention | None = None, dry_run: bool = False,
          actor: str = "purge") -> list[dict]:
    """Delete what the retention policy no longer allows; every run is recorded in ``purge_run``."""
    r = retention or Retention()
    r.check()
    out = []
    for label, table, col, cutoff in _plan(today, r):
        if col is None:   # quarantine / value issues: by the load they came from
            cond = table.c.load_id.in_(select(ingest_file.c.id).where(ingest_file.c.finished_at < cutoff))
        else:
            cond = col < cutoff
        if table is followup_task:
            cond = cond & followup_task.c.status.in_(("DONE", "CANCELLED"))
        n = conn.execute(select(func.count()).select_from(table).where(cond)).scalar()
        if n and not dry_run:
            conn.execute(delete(table).where(cond))
        out.append({"table": label, "older_than": cutoff.date().isoformat(), "rows": n,
                    "action": "would delete" if dry_run else "deleted"})
        if n:
            log.info("purge %s: %s %d row(s) older than %s", label, "would delete" if dry_run else "deleted", n,
                     cutoff.date())
    conn.execute(insert(purge_run).values(at=datetime.now().replace(microsecond=0), actor=actor, dry_run=dry_run,
                                          policy=json.dumps(r.__dict__), result=json.dumps(out)))
    return out
