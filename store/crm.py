"""CRM sync: pulled leads, contacts and activities, the pull cursors, the quarantine of records outside
the contract and the push ledger: the store's side of ``services/crm_sync.py``.

In the manner of Prefect's server models: every function takes a ``Connection`` first and never
commits (a pulled page or a pushed batch commits with its ledger in the service's transaction);
writes are upserts on natural keys (lead id, external id, activity id, (feed, item key, reason),
(kind, external id)), so a re-run writes nothing twice; answers are values.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, select, update

from .db import upsert
from .ledger import now
from .tables import (CRM_DELETE_QUEUED, MasterStatus, PushStatus, crm_activity, crm_contact, crm_cursor, crm_lead,
                     crm_push, crm_quarantine, master_customer)


# ------------------------------------------------------------------------------------ pulled records

def save_lead(conn: Connection, it: dict, pulled_at: datetime) -> None:
    """Upsert a lead (contract Lead) by its id; an older version never overwrites a newer one."""
    upsert(conn, crm_lead, dict(
        lead_id=it["leadId"], name=it.get("name"), mobile=it.get("mobile"), status=it.get("status"),
        intent_level=it.get("intentLevel"), interested_model=it.get("interestedModel"),
        salesperson=it.get("salesperson"), lead_source=it.get("source"), created_at=it.get("createdAt"),
        modified_at=it["modifiedAt"], data=json.dumps(it, ensure_ascii=False), pulled_at=pulled_at),
        ["lead_id"], where_newer="modified_at")


def save_contact(conn: Connection, it: dict, pulled_at: datetime) -> None:
    """Upsert a contact (contract Contact) by its external id; the newer version wins."""
    upsert(conn, crm_contact, dict(external_id=it["externalId"], crm_id=it.get("crmId"), modified_at=it["modifiedAt"],
                                    data=json.dumps(it, ensure_ascii=False), pulled_at=pulled_at),
            ["external_id"], where_newer="modified_at")


def save_activity(conn: Connection, it: dict, pulled_at: datetime) -> None:
    """Upsert an activity (contract Activity) by its id; the newer version wins."""
    upsert(conn, crm_activity, dict(
        activity_id=it["activityId"], type=it["type"], contact_external_id=it.get("contactExternalId"),
        related_document=it.get("relatedDocument"), occurred_at=it.get("occurredAt"), modified_at=it["modifiedAt"],
        outcome=it.get("outcome"), survey_type=it.get("surveyType"),
        answers=json.dumps(it.get("answers") or [], ensure_ascii=False),
        complaint=json.dumps(it["complaint"], ensure_ascii=False) if it.get("complaint") else None,
        pulled_at=pulled_at), ["activity_id"], where_newer="modified_at")


SAVE = {"leads": save_lead, "contacts": save_contact, "activities": save_activity}


def quarantine(conn: Connection, *, feed: str, item_key: str, reason_code: str, message: str, data: str,
               seen_at: datetime) -> None:
    """Record a pulled record outside the contract, once per (feed, item key, reason): seen again, its
    message, data and ``last_seen`` are updated and ``first_seen`` kept (an upsert: two pulls at the
    same time write one row)."""
    upsert(conn, crm_quarantine, dict(feed=feed, item_key=item_key, reason_code=reason_code, message=message,
                                       data=data, first_seen=seen_at, last_seen=seen_at),
            ["feed", "item_key", "reason_code"], keep=("first_seen",))


def cursor(conn: Connection, feed: str) -> dict | None:
    """A feed's cursor and watermark, or None before its first pull."""
    r = conn.execute(select(crm_cursor).where(crm_cursor.c.feed == feed)).mappings().first()
    return dict(r) if r else None


def save_cursor(conn: Connection, feed: str, cursor: str | None, watermark: str | None, at: datetime) -> None:
    """Upsert a feed's cursor and watermark."""
    upsert(conn, crm_cursor, dict(feed=feed, cursor=cursor, watermark=watermark, updated_at=at), ["feed"])


def leads(conn: Connection) -> list[dict]:
    """Every lead (the columns the showroom report reads), by lead id."""
    c = crm_lead.c
    return [dict(r) for r in conn.execute(select(c.lead_id, c.name, c.mobile, c.status, c.intent_level,
                                                 c.interested_model, c.salesperson, c.lead_source, c.created_at,
                                                 c.modified_at).order_by(c.lead_id)).mappings()]


def activities(conn: Connection, kind: str) -> list[dict]:
    """The activities of one type (raw: answers and complaint as JSON text), by time then id."""
    c = crm_activity.c
    return [dict(r) for r in conn.execute(select(crm_activity).where(c.type == kind)
                                          .order_by(c.occurred_at, c.activity_id)).mappings()]


def reached_calls(conn: Connection) -> set[str]:
    """Documents (RO numbers) a return-visit call reached the customer about."""
    c = crm_activity.c
    return {r[0] for r in conn.execute(select(c.related_document).where(c.type == "RETURN_VISIT_CALL",
                                                                        c.outcome == "REACHED"))}


# ------------------------------------------------------------------------------------ push ledger

def pushed(conn: Connection, kind: str) -> dict[str, dict]:
    """{external id: ledger row} of everything of ``kind`` (CONTACT, TASK) pushed so far."""
    return {r["external_id"]: dict(r) for r in conn.execute(select(crm_push).where(crm_push.c.kind == kind)).mappings()}


def record_push(conn: Connection, *, kind: str, external_id: str, **values) -> None:
    """Upsert the ledger row of one pushed record (natural key: kind, external id)."""
    upsert(conn, crm_push, dict(kind=kind, external_id=external_id, **values), ["kind", "external_id"])


def contacts_to_delete(conn: Connection) -> list[str]:
    """Contacts to delete from the CRM: those in it (SENT) whose master is no longer ACTIVE (merged into
    another, split or erased), then those the retention purge queued (TO_DELETE: the master row is gone)."""
    gone = [r[0] for r in conn.execute(
        select(crm_push.c.external_id).join(master_customer, master_customer.c.master_id == crm_push.c.external_id)
        .where(crm_push.c.kind == "CONTACT", crm_push.c.status == PushStatus.SENT.value,
               master_customer.c.status != MasterStatus.ACTIVE.value))]
    return gone + [r[0] for r in conn.execute(select(crm_push.c.external_id).where(
        crm_push.c.kind == "CONTACT", crm_push.c.status == CRM_DELETE_QUEUED).order_by(crm_push.c.external_id))]


def mark_deleted(conn: Connection, external_id: str) -> bool:
    """A contact deleted from the CRM: DELETED, its content forgotten (a return is pushed again)."""
    return conn.execute(update(crm_push).where(crm_push.c.kind == "CONTACT", crm_push.c.external_id == external_id)
                        .values(status=PushStatus.DELETED.value, content_hash=None, pushed_at=now())).rowcount > 0


def push_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """{kind: {status: records}} of the push ledger."""
    out: dict = {}
    for k, s in conn.execute(select(crm_push.c.kind, crm_push.c.status)).all():
        out.setdefault(k, {}).setdefault(s, 0)
        out[k][s] += 1
    return out
