"""The write path of a chunk (``repository.write_chunk``): the rows whose key an earlier chunk of the
load had go to the stage and the keyed upsert, the others by the plain bulk write, which is tried
no more once it met another load's key. The outcome is the one the matrix checks; here, what it costs:
which rows take which way, and no bulk write that is bound to fail."""
from __future__ import annotations

import numpy as np
import pytest

from dealersync.services.ingest import ingest_file
from dealersync.store import repository as repo
from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust, write
from tests.store.test_store import table


@pytest.fixture
def spy(monkeypatch):
    """Rows written by the plain bulk write into a canonical table, and its failed attempts."""
    got = {"copied": 0, "failed": 0, "staged": 0}
    real_copy, real_stage = repo._copy_new_rows, repo.stage_frame

    def copy(conn, feed, frame, lineage):
        ok = real_copy(conn, feed, frame, lineage)
        got["copied" if ok else "failed"] += frame.height if ok else 1
        return ok

    def stage(conn, st, frame):
        got["staged"] += frame.height
        return real_stage(conn, st, frame)
    monkeypatch.setattr(repo, "_copy_new_rows", copy)
    monkeypatch.setattr(repo, "stage_frame", stage)
    return got


def test_only_the_rows_of_a_key_seen_before_take_the_upsert(engine, tmp_path, spy):
    # C0..C59, then C10..C19 again: chunks of 7 rows (the first and last a quarter); no failed COPY
    ids = [f"C{i}" for i in range(60)] + [f"C{i}" for i in range(10, 20)]
    res = ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
                                    csv_bytes(CUST_A, [cust(c, name=f"名{n}") for n, c in enumerate(ids)])),
                      chunk_rows=7)
    assert (res.rows_loaded, res.rows_superseded) == (70, 10)
    assert spy == {"copied": 60, "failed": 0, "staged": 10}
    got = {r["customer_id"]: (r["name"], r["source_row"]) for r in table(engine, "dms_customer")}
    assert len(got) == 60 and got["C10"] == ("名60", 62) and got["C9"] == ("名9", 11)


def test_after_a_key_of_another_load_every_later_chunk_goes_to_the_stage(engine, tmp_path, spy):
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
                              csv_bytes(CUST_A, [cust(f"C{i}") for i in range(10)])))
    spy.update(copied=0, failed=0, staged=0)
    res = ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261104.csv",
                                    csv_bytes(CUST_A, [cust(f"C{i}", name="李娜") for i in range(5, 60)])),
                      chunk_rows=8)
    assert (res.rows_loaded, res.rows_superseded) == (55, 0)
    assert spy["failed"] == 1 and spy["copied"] == 0 and spy["staged"] == 55   # one attempt, then the stage
    got = {r["customer_id"]: r["name"] for r in table(engine, "dms_customer")}
    assert len(got) == 60 and got["C4"] == "张伟" and got["C5"] == got["C59"] == "李娜"


def test_load_keys_say_again_for_a_hash_seen_and_give_up_past_the_cap():
    keys = repo._LoadKeys(cap=10)
    a = np.array([5, 1, 9], dtype=np.uint64)
    assert not keys.again(a).any()
    keys.add(a)
    assert keys.again(np.array([9, 2, 1], dtype=np.uint64)).tolist() == [True, False, True]
    keys.add(np.arange(100, 108, dtype=np.uint64))       # 11 > cap: every row may be a repeat from now on
    assert keys.seen is None and keys.again(np.array([2], dtype=np.uint64)).tolist() == [True]
