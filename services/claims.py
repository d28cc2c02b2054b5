"""Warranty claims to the OEM portal, exactly once.

A claim job per DMS warranty claim keeps the *local technical status* (DRAFT, VALIDATION_FAILED, QUEUED,
SUBMITTING, SUBMIT_FAILED, SUBMITTED) apart from the *OEM status* (SUBMITTED ... SETTLED), and every
status the portal reports is kept as a snapshot with its raw word.

Exactly-once effect: a submission's BODID (also its Idempotency-Key) is a UUID derived from (dealer,
claim number, submission count), and the exact payload is stored with it *before* the request is sent.
A crash, a task retry or a retry from the Prefect UI re-sends the same bytes under the same key, which
the portal answers with its first answer; a DUPLICATE_CLAIM answer is reconciled from the ack it carries.
A RETURNED claim is resubmitted after correction with ClaimSubmissionCountNumeric + 1 (a new key); the
job then starts a fresh set of OEM figures (status, amounts, settlement), the earlier submission's kept
in its snapshots and submissions (its history).
No name, phone or ID number travels in a claim: the customer is a master customer id, and the free text
(故障现象, cause, correction, part descriptions) is scrubbed of phone, ID and e-mail patterns before the
payload is stored; ``claim_submission.scrubbed`` records how many (issue #16 item 2).
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import pandas as pd
from sqlalchemy import Connection, Engine

from dealersync.connectors.oem import OemClient
from dealersync.errors import TransientError
from dealersync.privacy import mask_text, render_exception, scrub_fields
from dealersync.schemas.checks import is_vin
from dealersync.store import claims as store_claims
from dealersync.store.ledger import holder
from dealersync.store.tables import JobStatus, SubmissionState

log = logging.getLogger(__name__)
BODID_NAMESPACE = uuid.UUID("6f1c1f0e-3d7e-4a55-9a43-2f8f4c1d0a11")
CLAIM_TYPE_CODES = {"保修": "WARRANTY", "三包": "THREE_GUARANTEE", "召回": "RECALL", "首保": "FIRST_SERVICE",
                    "技术服务活动": "CAMPAIGN", "预授权": "PRE_AUTHORIZATION"}
FINAL = ("REJECTED", "SETTLED")
PAYABLE = ("APPROVED", "PARTIALLY_APPROVED", "SETTLED")
FREE_TEXT = frozenset({"ComplaintDescription", "CauseDescription", "CorrectionDescription", "ItemIdDescription"})


def _now() -> datetime:
    return dealer_clock.now()


def bodid(dealer: str, claim_no: str, count: int, revision: int = 0) -> str:
    """The BODID / Idempotency-Key of a submission: the same inputs give the same key, on any machine."""
    return str(uuid.uuid5(BODID_NAMESPACE, f"{dealer}:{claim_no}:{count}" + (f":{revision}" if revision else "")))


def content_hash(payload: dict) -> str:
    import hashlib
    body = {k: v for k, v in payload.items() if k != "ApplicationArea"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# ------------------------------------------------------------------------------------ jobs from the DMS

def sync_jobs(conn: Connection, window_days: int) -> int:
    """A claim job (DRAFT) for every DMS warranty claim not yet known; RO completion and the claim
    window's last day recorded. Idempotent under concurrency. Returns the number of new jobs."""
    return store_claims.add_jobs_from_dms(conn, window_days)


def build_claim(conn: Connection, job: dict, dealer_number: str, creator: str = "DEALERSYNC", revision: int = 0) -> dict:
    """ProcessWarrantyClaim from the DMS claim, its repair order and the RO's lines."""
    c, o, ls, master = store_claims.claim_sources(conn, job["dealer_code"], job["claim_no"])
    labor_codes = [x.strip() for x in (c["labor_op_codes"] or "").replace(",", ";").split(";") if x.strip()]
    labor_lines = {l["code"]: l for l in ls if l["line_type"] == "工时"}
    labor = [{"LaborOperationID": code,
              "LaborAllowanceHoursNumeric": float(labor_lines[code]["hours"]) if code in labor_lines and labor_lines[code]["hours"] is not None else 1.0}
             for code in labor_codes]
    parts = []
    for l in ls:
        if l["line_type"] != "配件" or l["pay_type"] not in ("索赔", None):
            continue
        causal = (l["code"] == c["causal_part_no"]) if c["causal_part_no"] else bool(l["causal_part"])
        parts.append({"ItemID": l["code"], "ItemIdDescription": l["description"] or "",
                      "Quantity": float(l["quantity"] or 1),
                      "UnitPriceAmount": {"value": float(l["unit_price"] or 0), "currencyID": "CNY"},
                      "CausalPartIndicator": bool(causal)})
    if c["causal_part_no"] and not any(p["ItemID"] == c["causal_part_no"] for p in parts):
        parts.append({"ItemID": c["causal_part_no"], "Quantity": 1.0, "CausalPartIndicator": True})
    opened = o["opened_at"].date().isoformat() if o and o["opened_at"] else None
    done = job["ro_completed"].isoformat() if job["ro_completed"] else None
    count = job["submission_count"]
    b = bodid(job["dealer_code"], job["claim_no"], count, revision)
    header = {
        "ClaimNumberString": job["claim_no"], "ClaimTypeString": CLAIM_TYPE_CODES.get(c["claim_type"] or "保修", "WARRANTY"),
        "ClaimSubmissionCountNumeric": count,
        "PriorClaimNumberString": job["oem_claim_number"] if count > 1 else None,
        "AuthorizationNumberString": c["authorization_no"],
        "RepairOrder": {"DocumentID": c["ro_number"], "RepairOrderOpenedDate": opened, "RepairOrderCompletedDate": done},
        "Vehicle": {"VIN": c["vin"], "InDistanceMeasure": {"value": int(c["mileage_km"] or (o or {}).get("mileage_km") or 0),
                                                           "unitCode": "KMT"}},
        "ClaimedAmount": {"value": float(c["claim_amount"] or 0), "currencyID": "CNY"},
    }
    if master:
        header["CustomerPartyRef"] = {"MasterCustomerID": master}
    return {
        "releaseID": "5.7.4", "systemEnvironmentCode": "Test",
        "ApplicationArea": {"Sender": {"CreatorNameCode": creator, "DealerNumberID": dealer_number},
                            "CreationDateTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "BODID": b},
        "WarrantyClaim": {
            "WarrantyClaimHeader": header,
            "Job": [{"JobNumberString": "1",
                     "CodesAndComments": {"ComplaintCode": c["complaint_code"] or "", "ComplaintDescription": c["complaint"] or "",
                                          "CauseCode": c["cause_code"] or "", "CauseDescription": c["cause"] or "",
                                          "DefectCode": c["defect_code"] or "", "CorrectionDescription": c["correction"] or ""},
                     "ServiceLabor": labor, "ServiceParts": parts}],
        },
    }


def validate_claim(payload: dict, labor_codes: set[str] | None, today: date, window_days: int) -> list[dict]:
    """The portal's rules, checked before sending: mandatory fields, VIN check digit, exactly one causal
    part, labor operations from the OEM's code table, the claim window."""
    errs = []
    h = payload["WarrantyClaim"]["WarrantyClaimHeader"]

    def e(code, path, msg):
        errs.append({"ErrorCode": code, "FieldPath": path, "Message": msg})
    for path, v in [("RepairOrder.RepairOrderOpenedDate", h["RepairOrder"]["RepairOrderOpenedDate"]),
                    ("RepairOrder.RepairOrderCompletedDate", h["RepairOrder"]["RepairOrderCompletedDate"]),
                    ("Vehicle.VIN", h["Vehicle"]["VIN"]),
                    ("CodesAndComments.ComplaintCode", payload["WarrantyClaim"]["Job"][0]["CodesAndComments"]["ComplaintCode"]),
                    ("CodesAndComments.CauseCode", payload["WarrantyClaim"]["Job"][0]["CodesAndComments"]["CauseCode"])]:
        if not v:
            e("MANDATORY_FIELD_MISSING", path, f"{path} is required")
    vin = h["Vehicle"]["VIN"]
    if vin and not bool(is_vin(pd.Series([vin], dtype="str")).iloc[0]):
        e("INVALID_VIN", "Vehicle.VIN", f"VIN {vin} fails the ISO 3779 check digit")
    causal = sum(1 for j in payload["WarrantyClaim"]["Job"] for p in j["ServiceParts"] if p["CausalPartIndicator"])
    if causal == 0:
        e("MAIN_PART_MISSING", "Job.ServiceParts", "exactly one causal part is required")
    elif causal > 1:
        e("MULTIPLE_MAIN_PARTS", "Job.ServiceParts", f"{causal} causal parts; exactly one is allowed")
    if labor_codes is not None:
        for j in payload["WarrantyClaim"]["Job"]:
            for lab in j["ServiceLabor"]:
                if lab["LaborOperationID"] not in labor_codes:
                    e("INVALID_REFERENCE", "Job.ServiceLabor.LaborOperationID",
                      f"labor operation {lab['LaborOperationID']} is not in the OEM's code table")
    done = h["RepairOrder"]["RepairOrderCompletedDate"]
    if done and (today - date.fromisoformat(done)).days > window_days:
        e("CLAIM_WINDOW_EXPIRED", "RepairOrder.RepairOrderCompletedDate",
          f"completed {done}: more than {window_days} days ago")
    return errs


def labor_code_table(conn: Connection) -> set[str] | None:
    """The OEM's labor-operation codes as dropped on SFTP (LABOROPS) or fetched from the portal; None
    when neither is known yet (the portal then checks)."""
    return store_claims.labor_codes(conn) or None


# ------------------------------------------------------------------------------------ prepare and send

def prepare(engine: Engine, client: OemClient, today: date, window_days: int, labor_codes: set[str] | None = None) -> dict:
    """DRAFT jobs, and VALIDATION_FAILED ones whose data has changed since, -> QUEUED (payload and BODID
    stored) or VALIDATION_FAILED (errors stored). A payload the portal refused (422) goes again only once
    corrected, under a new key (revision + 1). Every status change is a compare-and-set from DRAFT or
    VALIDATION_FAILED: a job another process prepared or sent meanwhile is left as it is."""
    out = {"queued": 0, "validation_failed": 0, "unchanged_failures": 0}
    with engine.begin() as conn:
        codes = labor_codes if labor_codes is not None else labor_code_table(conn)
    if codes is None:
        codes = {op["LaborOperationID"] for op in client.labor_operations()}
    with engine.begin() as conn:
        store_claims.refresh_completion(conn, window_days)
        ids = store_claims.preparable_ids(conn)
    for i in range(0, len(ids), 500):   # progress commits every 500 claims
        with engine.begin() as conn:
            _prepare_some(conn, client, ids[i:i + 500], codes, today, window_days, out)
    return out


def _prepare_some(conn: Connection, client: OemClient, ids: list[int], codes, today: date, window_days: int,
                  out: dict) -> None:
    for job in store_claims.preparable_jobs(conn, ids):
        last = store_claims.last_submission(conn, job["dealer_code"], job["claim_no"], job["submission_count"])
        revision = 0 if last is None else last["revision"] + (1 if last["state"] == "REJECTED" else 0)
        payload = build_claim(conn, job, client.s.dealer_number, client.s.creator_name_code, revision)
        scrubbed = scrub_fields(payload, FREE_TEXT)   # no phone, ID or e-mail leaves in free text
        h = content_hash(payload)
        if last is not None and last["state"] == "REJECTED" and last["content_hash"] == h:
            out["unchanged_failures"] += 1    # the portal refused exactly this: wait for a correction
            continue
        errs = validate_claim(payload, codes, today, window_days)
        master = (payload["WarrantyClaim"]["WarrantyClaimHeader"].get("CustomerPartyRef") or {}).get("MasterCustomerID")
        if errs:
            if store_claims.set_job_status(conn, job["id"], JobStatus.VALIDATION_FAILED, store_claims.PREPARABLE,
                                           errors=json.dumps(errs, ensure_ascii=False), master_id=master):
                out["validation_failed"] += 1
            continue
        if last is None or last["state"] == "REJECTED":
            store_claims.add_submission(
                conn, dealer_code=job["dealer_code"], claim_no=job["claim_no"],
                submission_count=job["submission_count"], revision=revision,
                bodid=payload["ApplicationArea"]["BODID"], content_hash=h,
                payload=json.dumps(payload, ensure_ascii=False), scrubbed=scrubbed)
        claimed = payload["WarrantyClaim"]["WarrantyClaimHeader"]["ClaimedAmount"]["value"]
        if store_claims.set_job_status(conn, job["id"], JobStatus.QUEUED, store_claims.PREPARABLE,
                                       errors=None, master_id=master, claimed_amount=claimed):
            out["queued"] += 1


@dataclass
class SendStats:
    sent: int = 0
    accepted: int = 0
    replayed: int = 0
    duplicates_reconciled: int = 0
    rejected: int = 0
    failed: int = 0
    held_elsewhere: int = 0   # being sent by another process at the same time
    errors: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


SENDABLE = (JobStatus.QUEUED.value, JobStatus.SUBMIT_FAILED.value, JobStatus.SUBMITTING.value)


def _send_one(engine: Engine, client: OemClient, sub: dict, st: SendStats, me: str, stale_seconds: float) -> None:
    dealer, claim = sub["dealer_code"], sub["claim_no"]
    with engine.begin() as conn:   # SENDING is on disk, held by this process, before the request leaves
        if not store_claims.take_submission(conn, sub, me, stale_seconds):
            st.held_elsewhere += 1
            return
        store_claims.set_claim_status(conn, dealer, claim, JobStatus.SUBMITTING, SENDABLE)
    try:
        ans = client.submit_claim(json.loads(sub["payload"]), sub["bodid"])
    except TransientError as e:
        with engine.begin() as conn:
            store_claims.set_claim_status(conn, dealer, claim, JobStatus.SUBMIT_FAILED, (JobStatus.SUBMITTING.value,),
                                          last_error=render_exception(e)[:500])
        st.failed += 1
        return
    st.sent += 1
    answer = json.dumps(ans.body, ensure_ascii=False)[:4000]
    with engine.begin() as conn:
        if ans.status in (200, 202) or (ans.status == 409 and "DUPLICATE_CLAIM" in ans.error_codes):
            ack = ans.body if ans.status != 409 else ans.body.get("DuplicateOf") or {}
            store_claims.record_answer(conn, sub["id"], me, SubmissionState.ACKED, ans.status, answer, _now())
            store_claims.acknowledge(conn, dealer, claim, oem_status_raw="已上报",
                                     oem_claim_number=ack.get("OEMClaimNumberString"), last_error=None, errors=None)
            if ans.status == 202:
                st.accepted += 1
            elif ans.status == 200:
                st.replayed += 1
            else:
                st.duplicates_reconciled += 1
        elif ans.status == 422:
            store_claims.record_answer(conn, sub["id"], me, SubmissionState.REJECTED, ans.status, answer)
            store_claims.set_claim_status(conn, dealer, claim, JobStatus.VALIDATION_FAILED,
                                          (JobStatus.SUBMITTING.value,),
                                          errors=json.dumps(ans.body.get("Errors"), ensure_ascii=False))
            st.rejected += 1
            for code in ans.error_codes:
                st.errors[code] = st.errors.get(code, 0) + 1
        else:   # 409 IDEMPOTENCY_KEY_REUSED: our stored bytes differ from what the portal holds: a bug, stop here
            store_claims.record_answer(conn, sub["id"], me, SubmissionState.FAILED, ans.status, answer)
            store_claims.set_claim_status(conn, dealer, claim, JobStatus.SUBMIT_FAILED, (JobStatus.SUBMITTING.value,),
                                          last_error=mask_text(answer)[:500])
            st.failed += 1


def send_queued(engine: Engine, client: OemClient, workers: int = 4, limit: int | None = None,
                stale_seconds: float = 600.0) -> dict:
    """Send every prepared or interrupted submission (PREPARED, SENDING after a crash, FAILED after
    exhausted retries) with its stored BODID and bytes. Each is sent by one process only: one being
    sent by another live process is counted ``held_elsewhere`` (``stale_seconds``: when a sender on
    another host counts as gone)."""
    with engine.begin() as conn:
        subs = store_claims.due_submissions(conn, limit)
    me = holder(uuid.uuid4().hex[:8])
    st = SendStats()
    if workers <= 1:
        for s in subs:
            _send_one(engine, client, s, st, me, stale_seconds)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda s: _send_one(engine, client, s, st, me, stale_seconds), subs))
    return st.as_dict()


def push(engine: Engine, client: OemClient, today: date, window_days: int, workers: int = 4) -> dict:
    with engine.begin() as conn:
        new = sync_jobs(conn, window_days)
    prepared = prepare(engine, client, today, window_days)
    sent = send_queued(engine, client, workers)
    return {"new_jobs": new, **prepared, **sent}


def resubmit(engine: Engine, claim_no: str, dealer: str | None = None) -> dict:
    """A RETURNED claim, corrected in the DMS, goes again with ClaimSubmissionCountNumeric + 1."""
    with engine.begin() as conn:
        job = store_claims.find_job(conn, claim_no, dealer)
        if job is None:
            from dealersync.errors import ConfigurationError
            raise ConfigurationError(f"no claim {claim_no}")
        if job["oem_status"] != "RETURNED" and job["local_status"] != "VALIDATION_FAILED":
            from dealersync.errors import ConfigurationError
            raise ConfigurationError(f"claim {claim_no} is {job['oem_status'] or job['local_status']}: only a RETURNED "
                                     f"(or locally failed) claim is resubmitted")
        count = job["submission_count"] + (1 if job["oem_status"] == "RETURNED" else 0)
        if job["local_status"] == "VALIDATION_FAILED" and job["oem_status"] != "RETURNED":
            store_claims.drop_unsent_submission(conn, job["dealer_code"], claim_no, count)
        fresh = {}
        if count > job["submission_count"]:   # a new submission: a fresh set of OEM figures; the returned
            # submission's stay in claim_status_snapshot and claim_submission under its own count
            fresh = dict(oem_status=None, oem_status_raw=None, to_be_paid=None, settlement_date=None,
                         payment_cycle=None, last_error=None)
        store_claims.update_job(conn, job["id"], submission_count=count, local_status=JobStatus.DRAFT.value,
                                errors=None, **fresh)
    return {"claim_no": claim_no, "submission_count": count}


# ------------------------------------------------------------------------------------ status

def apply_status(conn: Connection, rec: dict, dealer: str) -> bool:
    """Record a reconciliation as an immutable snapshot and move the job's OEM status forward."""
    claim, count = rec["ClaimNumberString"], rec["ClaimSubmissionCountNumeric"]
    values = dict(
        dealer_code=dealer, claim_no=claim, submission_count=count, status_code=rec["ClaimStatusCode"],
        status_raw=rec.get("OEMStatusRaw"), to_be_paid=(rec.get("ToBePaidAmount") or {}).get("value"),
        body=json.dumps(rec, ensure_ascii=False), updated_at=rec["UpdatedDateTime"], received_at=_now())
    new = store_claims.add_snapshot(conn, **values)
    job = store_claims.job(conn, dealer, claim)
    if job is None or count < job["submission_count"]:
        return new
    cur = json.loads(store_claims.latest_snapshot_body(conn, dealer, claim, count))
    store_claims.update_job(
        conn, job["id"], local_status=JobStatus.SUBMITTED.value, oem_status=cur["ClaimStatusCode"],
        oem_status_raw=cur.get("OEMStatusRaw"),
        oem_claim_number=cur.get("OEMClaimNumberString") or job["oem_claim_number"],
        to_be_paid=(cur.get("ToBePaidAmount") or {}).get("value", job["to_be_paid"]),
        settlement_date=date.fromisoformat(cur["SettlementDate"]) if cur.get("SettlementDate") else job["settlement_date"],
        payment_cycle=cur.get("PaymentCycleID") or job["payment_cycle"])
    return new


def poll_status(engine: Engine, client: OemClient) -> dict:
    """The change feed from the persisted cursor; each page committed with the cursor."""
    with engine.begin() as conn:
        row = store_claims.cursor(conn)
    cursor = row["cursor"] if row else None
    since = row["watermark"] if row and not cursor else None
    watermark = row["watermark"] if row else None
    n = snaps = 0
    dealer = client.s.dealer_number
    for items, nxt in client.claim_changes(updated_since=since, cursor=cursor):
        with engine.begin() as conn:
            for it in items:
                snaps += apply_status(conn, it, dealer)
                if watermark is None or it["UpdatedDateTime"] > watermark:
                    watermark = it["UpdatedDateTime"]
            store_claims.save_cursor(conn, nxt, watermark)
        n += len(items)
    with engine.begin() as conn:
        by = store_claims.count_by_oem_status(conn)
    return {"changes": n, "new_snapshots": snaps, "by_status": {str(k): v for k, v in by.items()}}


# ------------------------------------------------------------------------------------ reading

def claims_table(conn: Connection, status: str | None = None) -> list[dict]:
    return store_claims.list_jobs(conn, status)


def approaching_deadline(conn: Connection, today: date, days: int) -> list[dict]:
    """Claims not yet accepted by the OEM whose window ends within ``days``."""
    return [dict(r, days_left=(r["deadline"] - today).days) for r in store_claims.near_deadline(conn, today, days)]


def show_claim(conn: Connection, claim_no: str) -> dict | None:
    job = store_claims.find_job(conn, claim_no)
    if job is None:
        return None
    subs, snaps = store_claims.history(conn, claim_no)
    return {**job, "errors": json.loads(job["errors"]) if job["errors"] else None,
            "submissions": subs, "statuses": snaps}
