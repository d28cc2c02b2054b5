"""Retention SQL: which rows of each personal table are past their cutoff, counting and deleting them.

Functions take a connection and never commit (the caller's transaction decides). The policy (days per
kind of record, the floors) lives in ``dealersync.services.ops``; this module turns cutoffs into
conditions. Order matters: children before parents, the feeds before the customers they keep alive,
source records before the masters they make up (PIPL art. 19: kept no longer than the purpose needs).

Rules:
* a feed row (repair order, sale, claim) goes when its date is before its cutoff;
* a stock snapshot row (``dms_stock``: VINs, models, prices, no personal data) goes when its business
  day is before the ``stock`` cutoff: the snapshots are operational, kept as long as the report ledger
  so a SALESDAY report still in it can be rebuilt for its day;
* a DMS vehicle goes when last loaded before the cutoff and no kept repair order, sale or claim names it;
* a DMS customer goes when last loaded before the cutoff and none of their vehicles, repair orders or
  sales is kept (claims keep the vehicle, which keeps its owner);
* a source record (``customer_record``) goes when the row it was read from is gone; its contact points,
  vehicles and review links go with it; a master left without records goes (an ACTIVE one at once, a
  MERGED / SPLIT pointer once older than the customers' cutoff) with its follow-up tasks, and the CRM
  contact pushed for it is queued for deletion on the CRM sync ledger (``crm_push`` status
  ``TO_DELETE``; the next contact push deletes it once).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (ColumnElement, Connection, DateTime, Table, and_, delete, exists, func, insert, not_, or_,
                        select, update)

from dealersync.store.tables import (CRM_DELETE_QUEUED, FEED_TABLES, MasterStatus, PushStatus, TaskStatus,
                                     claim_status_snapshot, claim_submission, crm_activity, crm_contact, crm_lead,
                                     crm_push, customer_record, followup_task, ingest_file, master_audit,
                                     master_contact, master_customer, master_vehicle, match_link, purge_run,
                                     quarantine, sftp_transfer, survey_push, value_issue)

TASKS_CLOSED = (TaskStatus.DONE.value, TaskStatus.CANCELLED.value)


@dataclass(frozen=True)
class Target:
    """One purge step: ``label`` (a table, or table + qualifier), the policy key whose cutoff applies,
    the table, the rows to delete, and the date column the cutoff compares (None: derived rows)."""
    label: str
    policy: str
    table: Table
    where: ColumnElement
    date_col: ColumnElement | None = None
    values: dict | None = None   # update the rows with these values instead of deleting them


def _same_dealer_ref(table, col, ref_table, ref_col) -> ColumnElement:
    return exists().where(ref_table.c.dealer_code == table.c.dealer_code, ref_col == col)


def targets(cut: dict[str, datetime]) -> list[Target]:
    """The purge steps for ``cut`` (policy key -> cutoff datetime), in the order they must run."""
    ro, lines = FEED_TABLES["repair_orders"], FEED_TABLES["repair_order_lines"]
    sales, claims = FEED_TABLES["vehicle_sales"], FEED_TABLES["warranty_claims"]
    veh, cust, stock = FEED_TABLES["vehicles"], FEED_TABLES["customers"], FEED_TABLES["stock"]
    out = [
        Target("repair_order_lines", "repair_orders", lines, lines.c.ingested_at < cut["repair_orders"], lines.c.ingested_at),
        Target("repair_orders", "repair_orders", ro, ro.c.opened_at < cut["repair_orders"], ro.c.opened_at),
        Target("vehicle_sales", "sales", sales, sales.c.ingested_at < cut["sales"], sales.c.ingested_at),
        Target("warranty_claims", "claims", claims, claims.c.ingested_at < cut["claims"], claims.c.ingested_at),
        Target("dms_stock", "stock", stock, stock.c.business_date < cut["stock"].date(), stock.c.business_date),
    ]
    kept_vin = or_(_same_dealer_ref(veh, veh.c.vin, ro, ro.c.vin), _same_dealer_ref(veh, veh.c.vin, sales, sales.c.vin),
                   _same_dealer_ref(veh, veh.c.vin, claims, claims.c.vin))
    out.append(Target("dms_vehicle", "vehicles", veh, and_(veh.c.ingested_at < cut["vehicles"], not_(kept_vin)),
                      veh.c.ingested_at))
    kept_customer = or_(_same_dealer_ref(cust, cust.c.customer_id, veh, veh.c.owner_customer_id),
                        _same_dealer_ref(cust, cust.c.customer_id, ro, ro.c.customer_id),
                        _same_dealer_ref(cust, cust.c.customer_id, sales, sales.c.customer_id))
    out.append(Target("dms_customer", "customers", cust, and_(cust.c.ingested_at < cut["customers"], not_(kept_customer)),
                      cust.c.ingested_at))
    out.append(Target("crm_lead", "leads", crm_lead, crm_lead.c.pulled_at < cut["leads"], crm_lead.c.pulled_at))
    # source records whose row is gone, then what hangs on them
    cr = customer_record
    def src(table, key):
        return exists().where(table.c.dealer_code + ":" + key == cr.c.source_id)
    orphan = or_(and_(cr.c.source == "DMS", not_(src(cust, cust.c.customer_id))),
                 and_(cr.c.source == "SALES", not_(src(sales, sales.c.sale_no))),
                 and_(cr.c.source == "SERVICE", not_(src(ro, ro.c.ro_number))),
                 and_(cr.c.source == "CRM", not_(exists().where("LEAD:" + crm_lead.c.lead_id == cr.c.source_id))))
    out.append(Target("customer_record (source row gone)", "customers", cr, orphan))
    no_record = ~exists().where(cr.c.id == master_contact.c.record_id)
    out.append(Target("master_contact", "customers", master_contact, no_record))
    out.append(Target("master_vehicle", "customers", master_vehicle, ~exists().where(cr.c.id == master_vehicle.c.record_id)))
    out.append(Target("match_link", "customers", match_link,
                      or_(~exists().where(cr.c.id == match_link.c.record_a), ~exists().where(cr.c.id == match_link.c.record_b))))
    mc = master_customer
    empty = ~exists().where(cr.c.master_id == mc.c.master_id)
    gone_master = and_(empty, or_(mc.c.status == MasterStatus.ACTIVE.value, mc.c.updated_at < cut["customers"]))
    # the CRM holds a contact for each master pushed: its delete is queued on the CRM sync ledger, and the
    # next contact push sends it once (crm_sync.push_contacts); the master row itself leaves the store
    out.append(Target("crm_push (CRM delete queued)", "customers", crm_push,
                      and_(crm_push.c.kind == "CONTACT", crm_push.c.status.in_((PushStatus.SENT.value, PushStatus.ERROR.value)),
                           crm_push.c.external_id.in_(select(mc.c.master_id).where(gone_master))),
                      values={"status": CRM_DELETE_QUEUED}))
    out.append(Target("followup_task (master gone)", "customers", followup_task,
                      followup_task.c.master_id.in_(select(mc.c.master_id).where(gone_master))))
    out.append(Target("master_customer", "customers", mc, gone_master))
    out += [
        Target("crm_contact", "crm_contacts", crm_contact, crm_contact.c.pulled_at < cut["crm_contacts"], crm_contact.c.pulled_at),
        Target("crm_activity", "crm_activities", crm_activity, crm_activity.c.pulled_at < cut["crm_activities"],
               crm_activity.c.pulled_at),
        Target("followup_task (done/cancelled)", "done_tasks", followup_task,
               and_(followup_task.c.updated_at < cut["done_tasks"], followup_task.c.status.in_(TASKS_CLOSED)),
               followup_task.c.updated_at),
        Target("survey_push", "surveys", survey_push, survey_push.c.updated_at < cut["surveys"], survey_push.c.updated_at),
        Target("claim_submission", "claim_history", claim_submission, claim_submission.c.sent_at < cut["claim_history"],
               claim_submission.c.sent_at),
        Target("claim_status_snapshot", "claim_history", claim_status_snapshot,
               claim_status_snapshot.c.received_at < cut["claim_history"], claim_status_snapshot.c.received_at),
        Target("quarantine", "quarantine", quarantine, quarantine.c.load_id.in_(
            select(ingest_file.c.id).where(ingest_file.c.finished_at < cut["quarantine"]))),
        Target("value_issue", "value_issues", value_issue, value_issue.c.load_id.in_(
            select(ingest_file.c.id).where(ingest_file.c.finished_at < cut["value_issues"]))),
        Target("master_audit", "audit", master_audit, master_audit.c.at < cut["audit"], master_audit.c.at),
        Target("sftp_transfer", "ledger", sftp_transfer, sftp_transfer.c.finished_at < cut["ledger"],
               sftp_transfer.c.finished_at),
    ]
    return out


def count(conn: Connection, t: Target, extra: ColumnElement | None = None) -> int:
    """Rows of ``t`` to delete (and matching ``extra`` when given)."""
    cond = t.where if extra is None else and_(t.where, extra)
    return conn.execute(select(func.count()).select_from(t.table).where(cond)).scalar() or 0


def younger_than(t: Target, floor: datetime) -> ColumnElement | None:
    """Rows of ``t`` dated on or after ``floor`` (the policy's own cutoff): deleting them needs a
    confirmation. None for derived rows (orphans), which have no date of their own."""
    if t.date_col is None:
        return None
    # a DATE column against a date (SQLite compares text: '2024-11-30' < '2024-11-30 00:00:00')
    return t.date_col >= (floor if isinstance(t.date_col.type, DateTime) else floor.date())


def delete_rows(conn: Connection, t: Target) -> int:
    if t.values is not None:
        return conn.execute(update(t.table).where(t.where).values(**t.values)).rowcount or 0
    return conn.execute(delete(t.table).where(t.where)).rowcount or 0


def record_run(conn: Connection, *, at: datetime, actor: str, dry_run: bool, policy: dict, result: list[dict]) -> None:
    """The audit row of a purge: per table the rows and the cutoff."""
    conn.execute(insert(purge_run).values(at=at, actor=actor, dry_run=dry_run, policy=json.dumps(policy),
                                          result=json.dumps(result, ensure_ascii=False)))
