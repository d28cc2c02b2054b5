"""Nothing unmasked is handed to Prefect (issue #16, item 1): on PostgreSQL, ``pull_crm`` meets a CRM lead
too long for its column (quarantined, logged) and ``resolve_customers`` fails on a unique key whose
DETAIL quotes a mobile (a unique index on source mobiles stands for the concurrent runs' key clash), in
their own process with a temporary PREFECT_HOME (the ephemeral server's SQLite database lives there). Its stdout, stderr, every file under PREFECT_HOME and every text cell of the
Prefect database (logs, flow and task run states, artifacts, parameters) hold no mobile, resident ID,
e-mail or secret."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import requests

from dealersync.sandbox.crm import create_app
from tests.dealersync.pii_scan import find_pii
from tests.dealersync.test_masking_paths import LEAD, PLANTED, pg_schema  # noqa: F401  (fixture)
from tests.sandbox.server import serving

SCRIPT = """
import sys
import sqlalchemy as sa
from dealersync.config import get_settings
from dealersync.flows.crm import pull_crm
from dealersync.flows.resolve import resolve_customers
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.db import make_engine, upgrade
eng = make_engine(get_settings().effective_database_url)
upgrade(eng)
files = generate(sys.argv[1], rows=60, seed=3)
for feed in ("customers", "vehicle_sales", "repair_orders"):
    ingest_file(eng, files[feed])
with eng.begin() as c:
    c.execute(sa.text("CREATE UNIQUE INDEX pii_probe ON customer_record (raw_mobile)"))
pull_crm()
try:
    resolve_customers()
except Exception as e:
    print("flow failed:", type(e).__name__)
"""


RUN_TABLES = ("log", "flow_run", "flow_run_state", "task_run", "task_run_state", "artifact", "artifact_collection",
              "variable")


def _db_text(db, tables=None) -> str:
    """Every row of the database (or of ``tables``) as text."""
    con = sqlite3.connect(db)
    try:
        if tables is None:
            return "\n".join(con.iterdump())
        return "\n".join(repr(row) for t in tables for row in con.execute(f'SELECT * FROM "{t}"'))
    finally:
        con.close()


def test_a_failing_flow_leaves_no_personal_data_in_prefect(pg_schema, tmp_path):  # noqa: F811
    home = tmp_path / "prefect-home"
    with serving(create_app(tmp_path / "crm.db", seed_leads=0)) as url:
        requests.post(url + "/_sandbox/leads", json=LEAD, timeout=10).raise_for_status()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                    "DEALERSYNC_DATA_DIR": str(tmp_path / "data"), "DEALERSYNC_DATABASE_URL": pg_schema,
                    "DEALERSYNC_CRM_URL": url + "/crm/v1", "DEALERSYNC_CRM_TOKEN": "sandbox-token"})
        r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "drop")], env=env, capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
    assert "flow failed: MaskedError" in r.stdout, (r.stdout[-2000:], r.stderr[-3000:])
    db = home / "prefect.db"
    assert db.exists(), sorted(p.name for p in home.iterdir())
    dump = _db_text(db)
    # the failure did reach Prefect: a failed state whose message names the error kind, masked
    assert "Failed" in dump and "UniqueViolation" in dump, dump[-3000:]
    # Prefect seeds its own block-type examples (a Twilio number, support e-mails): the planted values are
    # looked for everywhere, the generic patterns in the tables a run writes
    assert [p for p in PLANTED if p in dump] == []
    runs = _db_text(db, RUN_TABLES)
    texts = {"stdout": r.stdout, "stderr": r.stderr, "prefect.db runs": runs}
    for p in home.rglob("*"):
        if p.is_file():
            raw = p.read_bytes().decode("utf-8", "replace")
            texts[str(p.relative_to(home))] = raw if not p.name.startswith("prefect.db") else \
                "".join(x for x in PLANTED if x in raw)   # the database file and its WAL: planted values only
    for p in (tmp_path / "data").rglob("*.log"):
        texts[p.name] = p.read_text(encoding="utf-8", errors="replace")
    leaks = {k: find_pii(v, PLANTED) for k, v in texts.items()}
    assert {k: v for k, v in leaks.items() if v} == {}
