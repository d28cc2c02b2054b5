"""A ledger that tells the truth (issue #15): the hash of the bytes read, a file changed while read is
not LOADED, a name rejection keyed on the name, drop folders that wait for complete files, a value the
database refuses fails only its file; ``--force`` re-reads a file (issue #17 item 9). On SQLite and
PostgreSQL."""
from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from datetime import datetime, timedelta

import sqlalchemy as sa

from dealersync.config import Settings
from dealersync.schemas.profiles import load_profiles
from dealersync.services import ops
from dealersync.services.ingest import done_marker_required, ingest_file, pending_files
from dealersync.store import ledger
from dealersync.store.tables import ingest_file as ingest_file_table
from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust, write


def q(engine, sql: str) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(sql)).mappings()]


def many(n: int, name: str = "张伟") -> list[list[str]]:
    return [cust(f"C{i}", name=name, idn="bad" if i % 5 == 0 else "11010519491231002X") for i in range(n)]


def test_a_file_rewritten_while_read_is_not_loaded_and_is_retried(engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, many(3000)))
    second = csv_bytes(CUST_A, many(2500, name="李娜"))

    def rewrite(res):   # the DMS writes the file again while the first chunk is being validated
        if p.read_bytes() != second:
            p.write_bytes(second)
    res = ingest_file(engine, p, chunk_rows=1000, progress=rewrite)
    assert res.status == "failed" and "changed while it was read" in res.message
    row, = q(engine, "select * from ingest_file")
    assert row["status"] == "FAILED" and row["reason"] == "CHANGED_DURING_READ"
    assert q(engine, "select count(*) n from dms_customer")[0]["n"] == 0
    res = ingest_file(engine, p, chunk_rows=1000)   # once stable, tried again under the same ledger row
    assert res.status == "loaded" and res.rows_loaded == 2500
    row, = q(engine, "select * from ingest_file")
    assert row["status"] == "LOADED" and row["sha256"] == hashlib.sha256(second).hexdigest()
    assert row["size"] == len(second)


def test_the_ledger_hash_is_of_the_bytes_read(engine, tmp_path):
    data = csv_bytes(CUST_A, many(10))
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv.gz", __import__("gzip").compress(data))
    assert ingest_file(engine, p).status == "loaded"
    row, = q(engine, "select sha256, size from ingest_file")
    assert row == {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}


def test_a_name_rejection_is_keyed_on_the_name(engine, tmp_path):
    data = csv_bytes(CUST_A, many(5))
    bad = write(tmp_path, "GZ0012_CUSTMER_20261103.csv", data)
    first = ingest_file(engine, bad)
    assert first.status == "rejected" and "feed" in first.message
    again = ingest_file(engine, bad)
    assert again.status == "rejected" and "rejected before" in again.message
    good = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", data)   # the correctly renamed copy
    assert pending_files(engine, [tmp_path], stable_seconds=0) == [good]
    res = ingest_file(engine, good)
    assert res.status == "loaded" and res.rows_loaded == 5
    assert pending_files(engine, [tmp_path], stable_seconds=0) == []


def test_drop_folders_wait_for_the_done_marker_and_a_stable_file(engine, tmp_path):
    assert Settings().stable_seconds > 0
    prof = tmp_path / "p.toml"
    prof.write_text('[strict]\nextends = "dms_a"\nrequire_done_marker = true\n', encoding="utf-8")
    profiles = load_profiles([prof])
    assert done_marker_required(profiles, "strict") and not done_marker_required(profiles, "dms_a")
    drop = tmp_path / "drop"
    drop.mkdir()
    p = write(drop, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, many(5)))
    assert pending_files(engine, [drop], stable_seconds=0, require_done_marker=True) == []
    (drop / (p.name + ".done")).write_text("")
    assert pending_files(engine, [drop], stable_seconds=0, require_done_marker=True) == [p]
    assert pending_files(engine, [drop]) == []   # just written: inside the default stability window


def test_a_value_the_database_refuses_fails_only_its_file(engine, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    rows = many(3000)
    rows[2000][1] = "张\x00伟"                   # a NUL byte in a cell, well past the sniffed start
    write(drop, "GZ0012_CUSTOMER_20261101.csv", csv_bytes(CUST_A, rows))
    write(drop, "A" * 33 + "_CUSTOMER_20261102.csv", csv_bytes(CUST_A, many(5)))   # a 33-character dealer
    write(drop, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, many(7)))
    runs = [ingest_file(engine, f) for f in sorted(drop.iterdir())]
    by = {r.file: r for r in runs}
    assert by["GZ0012_CUSTOMER_20261103.csv"].status == "loaded"       # the run went on to the next files
    long = by["A" * 33 + "_CUSTOMER_20261102.csv"]
    assert long.status == "rejected" and "33 characters" in long.message
    nul = by["GZ0012_CUSTOMER_20261101.csv"]
    statuses = {r["file_name"]: (r["status"], r["reason"], r["message"]) for r in q(engine, "select * from ingest_file")}
    assert "LOADING" not in {s for s, _, _ in statuses.values()}
    if engine.dialect.name == "postgresql":
        assert nul.status == "failed"
        status, reason, message = statuses["GZ0012_CUSTOMER_20261101.csv"]
        assert status == "FAILED" and reason == "VALUE_REFUSED"
        assert "GZ0012_CUSTOMER_20261101.csv" in message and "NUL" in message and "张" not in message
        assert "row 2002" in message and "column name" in message
    else:
        assert nul.status == "loaded"   # SQLite stores the NUL as it is


def test_force_rereads_a_file_after_a_profile_change(engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, many(10) + [cust("")]))
    first = ingest_file(engine, p)
    assert ingest_file(engine, p).status == "skipped"
    again = ingest_file(engine, p, force=True)
    assert again.status == "loaded" and again.load_id != first.load_id and again.replaced_loads == [first.load_id]
    assert [(r["id"], r["status"]) for r in q(engine, "select id, status from ingest_file order by id")] == [
        (first.load_id, "REPLACED"), (again.load_id, "LOADED")]
    assert {r["load_id"] for r in q(engine, "select load_id from dms_customer")} == {again.load_id}
    with engine.connect() as c:
        st = ops.status(c, __import__("datetime").date(2026, 11, 23))
    assert st["quarantine"]["rows"] == again.rows_quarantined
    assert st["quarantine"]["rows_of_replaced_loads"] == first.rows_quarantined > 0


def test_a_live_holder_s_claim_is_never_rearmed_a_dead_one_s_is(engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, many(5)))
    key = ledger.claim_key(p)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with ledger.load_lock(engine, key):   # PostgreSQL: another live session holds the load
            with engine.begin() as c:         # SQLite: the row names a live process on this host
                claim = ledger.claim_load(c, key=key, alive=lambda row: True, path=str(p.resolve()),
                                          file_name=p.name, size=1, source="DMS")
                c.execute(sa.update(ingest_file_table).where(ingest_file_table.c.id == claim.load_id)
                          .values(claimed_by=f"{socket.gethostname()}:{sleeper.pid}"))
            res = ingest_file(engine, p)
            assert res.status == "busy" and res.rows_loaded == 0
            assert [(r["status"], r["rows_loaded"]) for r in q(engine, "select * from ingest_file")] == [("LOADING", 0)]
    finally:
        sleeper.kill()
        sleeper.wait()
    res = ingest_file(engine, p)              # the holder is gone: its claim is taken over
    assert res.status == "loaded" and res.load_id == claim.load_id and res.rows_loaded == 5


def test_a_claim_from_another_host_goes_stale_after_the_timeout():
    now = ledger.now()   # the stamps are the dealer clock's (dealersync.clock), not the host's
    assert ledger.holder_alive("elsewhere:42", now - timedelta(seconds=10), stale_seconds=60)
    assert not ledger.holder_alive("elsewhere:42", now - timedelta(seconds=120), stale_seconds=60)
    assert not ledger.holder_alive(None, now, stale_seconds=60)
    me = ledger.holder("run1")
    assert ledger.holder_alive(me, now, 60, me=me) and not ledger.holder_alive(me, now, 60, me=ledger.holder("run2"))
