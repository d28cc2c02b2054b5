"""Sandbox CRM: an HTTP server implementing ``shared/specs/crm.openapi.yaml``.

Persisted in a SQLite file (state survives restarts). Batch upserts answer per record (``created``,
``updated``, ``unchanged`` or ``error``); the same externalId with the same properties is ``unchanged``
and makes no new version. Change feeds return records modified at or after ``modifiedSince``, oldest
change first, with an opaque cursor; a record changed again moves to the end of the feed, so it can
appear again on a later page. Seeded with leads; the "call centre" records activities (return-visit
calls, CSI surveys, complaints) for contacts as they arrive, deterministically.

Fault knobs (``FaultConfig``): a token-bucket rate limit answering 429 with ``Retry-After``, a share of
random 503s, a share of dropped connections, latency. Sandbox-only endpoints live under ``/_sandbox``
(not part of the contract): counters for tests and benchmarks.

    dealersync sandbox crm [--port 8720] [--db PATH]
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .common import DroppedResponse, Quota

BASE = "/crm/v1"
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


@dataclass
class FaultConfig:
    rate_per_second: float = 0.0       # 0 = no limit
    burst: int = 20
    error_rate: float = 0.0            # share of requests answered 503
    drop_rate: float = 0.0             # share of requests whose connection is dropped
    latency_ms: float = 0.0
    seed: int = 1


@dataclass
class Counters:
    requests: int = 0
    by_path: dict = field(default_factory=dict)
    throttled: int = 0
    errors: int = 0
    dropped: int = 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "+") if "T" in v else v)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class Store:
    """The CRM's state in SQLite: one table per object, each change bumping a global sequence."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        for t in ("contacts", "tasks", "leads", "activities"):
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, crm_id TEXT, data TEXT NOT NULL, "
                            f"hash TEXT, modified_at TEXT NOT NULL, seq INTEGER NOT NULL)")
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {t}_seq ON {t}(seq)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")

    def _next_seq(self) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k='seq'").fetchone()
        n = int(row[0]) + 1 if row else 1
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (str(n),))
        return n

    def get(self, table: str, key: str):
        row = self.db.execute(f"SELECT crm_id, data, hash, modified_at FROM {table} WHERE id=?", (key,)).fetchone()
        if row is None:
            return None
        return {"crm_id": row[0], "data": json.loads(row[1]), "hash": row[2], "modified_at": row[3]}

    def put(self, table: str, key: str, data: dict, crm_id: str, h: str | None = None,
            modified: datetime | None = None) -> str:
        t = _iso(modified or _now())
        self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                        (key, crm_id, json.dumps(data, ensure_ascii=False), h, t, self._next_seq()))
        return t

    def delete(self, table: str, key: str) -> bool:
        return self.db.execute(f"DELETE FROM {table} WHERE id=?", (key,)).rowcount > 0

    def feed(self, table: str, since: datetime | None, after_seq: int, limit: int):
        rows = self.db.execute(f"SELECT crm_id, data, modified_at, seq FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",
                               (after_seq, limit * 4 + 10)).fetchall()
        out, last = [], after_seq
        for crm_id, data, mod, seq in rows:
            last = seq
            if since is not None and _parse_time(mod) < since:
                continue
            out.append((crm_id, json.loads(data), mod, seq))
            if len(out) >= limit:
                break
        more = self.db.execute(f"SELECT 1 FROM {table} WHERE seq > ? LIMIT 1", (last,)).fetchone() is not None
        return out, last, more

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _err(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _cursor(after_seq: int, since: str | None) -> str:
    return base64.urlsafe_b64encode(json.dumps({"a": after_seq, "s": since}).encode()).decode()


def _uncursor(c: str) -> tuple[int, str | None] | None:
    try:
        d = json.loads(base64.urlsafe_b64decode(c.encode()).decode())
        return int(d["a"]), d.get("s")
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------------------ validation

def _check_contact(r: dict) -> tuple[str, str] | None:
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


def _check_task(r: dict, store: Store) -> tuple[str, str] | None:
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
    contact = store.get("contacts", r["contactExternalId"])
    if contact is None:
        return "UNKNOWN_CONTACT", f"no contact {r['contactExternalId']}"
    if r["type"] in MARKETING_TASKS and contact["data"].get("marketingConsent") is not True:
        return "CONSENT_REQUIRED", f"{r['type']} needs the contact's marketing consent"
    return None


# ------------------------------------------------------------------------------------ the app

def create_app(db_path: str | Path, token: str = "sandbox-token", faults: FaultConfig | None = None,
               seed_leads: int = 50) -> FastAPI:
    store = Store(db_path)
    faults = faults or FaultConfig()
    counters = Counters()
    rng = random.Random(faults.seed)
    quota = Quota(faults.rate_per_second, faults.burst)
    app = FastAPI(title="dealersync sandbox CRM", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store, app.state.faults, app.state.counters = store, faults, counters
    with store.lock:
        if store.count("leads") == 0 and seed_leads:
            _seed_leads(store, seed_leads, faults.seed)

    @app.middleware("http")
    async def _faults(request: Request, call_next):
        path = request.url.path
        if path.startswith("/_sandbox"):
            return await call_next(request)
        counters.requests += 1
        counters.by_path[path.split("?")[0]] = counters.by_path.get(path.split("?")[0], 0) + 1
        if request.headers.get("authorization") != f"Bearer {token}":
            return _err(401, "UNAUTHORIZED", "missing or wrong bearer token")
        if faults.latency_ms:
            import asyncio
            await asyncio.sleep(faults.latency_ms / 1000)
        wait = quota.take()
        if wait is not None:
            counters.throttled += 1
            return _err(429, "RATE_LIMITED", "over the rate limit", {"Retry-After": str(wait)})
        r = rng.random()
        if r < faults.error_rate:
            counters.errors += 1
            return _err(503, "UNAVAILABLE", "try again later")
        response = await call_next(request)
        if r < faults.error_rate + faults.drop_rate:
            counters.dropped += 1   # the work is done, the answer is lost: the client must retry safely
            return DroppedResponse()
        return response

    async def _records(request: Request):
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001
            return None, _err(400, "BAD_REQUEST", "body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return None, _err(400, "BAD_REQUEST", "body must be {records: [...]}")
        if len(body["records"]) > MAX_BATCH:
            return None, _err(413, "TOO_MANY_RECORDS", f"at most {MAX_BATCH} records per batch")
        return body["records"], None

    @app.post(BASE + "/contacts/batch-upsert")
    async def upsert_contacts(request: Request):
        records, err = await _records(request)
        if err:
            return err
        results = []
        with store.lock:
            store.db.execute("BEGIN")
            for r in records:
                ext = r.get("externalId") if isinstance(r, dict) and isinstance(r.get("externalId"), str) else ""
                bad = _check_contact(r)
                if bad:
                    results.append({"externalId": ext, "status": "error", "errorCode": bad[0], "message": bad[1]})
                    continue
                data = {k: r.get(k) for k in CONTACT_FIELDS if k in r}
                h = _hash(data)
                old = store.get("contacts", ext)
                if old and old["hash"] == h:
                    results.append({"externalId": ext, "crmId": old["crm_id"], "status": "unchanged"})
                    continue
                crm_id = old["crm_id"] if old else "C" + hashlib.sha1(ext.encode()).hexdigest()[:12]
                merged = {**(old["data"] if old else {}), **data}
                store.put("contacts", ext, merged, crm_id, h)
                results.append({"externalId": ext, "crmId": crm_id, "status": "updated" if old else "created"})
                if not old:
                    _call_centre(store, ext, merged)
            store.db.execute("COMMIT")
        return {"results": results}

    @app.post(BASE + "/tasks/batch-upsert")
    async def upsert_tasks(request: Request):
        records, err = await _records(request)
        if err:
            return err
        results = []
        with store.lock:
            store.db.execute("BEGIN")
            for r in records:
                ext = r.get("externalId") if isinstance(r, dict) and isinstance(r.get("externalId"), str) else ""
                bad = _check_task(r, store)
                if bad:
                    results.append({"externalId": ext, "status": "error", "errorCode": bad[0], "message": bad[1]})
                    continue
                old = store.get("tasks", ext)
                data = {k: r.get(k) for k in TASK_FIELDS if k in r}
                if old is None:
                    data.setdefault("status", "OPEN")
                elif old["data"].get("status") == "DONE" and data.get("status", "OPEN") == "OPEN":
                    data["status"] = "DONE"   # a task done in the CRM is not reopened by an upsert
                merged = {**(old["data"] if old else {}), **data}
                h = _hash(merged)
                if old and old["hash"] == h:
                    results.append({"externalId": ext, "crmId": old["crm_id"], "status": "unchanged"})
                    continue
                crm_id = old["crm_id"] if old else "T" + hashlib.sha1(ext.encode()).hexdigest()[:12]
                store.put("tasks", ext, merged, crm_id, h)
                results.append({"externalId": ext, "crmId": crm_id, "status": "updated" if old else "created"})
            store.db.execute("COMMIT")
        return {"results": results}

    def _page(table: str, request: Request, shape):
        q = request.query_params
        try:
            limit = int(q.get("limit", 100))
        except ValueError:
            limit = 100
        limit = max(1, min(500, limit))
        since_raw = q.get("modifiedSince")
        after = 0
        if q.get("cursor"):
            c = _uncursor(q["cursor"])
            if c is None:
                after, since_raw = 0, since_raw
            else:
                after, since_raw = c[0], c[1] if c[1] is not None else since_raw
        since = _parse_time(since_raw)
        with store.lock:
            rows, last, more = store.feed(table, since, after, limit)
        items = [shape(crm_id, data, mod) for crm_id, data, mod, _ in rows]
        return {"items": items, "nextCursor": _cursor(last, since_raw) if more else None}

    @app.get(BASE + "/contacts")
    async def list_contacts(request: Request):
        return _page("contacts", request, lambda cid, d, mod: {**d, "crmId": cid, "modifiedAt": mod})

    @app.get(BASE + "/leads")
    async def list_leads(request: Request):
        return _page("leads", request, lambda cid, d, mod: {**d, "modifiedAt": mod})

    @app.get(BASE + "/activities")
    async def list_activities(request: Request):
        return _page("activities", request, lambda cid, d, mod: {**d, "modifiedAt": mod})

    @app.get(BASE + "/contacts/{external_id}")
    async def get_contact(external_id: str):
        with store.lock:
            c = store.get("contacts", external_id)
        if c is None:
            return _err(404, "NOT_FOUND", f"no contact {external_id}")
        return {**c["data"], "crmId": c["crm_id"], "modifiedAt": c["modified_at"]}

    @app.delete(BASE + "/contacts/{external_id}")
    async def delete_contact(external_id: str):
        with store.lock:
            ok = store.delete("contacts", external_id)
        if not ok:
            return _err(404, "NOT_FOUND", f"no contact {external_id}")
        return Response(status_code=204)

    # ---- sandbox-only (not in the contract)
    @app.get("/_sandbox/stats")
    async def stats():
        with store.lock:
            return {"requests": counters.requests, "by_path": counters.by_path, "throttled": counters.throttled,
                    "errors": counters.errors, "dropped": counters.dropped,
                    **{t: store.count(t) for t in ("contacts", "tasks", "leads", "activities")}}

    @app.get("/_sandbox/tasks/{external_id}")
    async def sandbox_task(external_id: str):
        with store.lock:
            t = store.get("tasks", external_id)
        return t["data"] if t else _err(404, "NOT_FOUND", external_id)

    @app.post("/_sandbox/tasks/{external_id}/done")
    async def sandbox_task_done(external_id: str):
        """What a salesperson does in the CRM UI: close a task."""
        with store.lock:
            t = store.get("tasks", external_id)
            if t is None:
                return _err(404, "NOT_FOUND", external_id)
            data = {**t["data"], "status": "DONE"}
            store.put("tasks", external_id, data, t["crm_id"], _hash(data))
        return data

    @app.post("/_sandbox/leads")
    async def sandbox_lead(request: Request):
        """What a salesperson does in the CRM UI: create or edit a lead."""
        lead = await request.json()
        with store.lock:
            old = store.get("leads", lead["leadId"])
            data = {**(old["data"] if old else {"createdAt": _iso(_now())}), **lead}
            store.put("leads", lead["leadId"], data, lead["leadId"])
        return data

    return app


# ------------------------------------------------------------------------------------ seeded data

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
MODELS = ["朗逸", "帕萨特", "途观L", "速腾", "迈腾", "探岳", "宝来", "ID.4"]


def _seed_leads(store: Store, n: int, seed: int) -> None:
    rng = random.Random(seed)
    start = _now() - timedelta(days=30)
    store.db.execute("BEGIN")
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
        if rng.random() < 0.1:
            name = name[0] + rng.choice(["先生", "女士"])
        created = start + timedelta(hours=rng.randrange(0, 30 * 24))
        status = rng.choices(["OPEN", "WON", "DEFEATED"], [0.7, 0.15, 0.15])[0]
        lead = {"leadId": f"L{seed:02d}{i:06d}", "name": name, "mobile": f"1{rng.choice('35789')}{rng.randrange(10 ** 9):09d}",
                "intentLevel": rng.choice("OHABC"), "status": status, "interestedModel": rng.choice(MODELS),
                "salesperson": rng.choice(["李明", "王静", "陈强"]), "source": rng.choice(["展厅", "电话", "网络", "车展"]),
                "createdAt": _iso(created)}
        store.put("leads", lead["leadId"], lead, lead["leadId"], modified=created)
    store.db.execute("COMMIT")


def _call_centre(store: Store, ext: str, contact: dict) -> None:
    """The call centre's work on a new contact, deterministic per externalId: about one in three gets
    a return-visit call, one in four a CSI survey (five factors and the overall question, 1-10), one in
    twenty a complaint."""
    h = int(hashlib.sha256(ext.encode()).hexdigest()[:8], 16)
    rng = random.Random(h)
    at = _now() - timedelta(hours=rng.randrange(1, 72))
    acts = []
    if h % 3 == 0:
        acts.append({"type": "RETURN_VISIT_CALL", "outcome": rng.choice(["REACHED", "REACHED", "NOT_REACHED"])})
    if h % 4 == 1:
        # about one respondent in eight is unhappy overall; a happy one may still score a factor 6
        pool = [3, 4, 5, 6, 6, 7] if rng.random() < 0.125 else [6, 7, 8, 9, 10, 10]
        scores = [rng.choice(pool) for _ in CSI_FACTORS]
        overall = min(10, max(1, round(sum(scores) / len(scores)) + rng.choice([-1, 0, 0, 1])))
        acts.append({"type": "SURVEY", "surveyType": "CSI", "outcome": "REACHED",
                     "answers": [{"questionId": f"Q{i + 1}", "factorCode": f, "numericValue": v, "textValue": None}
                                 for i, (f, v) in enumerate(zip(CSI_FACTORS, scores))]
                     + [{"questionId": f"Q{len(CSI_FACTORS) + 1}", "factorCode": "OVERALL", "numericValue": overall,
                         "textValue": None}]})
    if h % 20 == 7:
        acts.append({"type": "COMPLAINT", "outcome": "REACHED",
                     "complaint": {"category": rng.choice(["维修质量", "服务态度", "等待时间", "价格"]),
                                   "openedAt": _iso(at), "resolvedAt": None}})
    for i, a in enumerate(acts):
        aid = f"A{h:08x}{i}"
        vins = contact.get("vins") or []
        store.put("activities", aid, {"activityId": aid, "contactExternalId": ext, "occurredAt": _iso(at),
                                      "relatedDocument": vins[0] if vins else None, "outcome": a.pop("outcome"),
                                      "surveyType": None, **a}, aid)


def serve(port: int = 8720, db: str | Path = ".data/sandbox-crm.db", token: str = "sandbox-token",
          faults: FaultConfig | None = None, host: str = "127.0.0.1") -> None:
    import uvicorn
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(db, token, faults), host=host, port=port, log_level="warning")
