"""One process per load, per claim submission, per migration (issue #15): two real processes started
together (fresh forkserver children, released by one barrier) on SQLite and on PostgreSQL, for each case of the issue."""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
import uuid
from datetime import date

import pytest
import sqlalchemy as sa

from dealersync.connectors.http import RetryPolicy
from dealersync.connectors.oem import OemClient, OemSettings
from dealersync.resolution import service
from dealersync.sandbox.portal import Clock, create_app
from dealersync.services import claims
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.db import make_engine, upgrade
from dealersync.store.tables import claim_submission, warranty_claim_job
from tests.conftest import PG_URL, require_postgres
from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust, write
from tests.sandbox.server import serving

TODAY = date(2026, 11, 23)
WINDOW = 400


# ------------------------------------------------------------------------------------ two processes

def engine_for(url: str, schema: str | None):
    return make_engine(url, connect_args={"options": f"-csearch_path={schema}"}) if schema else make_engine(url)


def _child(target, barrier, results, i, args):
    try:
        barrier.wait(timeout=180)
        results.put((i, "ok", target(*args)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        results.put((i, "error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def fresh_processes():
    """Children that share nothing with the test process (no engine, no connection, no thread): the
    forkserver's, which forks them from a clean process that imported this module once (with spawn,
    each child imported it again: most of a race's seconds)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def race(target, *calls) -> list:
    """Run ``target(*args)`` for each ``args`` in its own fresh process, all released by one barrier
    once they are up; returns what each returned (in call order); an error in a child fails the test."""
    ctx = fresh_processes()
    barrier, results = ctx.Barrier(len(calls)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(target, barrier, results, i, args)) for i, args in enumerate(calls)]
    for p in procs:
        p.start()
    got: dict = {}
    deadline = time.monotonic() + 600
    while len(got) < len(procs) and time.monotonic() < deadline:
        try:
            i, kind, value = results.get(timeout=1)
            got[i] = (kind, value)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and results.empty():
                break
    for p in procs:
        p.join(60)
    assert len(got) == len(procs), f"a child process died: exit codes {[p.exitcode for p in procs]}"
    errors = [v for k, v in got.values() if k == "error"]
    assert not errors, errors[0]
    return [got[i][1] for i in range(len(calls))]


def ingest_in_child(url, schema, path, chunk_rows=250):
    engine = engine_for(url, schema)
    try:
        r = ingest_file(engine, path, chunk_rows=chunk_rows)
        return {"status": r.status, "load_id": r.load_id, "rows_loaded": r.rows_loaded,
                "rows_quarantined": r.rows_quarantined, "value_issues": r.value_issues, "message": r.message}
    finally:
        engine.dispose()


def upgrade_in_child(url, schema):
    engine = engine_for(url, schema)
    try:
        upgrade(engine)
        with engine.connect() as c:
            return c.execute(sa.text("select version_num from alembic_version")).scalar()
    finally:
        engine.dispose()


def submit_in_child(url, schema, portal_url):
    engine = engine_for(url, schema)
    try:
        return claims.push(engine, client_for(portal_url), TODAY, WINDOW, workers=2)
    finally:
        engine.dispose()


def _die(res):
    os._exit(9)   # killed mid-load: no clean-up of any kind


def ingest_and_die(url, schema, path):
    engine = engine_for(url, schema)
    ingest_file(engine, path, chunk_rows=250, progress=_die)


# ------------------------------------------------------------------------------------ stores

@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request, tmp_path):
    """(url, schema) of an empty database, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield PG_URL, schema
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def store(empty_store):
    """(url, schema, engine) of a migrated, empty store."""
    url, schema = empty_store
    engine = engine_for(url, schema)
    upgrade(engine)
    yield url, schema, engine
    engine.dispose()


def q(engine, sql: str) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(sql)).mappings()]


def customers(n: int, prefix: str = "C", name: str = "张伟", bad_every: int = 7) -> list[list[str]]:
    return [cust(f"{prefix}{i}", name=name, idn="bad" if i % bad_every == 0 else "11010519491231002X",
                 mobile="123" if i % 11 == 0 else "13812345678") for i in range(n)]


# ------------------------------------------------------------------------------------ loads

def test_the_same_file_by_two_processes_loads_once(store, tmp_path):
    url, schema, engine = store
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, customers(1500)))   # 6 chunks of 250
    a, b = race(ingest_in_child, (url, schema, str(p)), (url, schema, str(p)))
    assert sorted([a["status"], b["status"]])[0] == "busy" or {a["status"], b["status"]} == {"loaded", "skipped"}
    done = a if a["status"] == "loaded" else b
    assert done["status"] == "loaded" and done["rows_loaded"] == 1500
    assert [r["status"] for r in q(engine, "select status from ingest_file")] == ["LOADED"]
    assert q(engine, "select count(*) n from dms_customer")[0]["n"] == 1500
    # issues counted once, no false "superseded" warnings
    assert q(engine, "select count(*) n from value_issue where reason_code = 'SUPERSEDED'")[0]["n"] == 0
    assert q(engine, "select count(*) n from value_issue")[0]["n"] == done["value_issues"]


def test_an_original_and_its_correction_at_once_leave_the_correction(store, tmp_path):
    url, schema, engine = store
    (tmp_path / "a").mkdir()
    orig = write(tmp_path / "a", "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, customers(1500)))
    fix = write(tmp_path / "a", "GZ0012_CUSTOMER_20261103_2.csv",
                csv_bytes(CUST_A, customers(1000, name="张伟(更正)")))   # 6 and 4 chunks
    a, b = race(ingest_in_child, (url, schema, str(orig)), (url, schema, str(fix)))
    ledger = {r["file_name"]: r for r in q(engine, "select * from ingest_file")}
    assert ledger[fix.name]["status"] == "LOADED"
    assert ledger[orig.name]["status"] == "REPLACED"
    got = q(engine, "select name, load_id, count(*) n from dms_customer group by name, load_id")
    assert got == [{"name": "张伟(更正)", "load_id": ledger[fix.name]["id"], "n": 1000}]


def test_a_correction_before_its_original_is_not_undone(store, tmp_path):
    url, schema, engine = store
    orig = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, customers(50)))
    fix = write(tmp_path, "GZ0012_CUSTOMER_20261103_2.csv", csv_bytes(CUST_A, customers(30, name="张伟(更正)")))
    first, = race(ingest_in_child, (url, schema, str(fix)))
    second, = race(ingest_in_child, (url, schema, str(orig)))
    assert first["status"] == "loaded" and second["status"] == "replaced"
    assert q(engine, "select name, count(*) n from dms_customer group by name") == [{"name": "张伟(更正)", "n": 30}]
    ledger = {r["file_name"]: r for r in q(engine, "select * from ingest_file")}
    assert ledger[orig.name]["status"] == "REPLACED" and ledger[orig.name]["replaced_by"] == ledger[fix.name]["id"]
    assert ledger[orig.name]["sha256"] is not None   # what was read is recorded all the same


def test_a_killed_loader_s_claim_is_taken_over(store, tmp_path):
    url, schema, engine = store
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, customers(750)))   # killed after its first chunk of 3
    ctx = fresh_processes()
    child = ctx.Process(target=ingest_and_die, args=(url, schema, str(p)))
    child.start()
    child.join(300)
    assert child.exitcode == 9
    assert [r["status"] for r in q(engine, "select status from ingest_file")] == ["LOADING"]
    res = ingest_file(engine, p, chunk_rows=250)
    assert res.status == "loaded" and res.rows_loaded == 750
    assert [(r["id"], r["status"]) for r in q(engine, "select id, status from ingest_file")] == [(res.load_id, "LOADED")]


# ------------------------------------------------------------------------------------ migrations

def test_two_first_upgrades_both_succeed(empty_store):
    url, schema = empty_store
    a, b = race(upgrade_in_child, (url, schema), (url, schema))
    assert a == b and a is not None


# ------------------------------------------------------------------------------------ claims

def client_for(url) -> OemClient:
    return OemClient(OemSettings(url=url + "/api/v1", client_id="dealersync", client_secret="sandbox-secret",
                                 dealer_number="GZ0012"), policy=RetryPolicy(base=0.01, cap=0.05, attempts=10))


def test_two_claims_submit_leave_no_acknowledged_claim_queued(store, tmp_path):
    url, schema, engine = store
    files = generate(tmp_path / "drop", rows=60, seed=3)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders", "repair_order_lines", "warranty_claims"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
    clock = Clock(review_after=30, decide_after=60, settle_after=90, claim_window_days=WINDOW)
    with serving(create_app(tmp_path / "portal.db", clock=clock)) as portal_url:
        a, b = race(submit_in_child, (url, schema, portal_url), (url, schema, portal_url))
        stats = __import__("requests").get(portal_url + "/_sandbox/stats").json()
    with engine.connect() as c:
        jobs = {r["claim_no"]: r for r in c.execute(sa.select(warranty_claim_job)).mappings()}
        subs = [dict(r) for r in c.execute(sa.select(claim_submission)).mappings()]
    acked = {s["claim_no"] for s in subs if s["state"] == "ACKED"}
    assert acked and stats["claims"] == stats["distinct_claims"] == len(acked)
    assert {jobs[c]["local_status"] for c in acked} == {"SUBMITTED"}
    assert not [j for j in jobs.values() if j["local_status"] in ("QUEUED", "SUBMITTING")]
    assert not [s for s in subs if s["state"] in ("PREPARED", "SENDING")]
    assert a["accepted"] + b["accepted"] == len(acked)
    assert a["queued"] + b["queued"] == len(acked)   # each claim prepared once
