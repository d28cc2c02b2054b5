"""Who a CRM activity is about, as the reports show them: the surviving master customer, a person's
name masked to the surname (王**), a company named in full, the mobile masked (138****5678); and which
service advisor a document (RO number or VIN) belongs to."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection

from dealersync.privacy import mask_text
from dealersync.resolution.service import resolve_master_id
from dealersync.store import crm as store_crm
from dealersync.store import dms
from dealersync.store import followups as store_followups
from dealersync.store import customers

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
    m = customers.contact_card(conn, mid)
    if m is None:
        return {"master_id": mid, "name": UNKNOWN, "mobile": None}
    return {"master_id": mid, "name": masked_name(m["name"], m["company"], m["customer_type"]),
            "mobile": mask_text(m["primary_mobile"]) if m["primary_mobile"] else None}


def advisor(conn: Connection, document: str | None, at: datetime | None = None) -> str:
    """The service advisor of an RO number, or of a VIN's latest RO closed before ``at``."""
    if not document:
        return UNKNOWN
    ro = dms.repair_order(conn, document)
    if ro and ro["advisor"]:
        return ro["advisor"]
    return dms.latest_advisor(conn, document, at) or UNKNOWN


def complaint_status(conn: Connection, master_id: str | None) -> str:
    """The customer's complaint follow-up: 已解决, 处理中 or 待回访 (no follow-up task yet)."""
    if not master_id:
        return "待回访"
    t = store_followups.complaint_statuses(conn, master_id)
    return "已解决" if t and all(x == "DONE" for x in t) else "处理中" if t else "待回访"


def activities(conn: Connection, kind: str) -> list[dict]:
    """CRM activities of one type with answers and complaint parsed."""
    return [dict(r, answers=json.loads(r["answers"] or "[]"), complaint=json.loads(r["complaint"] or "null") or {})
            for r in store_crm.activities(conn, kind)]
