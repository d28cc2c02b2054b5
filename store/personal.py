"""One customer's data on request (PIPL art. 45 access / portability, art. 47 erasure): everything the
store holds about a master customer, exported as one document, or erased.

Functions take a connection and never commit. A customer is the surviving master and every master merged
into it; their data is what those masters' source records were read from (the DMS customer row, the
vehicle sales and repair orders that name them, the CRM leads), plus what was derived (contact points,
vehicles, review links, follow-up tasks, the CRM's copy of the contact and its activities, survey sends,
audit entries).

Erasure removes rows that describe only the customer (DMS customer, lead, source records, contact
points, tasks, the CRM copy), blanks the customer's fields in rows the dealership must keep for other
purposes (a vehicle sale's buyer, a repair order's sender: tax and warranty records), deletes the ingest
issues and quarantined rows that quote their identifiers, and keeps the master row as an empty ``ERASED``
pointer (so the next CRM push deletes the contact there too). One ``master_audit`` row (ERASE) records
what was done, with counts only.
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import json

from sqlalchemy import Connection, delete, insert, or_, select, tuple_, update

from dealersync.store.tables import (FEED_TABLES, MasterStatus,
                                     crm_activity, crm_contact, crm_lead, customer_record, followup_task,
                                     master_audit, master_contact, master_customer, master_vehicle, match_link,
                                     quarantine, survey_push, value_issue)

ERASED = MasterStatus.ERASED.value
GOLDEN = ("customer_type", "name", "company", "gender", "birth_date", "id_number", "address", "province", "city",
          "district", "primary_mobile", "primary_email", "marketing_consent", "golden_sources")
_SOURCE = {"DMS": ("customers", "customer_id"), "SALES": ("vehicle_sales", "sale_no"),
           "SERVICE": ("repair_orders", "ro_number")}
_BLANKED = {"SALES": ("customer_name", "mobile", "id_number"), "SERVICE": ("sender_name", "sender_mobile")}


def customer_masters(conn: Connection, master_id: str) -> list[str]:
    """The surviving master for ``master_id`` first, then every master merged into it (any depth);
    empty when no such master exists."""
    seen, mid = set(), master_id
    while mid not in seen:   # follow MERGED pointers to the survivor
        seen.add(mid)
        row = conn.execute(select(master_customer.c.status, master_customer.c.merged_into)
                           .where(master_customer.c.master_id == mid)).first()
        if row is None:
            return []
        if row[0] != MasterStatus.MERGED.value or not row[1]:
            break
        mid = row[1]
    out, frontier = [mid], [mid]
    while frontier:
        frontier = [m for (m,) in conn.execute(select(master_customer.c.master_id)
                                               .where(master_customer.c.merged_into.in_(frontier)))
                    if m not in out]
        out += frontier
    return out


def _rows(conn: Connection, q) -> list[dict]:
    return [dict(r) for r in conn.execute(q).mappings()]


def _source_rows(recs: list[dict], source: str) -> list[tuple[str, str]]:
    return [tuple(r["source_id"].split(":", 1)) for r in recs if r["source"] == source and ":" in r["source_id"]]


def export_customer(conn: Connection, master_id: str) -> dict | None:
    """Everything held about the customer, as a JSON-ready document (dates as ISO text by the caller's
    ``default=str``); None when there is no such master."""
    mids = customer_masters(conn, master_id)
    if not mids:
        return None
    recs = _rows(conn, select(customer_record).where(customer_record.c.master_id.in_(mids)))
    doc = {"master_id": mids[0], "merged_masters": mids[1:], "exported_at": dealer_clock.now(),
           "masters": _rows(conn, select(master_customer).where(master_customer.c.master_id.in_(mids))),
           "source_records": [{k: v for k, v in r.items() if not k.startswith("m_")} for r in recs],
           "contact_points": _rows(conn, select(master_contact).where(master_contact.c.master_id.in_(mids))),
           "vehicles": _rows(conn, select(master_vehicle).where(master_vehicle.c.master_id.in_(mids))),
           "dms": {}}
    for source, (feed, key) in _SOURCE.items():
        t, ids = FEED_TABLES[feed], _source_rows(recs, source)
        doc["dms"][t.name] = _rows(conn, select(t).where(tuple_(t.c.dealer_code, t.c[key]).in_(ids))) if ids else []
    leads = [r["source_id"].split(":", 1)[1] for r in recs if r["source"] == "CRM"]
    doc["crm"] = {"leads": _rows(conn, select(crm_lead).where(crm_lead.c.lead_id.in_(leads))),
                  "contacts": _rows(conn, select(crm_contact).where(crm_contact.c.external_id.in_(mids))),
                  "activities": _rows(conn, select(crm_activity).where(crm_activity.c.contact_external_id.in_(mids)))}
    doc["followup_tasks"] = _rows(conn, select(followup_task).where(followup_task.c.master_id.in_(mids)))
    doc["survey_sends"] = _rows(conn, select(survey_push).where(survey_push.c.master_id.in_(mids)))
    doc["audit"] = _rows(conn, select(master_audit).where(master_audit.c.master_id.in_(mids)).order_by(master_audit.c.id))
    return doc


def log_export(conn: Connection, master_id: str, *, actor: str, reason: str | None) -> None:
    """The audit row of an export (who took a copy of whose data, when)."""
    conn.execute(insert(master_audit).values(at=dealer_clock.now(), action="EXPORT",
                                             master_id=master_id, reason=reason, actor=actor))


def erase_customer(conn: Connection, master_id: str, *, actor: str, reason: str | None = None) -> dict | None:
    """Erase the customer (see the module text); returns rows touched per table, None when there is no
    such master. Idempotent: erasing again touches nothing but adds an audit row."""
    mids = customer_masters(conn, master_id)
    if not mids:
        return None
    n: dict[str, int] = {}

    def did(label, result):
        n[label] = n.get(label, 0) + (result.rowcount or 0)

    recs = _rows(conn, select(customer_record.c.id, customer_record.c.source, customer_record.c.source_id,
                              customer_record.c.load_id, customer_record.c.source_row, customer_record.c.raw_mobile,
                              customer_record.c.raw_phone, customer_record.c.raw_id_number, customer_record.c.raw_email)
                 .where(customer_record.c.master_id.in_(mids)))
    masters = _rows(conn, select(master_customer.c.primary_mobile, master_customer.c.id_number,
                                 master_customer.c.primary_email).where(master_customer.c.master_id.in_(mids)))
    idents = {v for r in recs for v in (r["raw_mobile"], r["raw_phone"], r["raw_id_number"], r["raw_email"]) if v}
    idents |= {v for m in masters for v in m.values() if v}
    idents |= {c for (c,) in conn.execute(select(master_contact.c.value).where(master_contact.c.master_id.in_(mids)))}
    rec_ids = [r["id"] for r in recs]
    # rows read from the sources: what describes only the customer goes, the rest loses the customer's fields
    cust, veh = FEED_TABLES["customers"], FEED_TABLES["vehicles"]
    dms = _source_rows(recs, "DMS")
    if dms:
        did("dms_vehicle (owner cleared)", conn.execute(update(veh).where(
            tuple_(veh.c.dealer_code, veh.c.owner_customer_id).in_(dms)).values(owner_customer_id=None)))
        for feed in ("repair_orders", "vehicle_sales"):
            t = FEED_TABLES[feed]
            did(f"{t.name} (customer id cleared)", conn.execute(update(t).where(
                tuple_(t.c.dealer_code, t.c.customer_id).in_(dms)).values(customer_id=None)))
        did(cust.name, conn.execute(delete(cust).where(tuple_(cust.c.dealer_code, cust.c.customer_id).in_(dms))))
    for source, cols in _BLANKED.items():
        feed, key = _SOURCE[source]
        t, ids = FEED_TABLES[feed], _source_rows(recs, source)
        if ids:
            did(f"{t.name} (customer fields blanked)", conn.execute(update(t).where(
                tuple_(t.c.dealer_code, t.c[key]).in_(ids)).values(**{c: None for c in cols})))
    leads = [r["source_id"].split(":", 1)[1] for r in recs if r["source"] == "CRM"]
    if leads:
        did("crm_lead", conn.execute(delete(crm_lead).where(crm_lead.c.lead_id.in_(leads))))
    lineage = [(r["load_id"], r["source_row"]) for r in recs if r["load_id"] is not None]
    if lineage:
        did("value_issue", conn.execute(delete(value_issue).where(
            tuple_(value_issue.c.load_id, value_issue.c.source_row).in_(lineage))))
    if idents:
        did("quarantine", conn.execute(delete(quarantine).where(or_(
            quarantine.c.raw_value.in_(idents), *[quarantine.c.raw_row.contains(v) for v in idents if len(v) >= 5]))))
    # what was derived
    did("match_link", conn.execute(delete(match_link).where(or_(match_link.c.record_a.in_(rec_ids),
                                                                 match_link.c.record_b.in_(rec_ids)))))
    for t in (master_contact, master_vehicle, followup_task):
        did(t.name, conn.execute(delete(t).where(t.c.master_id.in_(mids))))
    did("crm_contact", conn.execute(delete(crm_contact).where(crm_contact.c.external_id.in_(mids))))
    did("crm_activity (anonymised)", conn.execute(update(crm_activity).where(
        crm_activity.c.contact_external_id.in_(mids)).values(contact_external_id=None, complaint=None)))
    did("survey_push (payload dropped)", conn.execute(update(survey_push).where(survey_push.c.master_id.in_(mids))
                                                       .values(master_id=None, payload=None)))
    did("master_audit (values dropped)", conn.execute(update(master_audit).where(
        master_audit.c.master_id.in_(mids), master_audit.c.action != "ERASE",
        or_(master_audit.c.before.is_not(None), master_audit.c.after.is_not(None))).values(before=None, after=None)))
    did("customer_record", conn.execute(delete(customer_record).where(customer_record.c.id.in_(rec_ids))))
    now = dealer_clock.now()
    did("master_customer (erased)", conn.execute(update(master_customer).where(master_customer.c.master_id.in_(mids),
                                                                               master_customer.c.status != ERASED)
                                                 .values(status=ERASED, merged_into=None, record_count=0,
                                                         updated_at=now, **{c: None for c in GOLDEN})))
    n = {k: v for k, v in n.items() if v}
    conn.execute(insert(master_audit).values(at=now, action="ERASE", master_id=mids[0], other_ids=json.dumps(mids[1:]),
                                             after=json.dumps(n), reason=reason, actor=actor))
    return n
