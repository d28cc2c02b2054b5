"""The sandbox CRM's rules (``shared/specs/crm.openapi.yaml``): what a contact or a task must hold and
how an upsert merges into what the CRM holds. Pure functions and constants: no state, no HTTP; the app
(``crm.py``) answers with them, the state (``crm_state.py``) keeps the records.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Callable

MAX_BATCH = 100
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
SEGMENTS = {"POTENTIAL", "NEW", "BASE", "VIP", "DEFEATED", "LOST"}
TASK_TYPES = {"RETURN_VISIT", "MAINTENANCE_REMINDER", "FIRST_SERVICE_REMINDER", "LOST_CUSTOMER_RECOVERY",
              "COMPLAINT_FOLLOW_UP", "THREE_GUARANTEE_ALERT", "BIRTHDAY_GREETING"}
MARKETING_TASKS = {"MAINTENANCE_REMINDER", "FIRST_SERVICE_REMINDER", "LOST_CUSTOMER_RECOVERY", "BIRTHDAY_GREETING"}
CONTACT_FIELDS = ["externalId", "name", "customerType", "mobile", "phone", "email", "address", "segment",
                  "marketingConsent", "vins", "ownerAdvisor", "lastServiceDate"]
TASK_FIELDS = ["externalId", "contactExternalId", "type", "dueDate", "subject", "relatedDocument", "assignee", "status"]
CSI_FACTORS = ["SERVICE_INITIATION", "SERVICE_ADVISOR", "SERVICE_FACILITY", "VEHICLE_PICKUP", "SERVICE_QUALITY"]


def parse_time(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "+") if "T" in v else v)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def content_hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_contact(r: dict) -> tuple[str, str] | None:
    if not isinstance(r, dict):
        return "INVALID_FIELD", "a contact must be an object"
    for f in ("externalId", "name"):
        if not isinstance(r.get(f), str) or not r.get(f):
            return "MISSING_FIELD", f"{f} is required"
    if r.get("customerType") not in (None, "PERSON", "ORGANISATION"):
        return "INVALID_FIELD", "customerType must be PERSON or ORGANISATION"
    m = r.get("mobile")
    if m is not None and (not isinstance(m, str) or not MOBILE.match(m)):
        return "INVALID_FIELD", "mobile must be 11 digits starting 13-19"
    if r.get("segment") is not None and r.get("segment") not in SEGMENTS:
        return "INVALID_FIELD", "segment unknown"
    for f in ("phone", "email", "address", "ownerAdvisor"):
        if r.get(f) is not None and not isinstance(r.get(f), str):
            return "INVALID_FIELD", f"{f} must be a string"
    if r.get("marketingConsent") is not None and not isinstance(r.get("marketingConsent"), bool):
        return "INVALID_FIELD", "marketingConsent must be true, false or null"
    if r.get("vins") is not None and (not isinstance(r["vins"], list) or not all(isinstance(v, str) for v in r["vins"])):
        return "INVALID_FIELD", "vins must be a list of strings"
    d = r.get("lastServiceDate")
    if d is not None and (not isinstance(d, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", d)):
        return "INVALID_FIELD", "lastServiceDate must be YYYY-MM-DD"
    return None


def check_task(r: dict, contact_of: Callable[[str], dict | None]) -> tuple[str, str] | None:
    """``contact_of(externalId)``: the CRM's contact record (``{"data": ...}``) or None."""
    if not isinstance(r, dict):
        return "INVALID_FIELD", "a task must be an object"
    for f in ("externalId", "contactExternalId", "type", "dueDate"):
        if not isinstance(r.get(f), str) or not r.get(f):
            return "MISSING_FIELD", f"{f} is required"
    if r["type"] not in TASK_TYPES:
        return "INVALID_FIELD", "type unknown"
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", r["dueDate"]):
        return "INVALID_FIELD", "dueDate must be YYYY-MM-DD"
    if r.get("status") not in (None, "OPEN", "DONE", "CANCELLED"):
        return "INVALID_FIELD", "status must be OPEN, DONE or CANCELLED"
    for f in ("subject", "relatedDocument", "assignee"):
        if r.get(f) is not None and not isinstance(r.get(f), str):
            return "INVALID_FIELD", f"{f} must be a string"
    contact = contact_of(r["contactExternalId"])
    if contact is None:
        return "UNKNOWN_CONTACT", f"no contact {r['contactExternalId']}"
    if r["type"] in MARKETING_TASKS and contact["data"].get("marketingConsent") is not True:
        return "CONSENT_REQUIRED", f"{r['type']} needs the contact's marketing consent"
    return None


def merge_task(old: dict | None, r: dict) -> dict:
    """A task as the CRM holds it after an upsert of ``r`` over ``old`` (its record or None): a new task
    is OPEN unless told otherwise; a task done in the CRM is not reopened by an upsert."""
    data = {k: r.get(k) for k in TASK_FIELDS if k in r}
    if old is None:
        data.setdefault("status", "OPEN")
    elif old["data"].get("status") == "DONE" and data.get("status", "OPEN") == "OPEN":
        data["status"] = "DONE"
    return {**(old["data"] if old else {}), **data}
