"""One ``dealersync resolve`` at a time on a store (issue #16 leftover): two real CLI processes at once on
SQLite and on PostgreSQL; a second run waits for the holder, or stops after ``lock_wait_seconds`` with a
message naming it (host:pid, since when); a dead holder's lock row is taken over (SQLite)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, insert, select

from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.db import make_engine, upgrade
from dealersync.store.ledger import holder
from dealersync.store.locks import RESOLVE, job_lock
from dealersync.store.tables import customer_record, master_customer, store_lock
from tests.conftest import PG_URL, require_postgres

CLI = str(Path(sys.executable).parent / "dealersync")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """(url for the CLI, engine) of a migrated store holding a sample dealer's customers and sales."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine, admin, schema = make_engine(url), None, None
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:10]}"
        admin = make_engine(PG_URL)
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
    upgrade(engine)
    files = generate(tmp_path / "drop", rows=150, seed=11)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    yield url, engine
    engine.dispose()
    if admin is not None:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def resolve_cli(url: str, tmp_path: Path, wait: float = 120, name: str = "run") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALERSYNC_")}
    env.update(DEALERSYNC_DATABASE_URL=url, DEALERSYNC_DATA_DIR=str(tmp_path / "data"),
               DEALERSYNC_LOCK_WAIT_SECONDS=str(wait), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    err = open(tmp_path / f"{name}.err", "w")
    return subprocess.Popen([CLI, "resolve", "--json"], env=env, stdout=subprocess.PIPE, stderr=err, text=True)


def finish(p: subprocess.Popen, tmp_path: Path, name: str) -> tuple[int, dict | None, str]:
    out, _ = p.communicate(timeout=600)
    err = (tmp_path / f"{name}.err").read_text()
    return p.returncode, json.loads(out) if p.returncode == 0 else None, err


def masters(engine) -> tuple[int, int, int]:
    """(active masters, source records, records without a master)."""
    with engine.begin() as c:
        return (c.execute(select(func.count()).select_from(master_customer).where(master_customer.c.status == "ACTIVE")).scalar(),
                c.execute(select(func.count()).select_from(customer_record)).scalar(),
                c.execute(select(func.count()).select_from(customer_record).where(customer_record.c.master_id.is_(None))).scalar())


def test_two_resolve_runs_at_once_make_each_master_once(db, tmp_path):
    url, engine = db
    a, b = resolve_cli(url, tmp_path, name="a"), resolve_cli(url, tmp_path, name="b")
    (ra, sa_, ea), (rb, sb, eb) = finish(a, tmp_path, "a"), finish(b, tmp_path, "b")
    assert ra == 0 and rb == 0, (ea[-800:], eb[-800:])
    active, records, unassigned = masters(engine)
    assert records > 0 and unassigned == 0
    # the one that ran second found the first's masters and made none of its own
    assert sorted([sa_["created"], sb["created"]]) == [0, active], (sa_, sb)
    with engine.begin() as c:
        assert c.execute(select(func.count()).select_from(store_lock)).scalar() == 0   # released


def test_a_second_resolve_waits_for_the_holder_or_stops_naming_it(db, tmp_path):
    url, engine = db
    with job_lock(engine, RESOLVE):
        rc, _, err = finish(resolve_cli(url, tmp_path, wait=1, name="short"), tmp_path, "short")
        assert rc == 1
        assert "another dealersync resolve is running" in err and holder() in err and "lock_wait_seconds" in err
        assert masters(engine)[0] == 0                          # it did nothing
        p = resolve_cli(url, tmp_path, wait=300, name="long")
        deadline = time.monotonic() + 120
        while "waiting up to" not in (tmp_path / "long.err").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "waiting up to 300 s" in (tmp_path / "long.err").read_text()
        assert p.poll() is None                                  # still waiting while the lock is held
    rc, stats, err = finish(p, tmp_path, "long")
    assert rc == 0 and stats["created"] == masters(engine)[0] > 0, err[-800:]


def test_a_dead_holder_s_lock_row_is_taken_over(db, tmp_path):
    url, engine = db
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL: the advisory lock goes with the dead session; the row only names the holder")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with engine.begin() as c:
        c.execute(insert(store_lock).values(name=RESOLVE, holder=f"{socket.gethostname()}:{dead.stdout.strip()}",
                                            since=datetime(2026, 11, 30, 8, 0)))
    rc, stats, err = finish(resolve_cli(url, tmp_path, wait=5, name="t"), tmp_path, "t")
    assert rc == 0 and stats["created"] > 0, err[-800:]
    assert "took over the lock" in err


def test_the_lock_is_released_when_the_job_fails(db):
    _, engine = db
    with pytest.raises(RuntimeError):
        with job_lock(engine, RESOLVE):
            raise RuntimeError("boom")
    done = threading.Event()
    def again():
        with job_lock(engine, RESOLVE, wait_seconds=5):
            done.set()
    t = threading.Thread(target=again)
    t.start()
    t.join(30)
    assert done.is_set()
