"""CRM sync jobs: pull leads, contacts and activities incrementally; push master customers and
follow-up tasks. Each CRM page pulled and each batch pushed commits with its ledger entry, so a crash
resumes where it stopped and a re-run sends nothing the CRM already holds.

A pulled record outside the contract (``shared/specs/crm.openapi.yaml``: a required field missing or
of the wrong type, or a value the store refuses) goes to ``crm_quarantine`` with a reason and the pull
goes on (issue #15). Free text pushed to the CRM (a task's subject, a contact's address) is scrubbed of
phone, ID and e-mail patterns; the count is kept in ``crm_push.scrubbed`` (issue #16 item 2)."""
from __future__ import annotations

from dealersync import clock as dealer_clock
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, StatementError

from dealersync.connectors.crm import MAX_BATCH, CrmClient
from dealersync.privacy import scrub_text
from dealersync.store import crm as store_crm
from dealersync.store.tables import PushStatus, TaskStatus
from dealersync.store import followups as store_followups
from dealersync.store import customers

from dealersync.services.followups import Rules, generate_tasks, master_facts, save_tasks, segments

log = logging.getLogger(__name__)
FEEDS = ("leads", "contacts", "activities")
# the contract's required fields per feed (crm.openapi.yaml Lead, Contact, Activity), each a string
REQUIRED = {"leads": ("leadId", "modifiedAt"), "contacts": ("externalId", "modifiedAt"),
            "activities": ("activityId", "type", "modifiedAt")}
KEY = {"leads": "leadId", "contacts": "externalId", "activities": "activityId"}
ACTIVITY_TYPES = {"RETURN_VISIT_CALL", "SURVEY", "COMPLAINT"}
PUSHED = (PushStatus.SENT.value, PushStatus.ERROR.value)   # on the ledger, the CRM answered


def _now() -> datetime:
    return dealer_clock.now()


# ------------------------------------------------------------------------------------ pull

def _store_item(conn, feed: str, it: dict, now: datetime) -> None:
    store_crm.SAVE[feed](conn, it, now)


def contract_problem(feed: str, it) -> tuple[str, str] | None:
    """(reason code, message) when a pulled record is outside the contract, else None. Messages name
    the field, never a value."""
    if not isinstance(it, dict):
        return "NOT_AN_OBJECT", f"a {feed} item that is a JSON {type(it).__name__}, not an object"
    for f in REQUIRED[feed]:
        v = it.get(f)
        if v is None or v == "":
            return "MISSING_FIELD", f"{feed[:-1]} without {f} (required by the contract)"
        if not isinstance(v, str):
            return "WRONG_TYPE", f"{feed[:-1]} {f} is a JSON {type(v).__name__}, not a string"
    try:
        datetime.fromisoformat(it["modifiedAt"].replace("Z", "+00:00"))
    except ValueError:
        return "BAD_TIMESTAMP", f"{feed[:-1]} modifiedAt is not an ISO 8601 date-time"
    if feed == "activities":
        if it["type"] not in ACTIVITY_TYPES:
            return "WRONG_VALUE", "activity type outside the contract's enum"
        if it.get("answers") is not None and not isinstance(it["answers"], list):
            return "WRONG_TYPE", "activity answers is not a list"
    return None


def _item_key(feed: str, it) -> str:
    k = it.get(KEY[feed]) if isinstance(it, dict) else None
    if isinstance(k, str) and k and len(k) <= 64:
        return k
    return "sha256:" + hashlib.sha256(json.dumps(it, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _quarantine(conn, feed: str, it, reason: str, message: str, now: datetime) -> None:
    key = _item_key(feed, it)
    store_crm.quarantine(conn, feed=feed, item_key=key, reason_code=reason, message=message,
                         data=json.dumps(it, ensure_ascii=False, default=str)[:20000], seen_at=now)
    log.warning("CRM %s record %s quarantined: %s", feed, key, message)


def pull(engine: Engine, client: CrmClient, feeds=FEEDS, modified_since: str | None = None,
         stateless: bool = False) -> dict:
    """Pull each feed from its persisted cursor (or watermark). ``stateless`` (backfills): read from
    ``modified_since`` and never move the persisted cursor or watermark. Returns per feed the items
    stored, the pages, the watermark and the records quarantined (outside the contract, or refused by
    the store: each in its own savepoint, so the page and the pull go on)."""
    out = {}
    for feed in feeds:
        with engine.begin() as conn:
            row = store_crm.cursor(conn, feed)
        cursor = None if stateless or row is None else row["cursor"]
        since = modified_since if (stateless or row is None) else (row["watermark"] or modified_since)
        items_n = pages = bad = 0
        watermark = None if row is None else row["watermark"]
        for items, nxt in client.pages(feed, modified_since=since, cursor=cursor):
            now = _now()
            with engine.begin() as conn:
                for it in items:
                    problem = contract_problem(feed, it)
                    if problem is None:
                        try:
                            with conn.begin_nested():
                                _store_item(conn, feed, it, now)
                        except (DBAPIError, StatementError) as e:   # too long for its column, a NUL byte...
                            orig = getattr(e, "orig", None) or e
                            problem = ("REFUSED_BY_STORE", f"the store refused this {feed[:-1]}: "
                                                           f"{type(orig).__name__}")
                    if problem is not None:
                        _quarantine(conn, feed, it, *problem, now)
                        bad += 1
                        continue
                    if watermark is None or it["modifiedAt"] > watermark:
                        watermark = it["modifiedAt"]
                if not stateless:
                    store_crm.save_cursor(conn, feed, nxt, watermark, now)
            items_n += len(items)
            pages += 1
        out[feed] = {"items": items_n - bad, "pages": pages, "watermark": watermark, "quarantined": bad}
    return out


# ------------------------------------------------------------------------------------ push

def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass
class PushStats:
    considered: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    retried_singly: int = 0
    deleted: int = 0
    batches: int = 0
    error_codes: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def build_contacts(engine: Engine, day: date, rules: Rules) -> list[dict]:
    """One CRM contact per active master: golden fields, segment, consent, vehicles, last service."""
    with engine.begin() as conn:
        m = pd.DataFrame(customers.active(conn))
        if m.empty:
            return []
        facts = master_facts(conn)
        seg = segments(facts, day, rules)
        vins = pd.DataFrame(customers.vehicles(conn), columns=["master_id", "vin"]).drop_duplicates().sort_values(["master_id", "vin"])
        vin_lists = vins.groupby("master_id")["vin"].agg(list)
        phones = pd.DataFrame(customers.primary_phones(conn), columns=["master_id", "value"]).drop_duplicates("master_id").set_index("master_id")["value"]
    m = m.astype(object).where(m.notna(), None)
    out = []
    for r in m.itertuples(index=False):
        last_service = facts.at[r.master_id, "last_service"] if r.master_id in facts.index else None
        out.append({
            "externalId": r.master_id, "name": r.name or r.company or "客户",
            "customerType": r.customer_type if r.customer_type in ("PERSON", "ORGANISATION") else "PERSON",
            "mobile": r.primary_mobile, "phone": phones.get(r.master_id) if r.master_id in phones.index else None,
            "email": r.primary_email,
            "address": r.address, "segment": seg.get(r.master_id, "POTENTIAL"),
            "marketingConsent": None if r.marketing_consent is None else bool(r.marketing_consent),
            "vins": vin_lists.get(r.master_id, []), "ownerAdvisor": None,
            "lastServiceDate": None if last_service is None or pd.isna(last_service) else pd.Timestamp(last_service).date().isoformat(),
        })
    return out


def _ledger(engine: Engine, kind: str) -> dict:
    with engine.begin() as conn:
        return store_crm.pushed(conn, kind)


def scrub_records(records: list[dict], fields: tuple[str, ...]) -> dict[str, int]:
    """Scrub phone, ID and e-mail patterns from the free-text ``fields`` of outbound records, in place:
    {externalId: patterns removed} (dealersync.privacy.scrub_text)."""
    counts = {}
    for r in records:
        n = 0
        for f in fields:
            if f in r:
                r[f], k = scrub_text(r[f])
                n += k
        counts[r["externalId"]] = n
    return counts


def _record(conn, kind: str, ext: str, h: str | None, res: dict, attempts: int, scrubbed: int | None = None) -> None:
    status = (PushStatus.SENT if res["status"] != "error" else PushStatus.ERROR).value
    store_crm.record_push(conn, kind=kind, external_id=ext, content_hash=h, status=status, result=res["status"],
                          crm_id=res.get("crmId"), error_code=res.get("errorCode"),
                          message=(res.get("message") or "")[:500] or None, attempts=attempts, pushed_at=_now(),
                          scrubbed=scrubbed)


def _push(engine: Engine, kind: str, records: list[dict], send, st: PushStats, batch_size: int = MAX_BATCH,
          scrubbed: dict[str, int] | None = None) -> None:
    """Send records whose content the CRM does not hold yet, in batches; each batch's results commit with
    the ledger. Records in error are retried one by one once (a bad neighbour never blocks a batch).
    ``scrubbed``: patterns removed per externalId, recorded with each push."""
    scrubbed = scrubbed or {}
    ledger = _ledger(engine, kind)
    todo = []
    for rec in records:
        h = _hash(rec)
        old = ledger.get(rec["externalId"])
        st.considered += 1
        if old is not None and old["content_hash"] == h and old["status"] in PUSHED:
            continue   # the CRM holds this content already (or rejected exactly this content)
        todo.append((rec, h, (old or {}).get("attempts", 0)))
    for i in range(0, len(todo), batch_size):
        chunk = todo[i:i + batch_size]
        results = send([r for r, _, _ in chunk])
        st.batches += 1
        retry = []
        with engine.begin() as conn:
            for (rec, h, attempts), res in zip(chunk, results):
                if res.get("status") == "error":
                    retry.append((rec, h, attempts))
                    continue
                _record(conn, kind, rec["externalId"], h, res, attempts + 1, scrubbed.get(rec["externalId"]))
                st.sent += 1
                setattr(st, res["status"], getattr(st, res["status"]) + 1)
        for rec, h, attempts in retry:
            res = send([rec])[0]
            st.retried_singly += 1
            with engine.begin() as conn:
                _record(conn, kind, rec["externalId"], h, res, attempts + 2, scrubbed.get(rec["externalId"]))
            if res.get("status") == "error":
                st.errors += 1
                st.error_codes[res.get("errorCode", "?")] = st.error_codes.get(res.get("errorCode", "?"), 0) + 1
                log.warning("CRM refused %s %s: %s %s", kind.lower(), rec["externalId"], res.get("errorCode"),
                            res.get("message"))
            else:
                st.sent += 1
                setattr(st, res["status"], getattr(st, res["status"]) + 1)


def push_contacts(engine: Engine, client: CrmClient, day: date, rules: Rules, batch_size: int = MAX_BATCH) -> dict:
    st = PushStats()
    _push(engine, "CONTACT", build_contacts(engine, day, rules), client.upsert_contacts, st, batch_size)
    # masters merged into others, split or erased: their contacts leave the CRM (tasks are re-pointed); so do
    # those of masters the retention purge removed (queued on this ledger as TO_DELETE, the master row gone)
    with engine.begin() as conn:
        gone = store_crm.contacts_to_delete(conn)
    for ext in gone:   # a crash before the ledger says DELETED repeats the DELETE: a 404 then, nothing twice
        client.delete_contact(ext)
        with engine.begin() as conn:
            store_crm.mark_deleted(conn, ext)
        st.deleted += 1
    return st.as_dict()


def plan_tasks(engine: Engine, day: date, rules: Rules) -> dict:
    """Generate the day's tasks into ``followup_task`` (idempotent) and re-point tasks of merged masters."""
    with engine.begin() as conn:
        return save_tasks(conn, generate_tasks(conn, day, rules), day)


def task_payloads(engine: Engine) -> list[dict]:
    with engine.begin() as conn:
        rows = store_followups.all_tasks(conn)
    # status goes out only to close a task: an upsert never says OPEN, so no CRM reopens a task its
    # user closed (the contract's default for a new task is OPEN)
    return [{"externalId": r["external_id"], "contactExternalId": r["master_id"], "type": r["type"],
             "dueDate": r["due_date"].isoformat(), "subject": r["subject"], "relatedDocument": r["related_document"],
             "assignee": r["assignee"], **({"status": r["status"]} if r["status"] != TaskStatus.OPEN else {})} for r in rows]


def push_tasks(engine: Engine, client: CrmClient, batch_size: int = MAX_BATCH) -> dict:
    st = PushStats()
    records = task_payloads(engine)
    scrubbed = scrub_records(records, ("subject",))
    _push(engine, "TASK", records, client.upsert_tasks, st, batch_size, scrubbed)
    return st.as_dict()


def push(engine: Engine, client: CrmClient, day: date, rules: Rules, batch_size: int = MAX_BATCH) -> dict:
    contacts = push_contacts(engine, client, day, rules, batch_size)
    planned = plan_tasks(engine, day, rules)
    tasks = push_tasks(engine, client, batch_size)
    return {"contacts": contacts, "tasks_planned": planned, "tasks": tasks, "requests": client.requests_sent}


def ledger_counts(engine: Engine) -> dict:
    with engine.begin() as conn:
        return store_crm.push_counts(conn)

