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

The rooms: this module is the app (routes, the fault and auth gate, answers); ``crm_state.py`` holds
the state (SQLite, seeded leads, the call centre); ``crm_rules.py`` the contract's checks and merges.

    dealersync sandbox crm [--port 8720] [--db PATH]
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from . import crm_rules as rules
from .common import DroppedResponse, Quota, iso, now
from .crm_rules import CONTACT_FIELDS, MAX_BATCH
from . import crm_state as state
from .crm_state import Store  # noqa: F401  (the sandbox's public names)

BASE = "/crm/v1"


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


# ------------------------------------------------------------------------------------ the app

def create_app(db_path: str | Path, token: str = "sandbox-token", faults: FaultConfig | None = None,
               seed_leads: int = 50) -> FastAPI:
    store = state.Store(db_path)
    faults = faults or FaultConfig()
    counters = Counters()
    rng = random.Random(faults.seed)
    quota = Quota(faults.rate_per_second, faults.burst)
    app = FastAPI(title="dealersync sandbox CRM", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store, app.state.faults, app.state.counters = store, faults, counters
    with store.lock:
        if store.count("leads") == 0 and seed_leads:
            state.seed_leads(store, seed_leads, faults.seed)

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

    def _upsert(table: str, prefix: str, records, check, merge, on_create=None) -> dict:
        """One batch upsert, in one transaction: per record an error (``check``), ``unchanged`` (same content
        hash), ``created`` or ``updated``. ``merge(old, record)`` -> (stored data, content hash)."""
        results = []
        with store.lock:
            store.db.execute("BEGIN")
            for r in records:
                ext = r.get("externalId") if isinstance(r, dict) and isinstance(r.get("externalId"), str) else ""
                bad = check(r)
                if bad:
                    results.append({"externalId": ext, "status": "error", "errorCode": bad[0], "message": bad[1]})
                    continue
                old = store.get(table, ext)
                merged, h = merge(old, r)
                if old and old["hash"] == h:
                    results.append({"externalId": ext, "crmId": old["crm_id"], "status": "unchanged"})
                    continue
                crm_id = old["crm_id"] if old else prefix + hashlib.sha1(ext.encode()).hexdigest()[:12]
                store.put(table, ext, merged, crm_id, h)
                results.append({"externalId": ext, "crmId": crm_id, "status": "updated" if old else "created"})
                if not old and on_create:
                    on_create(ext, merged)
            store.db.execute("COMMIT")
        return {"results": results}

    def _merge_contact(old, r):
        data = {k: r.get(k) for k in CONTACT_FIELDS if k in r}
        return {**(old["data"] if old else {}), **data}, rules.content_hash(data)

    def _merge_task(old, r):
        merged = rules.merge_task(old, r)
        return merged, rules.content_hash(merged)

    @app.post(BASE + "/contacts/batch-upsert")
    async def upsert_contacts(request: Request):
        records, err = await _records(request)
        if err:
            return err
        return _upsert("contacts", "C", records, rules.check_contact, _merge_contact,
                       on_create=lambda ext, merged: state.call_centre(store, ext, merged))

    @app.post(BASE + "/tasks/batch-upsert")
    async def upsert_tasks(request: Request):
        records, err = await _records(request)
        if err:
            return err
        return _upsert("tasks", "T", records, lambda r: rules.check_task(r, lambda ext: store.get("contacts", ext)),
                       _merge_task)

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
        since = rules.parse_time(since_raw)
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
            store.put("tasks", external_id, data, t["crm_id"], rules.content_hash(data))
        return data

    @app.post("/_sandbox/leads")
    async def sandbox_lead(request: Request):
        """What a salesperson does in the CRM UI: create or edit a lead."""
        lead = await request.json()
        with store.lock:
            old = store.get("leads", lead["leadId"])
            data = {**(old["data"] if old else {"createdAt": iso(now())}), **lead}
            store.put("leads", lead["leadId"], data, lead["leadId"])
        return data

    return app


def serve(port: int = 8720, db: str | Path = ".data/sandbox-crm.db", token: str = "sandbox-token",
          faults: FaultConfig | None = None, host: str = "127.0.0.1") -> None:
    import uvicorn
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    uvicorn.run(create_app(db, token, faults), host=host, port=port, log_level="warning")
