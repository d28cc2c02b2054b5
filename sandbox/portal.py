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

The rooms: this module is the app (routes, the fault and auth gate, answers); ``portal_state.py``
holds the state (SQLite); ``portal_rules.py`` the contract's rules and decisions (pure functions).

    dealersync sandbox portal [--port 8710]
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import portal_rules as rules
from .common import DroppedResponse, Quota
from .portal_rules import FACTORS, LABOR_OPS, RAW_WORDS, Clock, vin_ok  # noqa: F401  (the sandbox's public names)
from .portal_state import Db

BASE = "/api/v1"


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
class Counters:
    requests: int = 0
    throttled: int = 0
    errors: int = 0
    dropped: int = 0
    expired_tokens: int = 0
    by_path: dict = field(default_factory=dict)


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


def create_app(db_path, clients: dict[str, str] | None = None, faults: PortalFaults | None = None,
               clock: Clock | None = None) -> FastAPI:
    clients = clients or {"dealersync": "sandbox-secret"}
    faults, clock = faults or PortalFaults(), clock or Clock()
    db = Db(db_path, clock)
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
            row = db.token(tok)
        if row is None or row[1] not in clients:   # a token of no registered client reads nothing
            return _err(401, "INVALID_CLIENT", "missing or unknown access token")
        if row[0] < time.time() or r < faults.error_rate + faults.expire_rate:
            counters.expired_tokens += 1
            with db.lock:
                db.expire(tok)
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
            db.add_token(tok, form["client_id"], faults.token_lifetime)
        return {"access_token": tok, "token_type": "Bearer", "expires_in": int(faults.token_lifetime)}

    # ------------------------------------------------------------------ idempotency
    def _replay(key: str | None, op: str, body_hash: str):
        """(response to return now, or None to proceed); a key must be a UUID."""
        if not key or not rules.UUID_RE.match(key):
            return _err(422, "MANDATORY_FIELD_MISSING", "Idempotency-Key header (a UUID) is required",
                        path="Idempotency-Key")
        row = db.first_answer(key)
        if row is None:
            return None
        if row[0] != op or row[1] != body_hash:
            return _err(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request")
        return JSONResponse(json.loads(row[3]), status_code=200 if row[2] in (200, 201, 202) else row[2])

    # ------------------------------------------------------------------ claims
    @app.post(BASE + "/warranty-claims")
    async def submit_claim(request: Request):
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        bh = rules.body_hash(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be JSON")
        if not isinstance(body, dict):
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be a ProcessWarrantyClaim object")
        area = rules.application_area(body)
        with db.lock:
            db.run("BEGIN IMMEDIATE")
            try:
                db.advance()
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
                errs = rules.validate_claim(body, labor, clock.claim_window_days,
                                            lambda claim, count: db.claim_status(dealer, claim, count))
                if errs:
                    resp = {"Errors": errs, "OriginalApplicationArea": area}
                    db.remember(key, "claim", bh, 422, resp)
                    db.run("COMMIT")
                    return JSONResponse(resp, status_code=422)
                h = body["WarrantyClaim"]["WarrantyClaimHeader"]
                claim, count = h["ClaimNumberString"], h["ClaimSubmissionCountNumeric"]
                existing = db.claim_ack(dealer, claim, count)
                if existing:
                    db.run("COMMIT")
                    return _err(409, "DUPLICATE_CLAIM", "this claim submission was already received",
                                original=area, DuplicateOf=existing)
                oem_no = rules.oem_number(dealer, claim, count)
                ack = {"OriginalApplicationArea": area, "ActionCode": "Accepted", "ClaimNumberString": claim,
                       "ClaimSubmissionCountNumeric": count, "OEMClaimNumberString": oem_no, "ClaimStatusCode": "SUBMITTED"}
                amount = float((h.get("ClaimedAmount") or {}).get("value") or 0)
                db.add_claim(dealer, claim, count, oem_no, ack, raw.decode("utf-8", "replace"), amount,
                             rules.outcome(dealer, claim, count))
                db.remember(key, "claim", bh, 202, ack)
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
        with db.lock:
            db.advance_now()
            items, last, more = db.changes(after, rules.parse_time(since), limit)
        cursor = base64.urlsafe_b64encode(json.dumps({"a": last, "s": since}).encode()).decode() if more else None
        return {"items": items, "nextCursor": cursor}

    @app.get(BASE + "/warranty-claims/{claim_number}")
    async def claim_status(claim_number: str):
        with db.lock:
            db.advance_now()
            rec = db.latest(claim_number)
        if rec is None:
            return _err(404, "NOT_FOUND", f"no claim {claim_number}")
        return rec

    # ------------------------------------------------------------------ surveys
    @app.post(BASE + "/survey-results")
    async def survey(request: Request):
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        bh = rules.body_hash(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(422, "MANDATORY_FIELD_MISSING", "body must be JSON")
        with db.lock:
            replay = _replay(key, "survey", bh)
            if replay is not None:
                return replay
            area = rules.application_area(body)
            res, errs = rules.survey_problems(body, area)
            if errs:
                return _errs(422, errs, area if isinstance(area, dict) else None)
            doc = res["DocumentID"]
            dealer = area["Sender"].get("DealerNumberID", "")
            dealer = dealer if isinstance(dealer, str) else ""
            old = db.survey_ack(doc)
            if old:   # the same DocumentID already accepted: the first answer again
                db.remember(key, "survey", bh, 200, old)
                return JSONResponse(old, status_code=200)
            ack = {"OriginalApplicationArea": area, "ActionCode": "Accepted", "DocumentID": doc}
            db.add_survey(doc, dealer, ack, raw.decode("utf-8", "replace"))
            db.remember(key, "survey", bh, 202, ack)
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
            problem = rules.report_problem(fields, data, clock.max_report_bytes)
            if problem:
                return _errs(*problem)
            rt, period = fields["reportType"], fields["period"]
            cur = db.current_report(fields["dealerNumberId"], rt, period)
            if cur and cur[1] == sha:
                receipt = {"reportId": cur[0], "reportType": rt, "period": period, "sha256": sha, "supersedes": cur[2]}
                db.remember(key, "report", bh, 200, receipt)
                return JSONResponse(receipt, status_code=200)
            rid = "R" + uuid.uuid4().hex[:12].upper()
            db.add_report(rid, fields["dealerNumberId"], rt, period, sha, len(data), cur[0] if cur else None)
            receipt = {"reportId": rid, "reportType": rt, "period": period, "sha256": sha,
                       "supersedes": cur[0] if cur else None}
            db.remember(key, "report", bh, 201, receipt)
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
                    **db.counts()}

    @app.post("/_sandbox/expire-tokens")
    async def expire():
        with db.lock:
            db.expire()
        return {"ok": True}

    return app


def serve(port: int = 8710, db: str | Path = ".data/sandbox-portal.db", faults: PortalFaults | None = None,
          clock: Clock | None = None, clients: dict | None = None, host: str = "127.0.0.1") -> None:
    import uvicorn
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(db, clients, faults, clock), host=host, port=port, log_level="warning")
