"""Sandbox OEM dealer portal: an HTTP server implementing ``shared/specs/oem-portal.openapi.yaml``.

State in a SQLite file (survives restarts). OAuth2 client credentials with expiring tokens (401
``TOKEN_EXPIRED``). Idempotency by ``Idempotency-Key`` (same key + same body: the first answer again, 200;
same key + other body: 409 ``IDEMPOTENCY_KEY_REUSED``) and by the claim's natural key (dealer, claim
number, submission count: 409 ``DUPLICATE_CLAIM`` carrying the existing ack). Business validation
answers 422 (VIN check digit, exactly one causal part, labor operations from the code table, mandatory
fields, claim window, resubmission rules). Adjudication is asynchronous on a configurable clock:
SUBMITTED -> UNDER_REVIEW -> APPROVED | PARTIALLY_APPROVED | REJECTED | RETURNED, approved claims later
SETTLED; every transition is a change-feed entry (cursor, ``updatedSince``). Reports are unique by
(dealer, type, period): identical bytes 200 with the first receipt, other bytes 201 superseding.

Fault knobs (``PortalFaults``): rate limit (429 + Retry-After), random 503s, dropped connections (the
work done, the answer lost), latency, token lifetime. ``/_sandbox/*`` endpoints (not in the contract)
expose counters for tests and the benchmark.

    dealersync sandbox portal [--port 8710]
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .common import DroppedResponse, Quota

BASE = "/api/v1"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_VIN_VAL = {**{str(d): d for d in range(10)},
            **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
            **dict(zip("STUVWXYZ", range(2, 10)))}
_VIN_W = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
CLAIM_TYPES = {"WARRANTY", "THREE_GUARANTEE", "RECALL", "FIRST_SERVICE", "CAMPAIGN", "PRE_AUTHORIZATION"}
RAW_WORDS = {"SUBMITTED": "已上报", "UNDER_REVIEW": "审核中", "APPROVED": "理赔", "PARTIALLY_APPROVED": "理赔(调整)",
             "REJECTED": "拒赔", "RETURNED": "退回", "SETTLED": "结算"}
FACTORS = {"OVERALL", "NPS", "SERVICE_INITIATION", "SERVICE_ADVISOR", "SERVICE_FACILITY", "VEHICLE_PICKUP",
           "SERVICE_QUALITY", "SALES_INITIATION", "SALESPERSON", "DEAL", "DEALER_FACILITY", "DELIVERY_PROCESS", "VERBATIM"}
LABOR_OPS = [("A0101", "发动机机油及滤清器更换", 0.5), ("A0203", "变速箱总成检修", 6.0), ("B1105", "前制动片更换", 1.0),
             ("C2201", "转向机总成更换", 3.5), ("D3004", "空调压缩机更换", 2.5), ("E1002", "发电机更换", 1.5),
             ("F0301", "车门玻璃升降器更换", 1.2), ("G0101", "前大灯总成更换", 0.8), ("H0203", "燃油泵更换", 1.8),
             ("J0101", "诊断检查", 0.5), ("K0202", "减震器更换", 1.6), ("L0101", "水泵更换", 2.0)]


def vin_ok(v: str) -> bool:
    if not isinstance(v, str) or not VIN_RE.match(v):
        return False
    s = sum(_VIN_VAL[c] * w for c, w in zip(v, _VIN_W)) % 11
    return v[8] == ("X" if s == 10 else str(s))


@dataclass
class PortalFaults:
    rate_per_second: float = 0.0
    burst: int = 10
    error_rate: float = 0.0             # share answered 503 (before the rate limit: not charged)
    expire_rate: float = 0.0            # share answered 401 TOKEN_EXPIRED (the token dies early)
    throttle_rate: float = 0.0          # share answered 429 Retry-After: 1 at random
    drop_rate: float = 0.0              # share processed whose answer is lost (connection dropped)
    latency_ms: float = 0.0
    token_lifetime: int = 3600          # seconds
    seed: int = 1


@dataclass
class Clock:
    """Adjudication timing, in seconds after the submission (the sandbox's "configurable clock")."""
    review_after: float = 2.0
    decide_after: float = 6.0
    settle_after: float = 12.0
    claim_window_days: int = 30         # an RO completed longer ago than this is CLAIM_WINDOW_EXPIRED
    max_report_bytes: int = 10 * 1024 * 1024


@dataclass
class Counters:
    requests: int = 0
    throttled: int = 0
    errors: int = 0
    dropped: int = 0
    expired_tokens: int = 0
    by_path: dict = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _application_area(body) -> dict | None:
    """The request's ``ApplicationArea`` as the contract defines it (components/schemas/ApplicationArea),
    projected to its known keys, or None when a required field is missing or of the wrong type: an
    answer echoes it as ``OriginalApplicationArea``, so it must conform as well."""
    area = body.get("ApplicationArea") if isinstance(body, dict) else None
    if not isinstance(area, dict) or not isinstance(area.get("Sender"), dict):
        return None
    sender = {k: v for k, v in area["Sender"].items()
              if k in ("CreatorNameCode", "DealerNumberID", "StoreNumber", "SystemVersion") and isinstance(v, str)}
    out = {"Sender": sender, **{k: area[k] for k in ("CreationDateTime", "BODID") if isinstance(area.get(k), str)}}
    if not sender.get("CreatorNameCode") or not sender.get("DealerNumberID") or len(out) < 3:
        return None
    if not _RFC3339.fullmatch(out["CreationDateTime"]):
        return None
    try:
        datetime.fromisoformat(out["CreationDateTime"].upper().replace("Z", "+00:00"))
        uuid.UUID(out["BODID"])
    except ValueError:
        return None
    return out


# RFC 3339 date-time, as JSON Schema's "date-time" format reads it
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE | re.ASCII)


def _err(status: int, code: str, message: str, headers: dict | None = None, path: str | None = None,
         original: dict | None = None, **extra) -> JSONResponse:
    e = {"ErrorCode": code, "Message": message}
    if path:
        e["FieldPath"] = path
    body = {"Errors": [e], **extra}
    if original:
        body["OriginalApplicationArea"] = original
    return JSONResponse(body, status_code=status, headers=headers)


def _errs(status: int, errors: list[dict], original: dict | None = None) -> JSONResponse:
    body = {"Errors": errors}
    if original:
        body["OriginalApplicationArea"] = original
    return JSONResponse(body, status_code=status)


class Db:
    def __init__(self, path):
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript("""
        CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, client TEXT, expires REAL);
        CREATE TABLE IF NOT EXISTS idem (key TEXT PRIMARY KEY, op TEXT, body_hash TEXT, status INTEGER, response TEXT);
        CREATE TABLE IF NOT EXISTS claims (dealer TEXT, claim TEXT, count INTEGER, oem_no TEXT, ack TEXT, payload TEXT,
            submitted REAL, amount REAL, outcome TEXT, status TEXT, next_at REAL, PRIMARY KEY (dealer, claim, count));
        CREATE INDEX IF NOT EXISTS claims_next ON claims(next_at);
        CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, dealer TEXT, claim TEXT, count INTEGER,
            status TEXT, body TEXT, updated TEXT);
        CREATE INDEX IF NOT EXISTS events_claim ON events(dealer, claim);
        CREATE TABLE IF NOT EXISTS surveys (doc TEXT PRIMARY KEY, dealer TEXT, ack TEXT, payload TEXT, received TEXT);
        CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, dealer TEXT, type TEXT, period TEXT, sha256 TEXT,
            size INTEGER, supersedes TEXT, current INTEGER, received TEXT);
        """)

    def one(self, sql, *a):
        return self.db.execute(sql, a).fetchone()

    def all(self, sql, *a):
        return self.db.execute(sql, a).fetchall()

    def run(self, sql, *a):
        return self.db.execute(sql, a)


def _body_hash(body: bytes) -> str:
    try:
        canon = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode()
    except ValueError:
        canon = body
    return hashlib.sha256(canon).hexdigest()


def create_app(db_path, clients: dict[str, str] | None = None, faults: PortalFaults | None = None,
               clock: Clock | None = None) -> FastAPI:
    clients = clients or {"dealersync": "sandbox-secret"}
    faults, clock = faults or PortalFaults(), clock or Clock()
    db = Db(db_path)
    counters = Counters()
    rng = random.Random(faults.seed)
    quota = Quota(faults.rate_per_second, faults.burst)
    app = FastAPI(title="dealersync sandbox OEM portal", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.db, app.state.counters, app.state.faults, app.state.clock = db, counters, faults, clock

    # a body whose values are not of the contract's types (an object where a string belongs: a dict is
    # unhashable, a list has no .get, SQLite takes no dict) is the client's error, 422, never a 500
    async def _wrong_types(request: Request, exc: Exception):
        return _err(422, "MANDATORY_FIELD_MISSING", "the request does not follow the contract's types")
    for kind in (TypeError, AttributeError, KeyError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
        app.add_exception_handler(kind, _wrong_types)

    # ------------------------------------------------------------------ middleware: faults and auth
    @app.middleware("http")
    async def _gate(request: Request, call_next):
        path = request.url.path
        if path.startswith("/_sandbox"):
            return await call_next(request)
        if path == BASE + "/oauth/token":   # the contract gives the token endpoint only 200 and 401
            counters.requests += 1
            return await call_next(request)
        counters.requests += 1
        counters.by_path[path] = counters.by_path.get(path, 0) + 1
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        # injected faults come before the rate limit: a request the portal failed is not charged to the quota
        r = rng.random()
        if r < faults.error_rate:
            counters.errors += 1
            return _err(503, "UNAVAILABLE", "the portal is having a bad day")
        auth = request.headers.get("authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        with db.lock:
            row = db.one("SELECT expires, client FROM tokens WHERE token=?", tok)
        if row is None or row[1] not in clients:   # a token of no registered client reads nothing
            return _err(401, "INVALID_CLIENT", "missing or unknown access token")
        if row[0] < time.time() or r < faults.error_rate + faults.expire_rate:
            counters.expired_tokens += 1
            with db.lock:
                db.run("UPDATE tokens SET expires=0 WHERE token=?", tok)
            return _err(401, "TOKEN_EXPIRED", "the access token has expired")
        if r < faults.error_rate + faults.expire_rate + faults.throttle_rate:
            counters.throttled += 1
            return _err(429, "RATE_LIMITED", "over the rate limit", {"Retry-After": "1"})
        wait = quota.take()
        if wait is not None:
            counters.throttled += 1
            return _err(429, "RATE_LIMITED", "over the rate limit", {"Retry-After": str(wait)})
        response = await call_next(request)
        if 1 - faults.drop_rate <= r:
            counters.dropped += 1
            return DroppedResponse()
        return response

    # ------------------------------------------------------------------ OAuth2
    @app.post(BASE + "/oauth/token")
    async def token(request: Request):
        form = await request.form()
        cid, secret = form.get("client_id"), form.get("client_secret")
        # the contract requires all three fields; an unknown client has no secret to match (issue #15:
        # client_id=nobody without client_secret got a token because None == None)
        if form.get("grant_type") != "client_credentials" or not isinstance(cid, str) or not cid \
                or not isinstance(secret, str) or not secret or cid not in clients \
                or not secrets.compare_digest(clients[cid].encode(), secret.encode()):
            return _err(401, "INVALID_CLIENT", "unknown client or wrong secret")
        tok = secrets.token_urlsafe(24)
        with db.lock:
            db.run("INSERT INTO tokens VALUES (?, ?, ?)", tok, form["client_id"], time.time() + faults.token_lifetime)
        return {"access_token": tok, "token_type": "Bearer", "expires_in": int(faults.token_lifetime)}

    # ------------------------------------------------------------------ idempotency
    def _replay(key: str | None, op: str, body_hash: str):
        """(response to return now, or None to proceed); a key must be a UUID."""
        if not key or not UUID_RE.match(key):
            return _err(422, "MANDATORY_FIELD_MISSING", "Idempotency-Key header (a UUID) is required",
                        path="Idempotency-Key")
        row = db.one("SELECT op, body_hash, status, response FROM idem WHERE key=?", key)
        if row is None:
            return None
        if row[0] != op or row[1] != body_hash:
            return _err(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request")
        return JSONResponse(json.loads(row[3]), status_code=200 if row[2] in (200, 201, 202) else row[2])

    def _remember(key: str, op: str, body_hash: str, status: int, response: dict) -> None:
        db.run("INSERT OR REPLACE INTO idem VALUES (?, ?, ?, ?, ?)", key, op, body_hash, status,
               json.dumps(response, ensure_ascii=False))

    # ------------------------------------------------------------------ claims
    def _recon(dealer, claim, count, status, body_extra=None) -> dict:
        row = db.one("SELECT oem_no, amount FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        rec = {"ClaimNumberString": claim, "ClaimSubmissionCountNumeric": count, "OEMClaimNumberString": row[0],
               "ClaimStatusCode": status, "OEMStatusRaw": RAW_WORDS[status], "UpdatedDateTime": _iso(_now())}
        if body_extra:
            rec.update(body_extra)
        return rec

    def _event(dealer, claim, count, status, extra=None) -> None:
        body = _recon(dealer, claim, count, status, extra)
        db.run("INSERT INTO events (dealer, claim, count, status, body, updated) VALUES (?, ?, ?, ?, ?, ?)",
               dealer, claim, count, status, json.dumps(body, ensure_ascii=False), body["UpdatedDateTime"])
        row = db.one("SELECT submitted FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        nxt = {"SUBMITTED": clock.review_after, "UNDER_REVIEW": clock.decide_after, "APPROVED": clock.settle_after,
               "PARTIALLY_APPROVED": clock.settle_after}.get(status)
        db.run("UPDATE claims SET status=?, next_at=? WHERE dealer=? AND claim=? AND count=?", status,
               None if nxt is None else row[0] + nxt, dealer, claim, count)

    def _advance() -> None:
        """Move every claim whose time has come to its next state (the adjudication clock)."""
        now = time.time()
        for dealer, claim, count, submitted, amount, outcome, status in db.all(
                "SELECT dealer, claim, count, submitted, amount, outcome, status FROM claims WHERE next_at <= ? "
                "ORDER BY next_at", now):
            age = now - submitted
            if status == "SUBMITTED" and age >= clock.review_after:
                _event(dealer, claim, count, "UNDER_REVIEW")
                status = "UNDER_REVIEW"
            if status == "UNDER_REVIEW" and age >= clock.decide_after:
                extra = {}
                if outcome == "APPROVED":
                    extra = {"ToBePaidAmount": {"value": round(amount, 2), "currencyID": "CNY"}}
                elif outcome == "PARTIALLY_APPROVED":
                    extra = {"ToBePaidAmount": {"value": round(amount * 0.8, 2), "currencyID": "CNY"},
                             "AdjustmentReason": [{"ReasonCode": "LABOR_HOURS", "Description": "工时超出标准工时"}]}
                elif outcome == "REJECTED":
                    extra = {"DispositionReason": [{"ReasonCode": "NOT_COVERED", "Description": "非质量问题，不予理赔"}]}
                elif outcome == "RETURNED":
                    extra = {"DispositionReason": [{"ReasonCode": "MISSING_PHOTO", "Description": "请补充故障件照片后重新提交"}]}
                _event(dealer, claim, count, outcome, extra)
                status = outcome
            if status in ("APPROVED", "PARTIALLY_APPROVED") and age >= clock.settle_after:
                paid = round(amount * (1 if status == "APPROVED" else 0.8), 2)
                _event(dealer, claim, count, "SETTLED", {
                    "ToBePaidAmount": {"value": paid, "currencyID": "CNY"},
                    "PaymentCycleID": f"PC{datetime.now():%Y%m}", "SettlementDate": date.today().isoformat()})

    def _validate_claim(body: dict, dealer: str, labor_codes: set[str]) -> list[dict]:
        errs = []

        def need(obj, key, path):
            if not isinstance(obj, dict) or obj.get(key) in (None, "", []):
                errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": path, "Message": f"{path} is required"})
                return None
            return obj[key]
        wc = need(body, "WarrantyClaim", "WarrantyClaim") or {}
        h = need(wc, "WarrantyClaimHeader", "WarrantyClaim.WarrantyClaimHeader") or {}
        for k in ("ClaimNumberString", "ClaimTypeString", "ClaimSubmissionCountNumeric", "RepairOrder", "Vehicle",
                  "ClaimedAmount"):
            need(h, k, f"WarrantyClaim.WarrantyClaimHeader.{k}")
        if errs:
            return errs
        if h["ClaimTypeString"] not in CLAIM_TYPES:
            errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimTypeString",
                         "Message": "unknown claim type"})
        ro = h["RepairOrder"]
        for k in ("DocumentID", "RepairOrderOpenedDate", "RepairOrderCompletedDate"):
            need(ro, k, f"WarrantyClaim.WarrantyClaimHeader.RepairOrder.{k}")
        veh = h["Vehicle"]
        vin = need(veh, "VIN", "WarrantyClaim.WarrantyClaimHeader.Vehicle.VIN")
        if vin and not vin_ok(vin):
            errs.append({"ErrorCode": "INVALID_VIN", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.Vehicle.VIN",
                         "Message": "VIN format or check digit wrong"})
        dist = need(veh, "InDistanceMeasure", "WarrantyClaim.WarrantyClaimHeader.Vehicle.InDistanceMeasure")
        if isinstance(dist, dict) and (not isinstance(dist.get("value"), int) or dist["value"] < 0):
            errs.append({"ErrorCode": "MILEAGE_INCONSISTENT", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.Vehicle.InDistanceMeasure",
                         "Message": "mileage must be a non-negative integer (KMT)"})
        try:
            done = date.fromisoformat(ro.get("RepairOrderCompletedDate", ""))
            opened = date.fromisoformat(ro.get("RepairOrderOpenedDate", ""))
            if done < opened:
                errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.RepairOrder",
                             "Message": "completed before opened"})
            if (date.today() - done).days > clock.claim_window_days:
                errs.append({"ErrorCode": "CLAIM_WINDOW_EXPIRED", "FieldPath":
                             "WarrantyClaim.WarrantyClaimHeader.RepairOrder.RepairOrderCompletedDate",
                             "Message": f"claims must be submitted within {clock.claim_window_days} days of completion"})
        except (TypeError, ValueError):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.RepairOrder",
                         "Message": "dates must be YYYY-MM-DD"})
        jobs = need(wc, "Job", "WarrantyClaim.Job") or []
        causal = 0
        for i, job in enumerate(jobs if isinstance(jobs, list) else []):
            for k in ("JobNumberString", "CodesAndComments"):
                need(job, k, f"WarrantyClaim.Job[{i}].{k}")
            for j, lab in enumerate(job.get("ServiceLabor") or []):
                if lab.get("LaborOperationID") not in labor_codes:
                    errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": f"WarrantyClaim.Job[{i}].ServiceLabor[{j}].LaborOperationID",
                                 "Message": f"labor operation {lab.get('LaborOperationID')} is not in the code table"})
            causal += sum(1 for p in job.get("ServiceParts") or [] if p.get("CausalPartIndicator") is True)
        if causal == 0:
            errs.append({"ErrorCode": "MAIN_PART_MISSING", "FieldPath": "WarrantyClaim.Job", "Message": "exactly one causal part is required"})
        elif causal > 1:
            errs.append({"ErrorCode": "MULTIPLE_MAIN_PARTS", "FieldPath": "WarrantyClaim.Job", "Message": "exactly one causal part is allowed"})
        count = h["ClaimSubmissionCountNumeric"]
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 999:
            errs.append({"ErrorCode": "NOT_RESUBMITTABLE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimSubmissionCountNumeric",
                         "Message": "submission count must be 1 for a first submission, prior + 1 after a return"})
        elif count > 1:
            prior = db.one("SELECT status FROM claims WHERE dealer=? AND claim=? AND count=?", dealer,
                           h["ClaimNumberString"], count - 1)
            if prior is None or prior[0] != "RETURNED":
                errs.append({"ErrorCode": "NOT_RESUBMITTABLE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimSubmissionCountNumeric",
                             "Message": "only a RETURNED claim may be resubmitted, with its submission count + 1"})
        return errs

    @app.post(BASE + "/warranty-claims")
    async def submit_claim(request: Request):
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        bh = _body_hash(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be JSON")
        if not isinstance(body, dict):
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be a ProcessWarrantyClaim object")
        area = _application_area(body)
        with db.lock:
            db.run("BEGIN IMMEDIATE")
            try:
                _advance()
                replay = _replay(key, "claim", bh)
                if replay is not None:
                    db.run("COMMIT")
                    return replay
                sender = (area or {}).get("Sender") if isinstance((area or {}).get("Sender"), dict) else {}
                dealer = sender.get("DealerNumberID")
                if not area or not dealer or not area.get("BODID") or not area.get("CreationDateTime") \
                        or not sender.get("CreatorNameCode"):
                    db.run("COMMIT")
                    return _err(422, "MANDATORY_FIELD_MISSING", "ApplicationArea with Sender.DealerNumberID, "
                                "Sender.CreatorNameCode, CreationDateTime and BODID is required", path="ApplicationArea")
                labor = {c for c, _, _ in LABOR_OPS}
                errs = _validate_claim(body, dealer, labor)
                if errs:
                    resp = {"Errors": errs, "OriginalApplicationArea": area}
                    _remember(key, "claim", bh, 422, resp)
                    db.run("COMMIT")
                    return JSONResponse(resp, status_code=422)
                h = body["WarrantyClaim"]["WarrantyClaimHeader"]
                claim, count = h["ClaimNumberString"], h["ClaimSubmissionCountNumeric"]
                existing = db.one("SELECT ack FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
                if existing:
                    db.run("COMMIT")
                    return _err(409, "DUPLICATE_CLAIM", "this claim submission was already received",
                                original=area, DuplicateOf=json.loads(existing[0]))
                oem_no = "OEM" + hashlib.sha1(f"{dealer}:{claim}:{count}".encode()).hexdigest()[:10].upper()
                ack = {"OriginalApplicationArea": area, "ActionCode": "Accepted", "ClaimNumberString": claim,
                       "ClaimSubmissionCountNumeric": count, "OEMClaimNumberString": oem_no, "ClaimStatusCode": "SUBMITTED"}
                amount = float((h.get("ClaimedAmount") or {}).get("value") or 0)
                draw = int(hashlib.sha256(f"{dealer}:{claim}:{count}".encode()).hexdigest()[:8], 16) % 100
                outcome = ("APPROVED" if draw < 60 else "PARTIALLY_APPROVED" if draw < 75 else "REJECTED" if draw < 85
                           else "RETURNED")
                db.run("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", dealer, claim, count, oem_no,
                       json.dumps(ack, ensure_ascii=False), raw.decode("utf-8", "replace"), time.time(), amount, outcome,
                       "SUBMITTED", None)
                _event(dealer, claim, count, "SUBMITTED")
                _remember(key, "claim", bh, 202, ack)
                db.run("COMMIT")
            except Exception:
                db.run("ROLLBACK")
                raise
        return JSONResponse(ack, status_code=202)

    @app.get(BASE + "/warranty-claims")
    async def claim_changes(request: Request):
        q = request.query_params
        try:
            limit = max(1, min(500, int(q.get("limit", 100))))
        except ValueError:
            limit = 100
        after = 0
        since = q.get("updatedSince")
        if q.get("cursor"):
            try:
                d = json.loads(base64.urlsafe_b64decode(q["cursor"].encode()))
                after, since = int(d["a"]), d.get("s", since)
            except Exception:  # noqa: BLE001
                after = 0
        since_t = _parse(since)
        with db.lock:
            db.run("BEGIN IMMEDIATE")
            _advance()
            db.run("COMMIT")
            rows = db.all("SELECT seq, body, updated FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit * 4 + 10)
            items, last = [], after
            for seq, body, updated in rows:
                last = seq
                if since_t and _parse(updated) < since_t:
                    continue
                items.append(json.loads(body))
                if len(items) >= limit:
                    break
            more = db.one("SELECT 1 FROM events WHERE seq > ? LIMIT 1", last) is not None
        cursor = base64.urlsafe_b64encode(json.dumps({"a": last, "s": since}).encode()).decode() if more else None
        return {"items": items, "nextCursor": cursor}

    @app.get(BASE + "/warranty-claims/{claim_number}")
    async def claim_status(claim_number: str):
        with db.lock:
            db.run("BEGIN IMMEDIATE")
            _advance()
            db.run("COMMIT")
            row = db.one("SELECT e.body FROM events e WHERE e.claim=? ORDER BY e.count DESC, e.seq DESC LIMIT 1", claim_number)
        if row is None:
            return _err(404, "NOT_FOUND", f"no claim {claim_number}")
        return json.loads(row[0])

    # ------------------------------------------------------------------ surveys
    @app.post(BASE + "/survey-results")
    async def survey(request: Request):
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        bh = _body_hash(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be JSON")
        with db.lock:
            replay = _replay(key, "survey", bh)
            if replay is not None:
                return replay
            area = _application_area(body)
            res = (body or {}).get("CustomerSurveyResult") if isinstance(body, dict) else None
            errs = []
            if not isinstance(area, dict) or not isinstance(area.get("Sender"), dict) or not area.get("BODID"):
                errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "ApplicationArea", "Message": "required"})
            if not isinstance(res, dict):
                errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult", "Message": "required"})
            else:
                for k in ("DocumentID", "SurveyTypeCode", "TriggerEvent", "CompletedDateTime", "Respondent", "Answer"):
                    if res.get(k) in (None, "", []):
                        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": f"CustomerSurveyResult.{k}",
                                     "Message": f"{k} is required"})
                resp_ = res.get("Respondent") or {}
                if isinstance(resp_, dict):
                    if not resp_.get("MasterCustomerID"):
                        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Respondent.MasterCustomerID",
                                     "Message": "required"})
                    m = resp_.get("MaskedMobile")
                    if m is not None and not re.match(r"^1[3-9][0-9]\*{4}[0-9]{4}$", str(m)):
                        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Respondent.MaskedMobile",
                                     "Message": "only a masked mobile (138****5678) may be sent"})
                answers = res.get("Answer")
                if not isinstance(answers, list):
                    if answers not in (None, ""):
                        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Answer",
                                 "Message": "a list of answers is required"})
                    answers = []
                for k in ("DocumentID", "SurveyTypeCode", "CompletedDateTime"):
                    if res.get(k) not in (None, "", []) and not isinstance(res.get(k), str):
                        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": f"CustomerSurveyResult.{k}",
                                     "Message": f"{k} must be a string"})
                for i, a in enumerate(answers):
                    # an object or a list as FactorCode is unhashable: checked as a string first (issue #15: 500)
                    if not isinstance(a, dict) or not isinstance(a.get("FactorCode"), str) or a["FactorCode"] not in FACTORS:
                        errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": f"CustomerSurveyResult.Answer[{i}].FactorCode",
                                     "Message": "unknown factor"})
            if errs:
                return _errs(422, errs, area if isinstance(area, dict) else None)
            doc = res["DocumentID"]
            dealer = area["Sender"].get("DealerNumberID", "")
            dealer = dealer if isinstance(dealer, str) else ""
            old = db.one("SELECT ack FROM surveys WHERE doc=?", doc)
            if old:   # the same DocumentID already accepted: the first answer again
                ack = json.loads(old[0])
                _remember(key, "survey", bh, 200, ack)
                return JSONResponse(ack, status_code=200)
            ack = {"OriginalApplicationArea": area, "ActionCode": "Accepted", "DocumentID": doc}
            db.run("INSERT INTO surveys VALUES (?, ?, ?, ?, ?)", doc, dealer, json.dumps(ack, ensure_ascii=False),
                   raw.decode("utf-8", "replace"), _iso(_now()))
            _remember(key, "survey", bh, 202, ack)
        return JSONResponse(ack, status_code=202)

    # ------------------------------------------------------------------ reports
    @app.post(BASE + "/reports")
    async def report(request: Request):
        key = request.headers.get("idempotency-key")
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001
            return _err(422, "MANDATORY_FIELD_MISSING", "multipart/form-data expected")
        f = form.get("file")
        data = await f.read() if hasattr(f, "read") else (f.encode() if isinstance(f, str) else None)
        fields = {k: form.get(k) for k in ("dealerNumberId", "reportType", "period")}
        sha = hashlib.sha256(data or b"").hexdigest()
        bh = hashlib.sha256(json.dumps({**{k: str(v) for k, v in fields.items()}, "sha": sha}, sort_keys=True).encode()).hexdigest()
        with db.lock:
            replay = _replay(key, "report", bh)
            # reports are idempotent by (dealer, type, period, bytes) and the contract lists no 409 for them:
            # a reused key with other content is simply a new upload under the natural key
            if replay is not None and replay.status_code != 409:
                return replay
            missing = [k for k, v in fields.items() if not isinstance(v, str) or not v] + ([] if data is not None else ["file"])
            if missing:
                return _errs(422, [{"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": m, "Message": f"{m} is required"}
                                   for m in missing])
            if len(data) > clock.max_report_bytes:
                return _err(413, "PAYLOAD_TOO_LARGE", f"at most {clock.max_report_bytes} bytes")
            rt, period = fields["reportType"], fields["period"]
            if rt not in ("CSI_MONTHLY", "SSI_MONTHLY", "SALES_DAILY") or not re.match(
                    r"^\d{4}-\d{2}$" if rt.endswith("MONTHLY") else r"^\d{4}-\d{2}-\d{2}$", period):
                return _err(422, "INVALID_REFERENCE", "reportType or period invalid", path="period")
            cur = db.one("SELECT id, sha256, supersedes FROM reports WHERE dealer=? AND type=? AND period=? AND current=1",
                         fields["dealerNumberId"], rt, period)
            if cur and cur[1] == sha:
                receipt = {"reportId": cur[0], "reportType": rt, "period": period, "sha256": sha, "supersedes": cur[2]}
                _remember(key, "report", bh, 200, receipt)
                return JSONResponse(receipt, status_code=200)
            rid = "R" + uuid.uuid4().hex[:12].upper()
            if cur:
                db.run("UPDATE reports SET current=0 WHERE id=?", cur[0])
            db.run("INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)", rid, fields["dealerNumberId"], rt, period, sha,
                   len(data), cur[0] if cur else None, _iso(_now()))
            receipt = {"reportId": rid, "reportType": rt, "period": period, "sha256": sha,
                       "supersedes": cur[0] if cur else None}
            _remember(key, "report", bh, 201, receipt)
        return JSONResponse(receipt, status_code=201)

    # ------------------------------------------------------------------ code table
    @app.get(BASE + "/code-tables/labor-operations")
    async def labor_operations(request: Request):
        start = 0
        try:
            start = int(base64.urlsafe_b64decode(request.query_params.get("cursor", "").encode() or b"MA==").decode() or 0)
        except Exception:  # noqa: BLE001
            start = 0
        page = LABOR_OPS[start:start + 8]
        nxt = start + 8
        return {"items": [{"LaborOperationID": c, "Description": d, "StandardHoursNumeric": h} for c, d, h in page],
                "nextCursor": base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < len(LABOR_OPS) else None}

    # ------------------------------------------------------------------ sandbox-only
    @app.get("/_sandbox/stats")
    async def stats():
        with db.lock:
            return {"requests": counters.requests, "throttled": counters.throttled, "errors": counters.errors,
                    "dropped": counters.dropped, "expired_tokens": counters.expired_tokens, "by_path": counters.by_path,
                    "claims": db.one("SELECT count(*) FROM claims")[0],
                    "distinct_claims": db.one("SELECT count(*) FROM (SELECT DISTINCT dealer, claim, count FROM claims)")[0],
                    "surveys": db.one("SELECT count(*) FROM surveys")[0],
                    "reports": db.one("SELECT count(*) FROM reports")[0]}

    @app.post("/_sandbox/expire-tokens")
    async def expire():
        with db.lock:
            db.run("UPDATE tokens SET expires=0")
        return {"ok": True}

    return app


def _parse(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def serve(port: int = 8710, db: str | Path = ".data/sandbox-portal.db", faults: PortalFaults | None = None,
          clock: Clock | None = None, clients: dict | None = None, host: str = "127.0.0.1") -> None:
    import uvicorn
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(db, clients, faults, clock), host=host, port=port, log_level="warning")
