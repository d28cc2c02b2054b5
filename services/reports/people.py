"""Who a CRM activity is about, as the reports show them: the surviving master customer, a person's
name masked to the surname (王**), a company named in full, the mobile masked (138****5678); and which
service advisor a document (RO number or VIN) belongs to."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, select

from dealersync.privacy import mask_text
from dealersync.resolution.service import resolve_master_id
from dealersync.store.tables import FEED_TABLES, crm_activity, followup_task, master_customer

UNKNOWN = "（未知）"


def masked_name(name: str | None, company: str | None = None, customer_type: str | None = None) -> str:
    """A company's name in full; a person's surname and one ``*`` per further character."""
    if company and (customer_type == "ORGANISATION" or not name):
        return company
    if not name:
        return "（未登记姓名）"
    return name[:1] + "*" * max(len(name) - 1, 1)


def customer(conn: Connection, contact: str | None) -> dict:
    """``{"master_id", "name" (masked), "mobile" (masked)}`` of a CRM contact (its external id is a master id)."""
    if not contact:
        return {"master_id": None, "name": UNKNOWN, "mobile": None}
    mid = resolve_master_id(conn, contact)
    m = conn.execute(select(master_customer.c.name, master_customer.c.company, master_customer.c.customer_type,
                            master_customer.c.primary_mobile).where(master_customer.c.master_id == mid)).first()
    if m is None:
        return {"master_id": mid, "name": UNKNOWN, "mobile": None}
    return {"master_id": mid, "name": masked_name(m.name, m.company, m.customer_type),
            "mobile": mask_text(m.primary_mobile) if m.primary_mobile else None}


def advisor(conn: Connection, document: str | None, at: datetime | None = None) -> str:
    """The service advisor of an RO number, or of a VIN's latest RO closed before ``at``."""
    if not document:
        return UNKNOWN
    ro = FEED_TABLES["repair_orders"]
    a = conn.execute(select(ro.c.advisor).where(ro.c.ro_number == document)).scalar()
    if a:
        return a
    q = select(ro.c.advisor).where(ro.c.vin == document, ro.c.advisor.is_not(None))
    if at is not None:
        q = q.where(ro.c.opened_at <= at)
    return conn.execute(q.order_by(ro.c.opened_at.desc()).limit(1)).scalar() or UNKNOWN


def complaint_status(conn: Connection, master_id: str | None) -> str:
    """The customer's complaint follow-up: 已解决, 处理中 or 待回访 (no follow-up task yet)."""
    if not master_id:
        return "待回访"
    t = conn.execute(select(followup_task.c.status).where(followup_task.c.master_id == master_id,
                                                          followup_task.c.type == "COMPLAINT_FOLLOW_UP")).scalars().all()
    return "已解决" if t and all(x == "DONE" for x in t) else "处理中" if t else "待回访"


def activities(conn: Connection, kind: str) -> list[dict]:
    """CRM activities of one type with answers and complaint parsed."""
    return [dict(r, answers=json.loads(r["answers"] or "[]"), complaint=json.loads(r["complaint"] or "null") or {})
            for r in conn.execute(select(crm_activity).where(crm_activity.c.type == kind)
                                  .order_by(crm_activity.c.occurred_at, crm_activity.c.activity_id)).mappings()]
