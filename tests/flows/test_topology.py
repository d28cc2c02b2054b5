"""The scale-out topology of docs/operations.md, for real: a Prefect server on PostgreSQL, two process
workers, deployments for two dealers run at once (and twice each) against one PostgreSQL store. No row
may be lost or loaded twice."""
from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import requests
import sqlalchemy as sa

from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.db import make_engine, upgrade
from tests.conftest import PG_URL, require_postgres

from .prefect_server import BIN, prefect, prefect_server, stop

ROOT = Path(__file__).resolve().parents[2]
DEALERS = {"AAA001": 1, "BBB002": 2}
FEEDS = ["customers", "vehicles", "repair_orders", "repair_order_lines", "vehicle_sales", "warranty_claims", "stock"]

DEPLOY = """
import json, sys
from prefect import flow
folders = json.loads(sys.argv[1])
f = flow.from_source(source=sys.argv[2], entrypoint="flows/ingest.py:ingest_dms_exports")
for dealer, folder in folders.items():
    f.deploy(name=f"ingest-{dealer}", work_pool_name="dealersync", parameters={"folders": [folder], "dealer": dealer},
             concurrency_limit=1, print_next_steps=False)
"""


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_two_workers_two_dealers_one_postgres_store(tmp_path):
    require_postgres()
    # the Prefect server's own database (PostgreSQL, as the notes require for concurrency)
    pdb = f"prefect_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(PG_URL), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {pdb}")
    with psycopg.connect(_conninfo(PG_URL).rsplit("/", 1)[0] + f"/{pdb}", autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    prefect_db = PG_URL.replace("postgresql+psycopg://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{pdb}"
    # the dealersync store: one PostgreSQL schema shared by both workers
    schema = f"topo_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    store_url = PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}"
    workers = []
    try:
        store = make_engine(store_url)
        upgrade(store)
        folders = {}
        for dealer, seed in DEALERS.items():
            folders[dealer] = str(tmp_path / dealer)
            generate(Path(folders[dealer]), rows=40, seed=seed, dealer=dealer)
        with prefect_server(tmp_path / "prefect", prefect_db) as (api, env):
            prefect(env, "work-pool", "create", "dealersync", "--type", "process")
            import json
            r = subprocess.run([str(BIN / "python"), "-c", DEPLOY, json.dumps(folders), str(ROOT)], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr[-3000:]
            wenv = {**env, "DEALERSYNC_DATABASE_URL": store_url, "DEALERSYNC_DATA_DIR": str(tmp_path / "data"),
                    "DEALERSYNC_STABLE_SECONDS": "0"}   # the files the test wrote are complete
            for i in range(2):
                log = open(tmp_path / f"worker{i}.log", "wb")
                workers.append((subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "dealersync",
                                                  "--name", f"worker-{i}", "--limit", "2"], env=wenv, cwd=ROOT,
                                                 stdout=log, stderr=subprocess.STDOUT), log))
            # both dealers at once, each twice (a second run, or a retry, must change nothing)
            for dealer in DEALERS:
                for _ in range(2):
                    prefect(env, "deployment", "run", f"ingest_dms_exports/ingest-{dealer}")
            deadline = time.monotonic() + 300
            while True:
                runs = requests.post(api + "/flow_runs/filter", json={"limit": 50}, timeout=10).json()
                states = [fr["state"]["type"] for fr in runs]
                if len(runs) == 4 and all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states):
                    break
                assert time.monotonic() < deadline, f"runs did not finish: {states}\n" + \
                    (tmp_path / "worker0.log").read_text(errors="replace")[-3000:]
                time.sleep(2)
            assert states == ["COMPLETED"] * 4, [(fr["name"], fr["state"]["message"]) for fr in runs]
            picked = {fr.get("work_queue_name") for fr in runs}
            assert picked == {"default"}
        # the reference: the same files into a private SQLite store, one process
        ref = make_engine(f"sqlite:///{tmp_path / 'ref.db'}")
        upgrade(ref)
        for folder in folders.values():
            for p in sorted(Path(folder).glob("*_*_*.*")):
                if "truth" not in p.name:
                    ingest_file(ref, p)
        from dealersync.store.tables import FEED_TABLES, ingest_file as ledger
        for e in (store, ref):
            with e.connect() as c:
                files = c.execute(sa.select(ledger.c.dealer_code, ledger.c.status)).all()
                assert sorted(files) == sorted([(d, "LOADED") for d in DEALERS for _ in FEEDS]), files
        for feed in FEEDS:
            t = FEED_TABLES[feed]
            q = sa.select(t.c.dealer_code, sa.func.count()).group_by(t.c.dealer_code).order_by(t.c.dealer_code)
            with store.connect() as a, ref.connect() as b:
                assert a.execute(q).all() == b.execute(q).all(), feed
    finally:
        for p, log in workers:
            stop(p, log)
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        with psycopg.connect(_conninfo(PG_URL), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {pdb} WITH (FORCE)")
