"""Store behaviour, identical on SQLite and PostgreSQL: idempotency, same-day replacement,
atomicity on a crash, upsert on natural keys, chunking, migrations."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from dealersync.services.ingest import ingest_file
from dealersync.store import repository as repo
from dealersync.store.db import upgrade
from tests.dealersync.test_ingest_dirt import CUST_A, RO_A, VIN1, csv_bytes, cust, ro, write


def table(engine, name, cols="*"):
    from dealersync.store.tables import FEED_TABLES
    order = "load_id, source_row" if name in {t.name for t in FEED_TABLES.values()} else "id"
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(f"select {cols} from {name} order by {order}")).mappings()]


def ledger(engine):
    with engine.connect() as c:
        return [dict(r) for r in repo.ledger(c)]


def test_same_bytes_again_is_a_no_op(engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C2", idn="bad")]))
    first = ingest_file(engine, p)
    before = (table(engine, "dms_customer"), table(engine, "value_issue"), ledger(engine))
    copy = write(tmp_path, "copy_of_it.csv", p.read_bytes())
    again = [ingest_file(engine, p), ingest_file(engine, copy, feed="customers")]
    assert first.status == "loaded" and [a.status for a in again] == ["skipped", "skipped"]
    assert (table(engine, "dms_customer"), table(engine, "value_issue"), ledger(engine)) == before


def test_corrected_reexport_replaces_the_day(engine, tmp_path):
    day1 = tmp_path / "v1"
    day1.mkdir()
    p1 = write(day1, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C2"), cust("C3")]))
    ingest_file(engine, p1)
    fixed = tmp_path / "v2"
    fixed.mkdir()
    p2 = write(fixed, "GZ0012_CUSTOMER_20261103.csv",
               csv_bytes(CUST_A, [cust("C1", name="张伟(更正)"), cust("C3")]))
    res = ingest_file(engine, p2)
    assert res.status == "loaded" and res.replaced_loads == [1]
    got = table(engine, "dms_customer", "customer_id, name, load_id")
    assert sorted((r["customer_id"], r["name"], r["load_id"]) for r in got) == [
        ("C1", "张伟(更正)", 2), ("C3", "张伟", 2)]
    assert [r["status"] for r in ledger(engine)] == ["REPLACED", "LOADED"]


def test_other_days_are_not_touched_and_older_days_do_not_overwrite(engine, tmp_path):
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261104.csv", csv_bytes(CUST_A, [cust("C1", name="新名字")])))
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
                              csv_bytes(CUST_A, [cust("C1", name="旧名字"), cust("C2")])))
    got = {r["customer_id"]: r for r in table(engine, "dms_customer")}
    assert got["C1"]["name"] == "新名字" and str(got["C1"]["business_date"]) == "2026-11-04"
    assert got["C2"]["name"] == "张伟"
    # a newer day updates on its natural key, keeping one row per dealer and customer
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261105.csv", csv_bytes(CUST_A, [cust("C2", name="李娜")])))
    got = {r["customer_id"]: r for r in table(engine, "dms_customer")}
    assert len(got) == 2 and got["C2"]["name"] == "李娜" and got["C2"]["source_file"] == "GZ0012_CUSTOMER_20261105.csv"


def test_dealers_are_kept_apart(engine, tmp_path):
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1")])))
    ingest_file(engine, write(tmp_path, "SZ0001_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1", name="李娜")])))
    got = sorted((r["dealer_code"], r["name"]) for r in table(engine, "dms_customer"))
    assert got == [("GZ0012", "张伟"), ("SZ0001", "李娜")]


def test_crash_mid_load_leaves_previous_state_intact(engine, tmp_path, monkeypatch):
    p1 = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C2")]))
    ingest_file(engine, p1)
    before = table(engine, "dms_customer")
    (tmp_path / "v2").mkdir()
    p2 = write(tmp_path / "v2", "GZ0012_CUSTOMER_20261103.csv",
               csv_bytes(CUST_A, [cust(f"N{i}", idn="bad") for i in range(30)]))

    def boom(*a, **k):
        raise RuntimeError("power cut")
    monkeypatch.setattr(repo, "mileage_warnings", boom)
    with pytest.raises(RuntimeError):
        ingest_file(engine, p2, chunk_rows=10)
    assert table(engine, "dms_customer") == before
    assert table(engine, "value_issue") == [] and table(engine, "quarantine") == []
    # the ledger row never stays LOADING (issue #15): FAILED, tried again by the next run
    assert [r["status"] for r in ledger(engine)] == ["LOADED", "FAILED"]
    monkeypatch.undo()
    res = ingest_file(engine, p2, chunk_rows=10)  # the retry completes, one ledger entry per file
    assert res.status == "loaded" and res.rows_loaded == 30 and res.value_issues == 30
    assert [r["status"] for r in ledger(engine)] == ["REPLACED", "LOADED"]
    assert len(table(engine, "dms_customer")) == 30


def test_chunked_load_matches_single_chunk(engine, tmp_path):
    data = [cust(f"C{i % 700}", name=f"客户{i}", mobile="12345" if i % 97 == 0 else "13812345678") for i in range(2500)]
    data.insert(1234, ["", "无名"] + [""] * 8)
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = ingest_file(engine, p, chunk_rows=1000)
    assert (res.rows_read, res.rows_quarantined, res.rows_superseded) == (2501, 1, 1800)
    assert res.value_issues == len([i for i in range(2500) if i % 97 == 0])
    got = {r["customer_id"]: r["name"] for r in table(engine, "dms_customer")}
    assert len(got) == 700 and got["C0"] == "客户2100"


def test_types_round_trip(engine, tmp_path):
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, [ro("RO1", km="12,000", total="1,280.50")]))
    ingest_file(engine, p)
    from dealersync.store.tables import FEED_TABLES
    with engine.connect() as c:
        r = c.execute(sa.select(FEED_TABLES["repair_orders"])).mappings().one()
    assert r["mileage_km"] == 12000 and float(r["total_amount"]) == 1280.5 and r["vin"] == VIN1
    assert r["opened_at"].year == 2024 and r["source_row"] == 2 and r["load_id"] == 1


def test_migrations_are_idempotent_and_match_the_tables(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from dealersync.store.db import alembic_config
    from dealersync.store.tables import metadata
    upgrade(engine)
    upgrade(engine)
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as c:
        assert c.execute(sa.text("select version_num from alembic_version")).scalar_one() == head
        diff = compare_metadata(MigrationContext.configure(c), metadata)
    assert [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")] == []


def test_pending_files_skips_unchanged_files_without_hashing(engine, tmp_path):
    import dealersync.services.ingest as ing
    drop = tmp_path / "drop"
    drop.mkdir()
    p = write(drop, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust()]))
    assert ing.pending_files(engine, [drop]) == []      # just written: inside the default stability window
    assert ing.pending_files(engine, [drop], stable_seconds=0) == [p]
    ingest_file(engine, p)
    assert ing.pending_files(engine, [drop], stable_seconds=0) == []
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))   # touched: read again
    assert ing.pending_files(engine, [drop], stable_seconds=0) == [p]
    assert ingest_file(engine, p).status == "skipped"                      # same bytes: nothing loaded
    assert ing.pending_files(engine, [drop], stable_seconds=0) == []       # and the ledger knows the new mtime


def test_awkward_values_round_trip_exactly(engine, tmp_path):
    """Commas, quotes, backslashes, tabs-as-spaces and CJK punctuation survive staging (COPY CSV on
    PostgreSQL) unchanged; blank stays NULL."""
    names = ['张伟, "老张"', "back\\slash\\N", "王芳；李娜", "O'Brien 有限公司", "a\"b\"\"c"]
    data = [cust(f"C{i}", name=n, address="") for i, n in enumerate(names)]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = ingest_file(engine, p)
    assert res.rows_loaded == len(names)
    from dealersync.store.tables import FEED_TABLES
    t = FEED_TABLES["customers"]
    with engine.connect() as c:
        got = c.execute(sa.select(t.c.customer_id, t.c.name, t.c.address).order_by(t.c.source_row)).all()
    expected = [n.replace("；", ";") for n in names]   # NFKC makes full-width punctuation half-width
    assert [r.name for r in got] == expected
    assert all(r.address is None for r in got)


def test_a_write_failing_on_the_writer_thread_rolls_the_whole_file_back(engine, tmp_path, monkeypatch):
    p1 = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C2")]))
    ingest_file(engine, p1)
    before = table(engine, "dms_customer")
    (tmp_path / "v2").mkdir()
    p2 = write(tmp_path / "v2", "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(f"N{i}") for i in range(30)]))
    real, calls = repo.write_chunk, []

    def third_write_fails(*a, **k):   # chunks 1 and 2 are in the table when the disk fills
        calls.append(1)
        if len(calls) == 3:
            raise OSError("no space left on device")
        return real(*a, **k)
    monkeypatch.setattr(repo, "write_chunk", third_write_fails)
    with pytest.raises(OSError):
        ingest_file(engine, p2, chunk_rows=10)
    assert len(calls) == 3
    assert table(engine, "dms_customer") == before   # the earlier load is back, the new rows are gone
    assert [r["status"] for r in ledger(engine)] == ["LOADED", "FAILED"]   # never left LOADING


def test_keys_already_in_the_table_take_the_upsert_path_chunk_by_chunk(engine, tmp_path):
    # day 1 loads C0..C49; day 2 repeats C40..C89: chunk by chunk, some keys exist and some do not
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
                              csv_bytes(CUST_A, [cust(f"C{i}") for i in range(50)])))
    res = ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261104.csv",
                                    csv_bytes(CUST_A, [cust(f"C{i}", name="李娜") for i in range(40, 90)])),
                      chunk_rows=7)
    got = {r["customer_id"]: (r["name"], r["source_file"]) for r in table(engine, "dms_customer")}
    assert res.rows_loaded == 50 and res.rows_superseded == 0 and len(got) == 90
    assert got["C39"] == ("张伟", "GZ0012_CUSTOMER_20261103.csv")
    assert got["C40"] == got["C89"] == ("李娜", "GZ0012_CUSTOMER_20261104.csv")


def test_feed_tables_keep_their_rows_across_the_natural_key_migration(engine, tmp_path):
    """0009 drops the surrogate id of the feed tables; rows loaded before it are kept, and going back
    to 0008 gives them ids again."""
    from alembic import command

    from dealersync.store.db import alembic_config
    ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C2")])))
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    with engine.connect() as c:
        ids = c.execute(sa.text("select customer_id, id from dms_customer order by id")).all()
    assert [r[0] for r in ids] == ["C1", "C2"] and all(r[1] for r in ids)
    upgrade(engine)
    got = table(engine, "dms_customer", "customer_id, name, source_row")
    assert got == [{"customer_id": "C1", "name": "张伟", "source_row": 2},
                   {"customer_id": "C2", "name": "张伟", "source_row": 3}]
    res = ingest_file(engine, write(tmp_path, "GZ0012_CUSTOMER_20261104.csv", csv_bytes(CUST_A, [cust("C2", name="李娜")])))
    assert res.status == "loaded" and len(table(engine, "dms_customer")) == 2


def _mileage_oracle(visits):
    """The rule in plain Python: a visit is flagged when an earlier visit of its VIN shows more km.
    ``visits``: (key, vin, opened, km, load, source_row) as they stand in the table."""
    flagged = set()
    by_vin: dict[str, list] = {}
    for v in visits:
        if v[3] is not None:
            by_vin.setdefault(v[1], []).append(v)
    for vs in by_vin.values():
        top = None
        for v in sorted(vs, key=lambda v: v[2]):
            if top is not None and top > v[3]:
                flagged.add((v[4], v[5]))
            top = v[3] if top is None else max(top, v[3])
    return flagged


def test_mileage_rule_from_the_loads_own_repeats_and_against_other_loads(engine, tmp_path, monkeypatch):
    """The first load of a dealer ranks only the VINs it saw twice (counted as the chunks passed, so
    repeats across chunks, superseded keys and blank mileages count); a later load ranks against the
    table. Both agree with the rule written out in Python."""
    import random

    import numpy as np

    from dealersync.schemas.identifiers import make_vins
    rnd = random.Random(7)
    vins = list(make_vins(np.random.default_rng(7), 12))
    took = []
    real = repo._other_loads
    monkeypatch.setattr(repo, "_other_loads", lambda *a: took.append(real(*a)) or took[-1])
    table_now: dict[str, tuple] = {}
    expected, got = set(), set()
    for day, n in [(3, 90), (4, 40)]:
        data, load_rows = [], {}
        for i in range(n):
            key = f"RO{rnd.randrange(0, 150):04d}"          # keys come again inside and across files
            opened = f"2024-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} {i % 24:02d}:{day * 10 + i // 60:02d}:{i % 60:02d}"
            km = "" if rnd.random() < 0.1 else str(rnd.randrange(1000, 60000))
            data.append(ro(key, opened=opened, vin=rnd.choice(vins), km=km))
            load_rows[key] = (data[-1][3], opened, int(km) if km else None, i + 2)   # the last of a key wins
        res = balanced_load(ingest_file(engine, write(tmp_path, f"GZ0012_RO_2026110{day}.csv", csv_bytes(RO_A, data)),
                                        chunk_rows=16))
        for key, (vin, opened, km, row) in load_rows.items():
            table_now[key] = (key, vin, opened, km, res.load_id, row)
        expected |= _mileage_oracle(table_now.values()) - {(v[4], v[5]) for v in table_now.values()
                                                            if v[4] != res.load_id}
        got |= {(r["load_id"], r["source_row"]) for r in table(engine, "value_issue")
                if r["reason_code"] == "MILEAGE_BACKWARDS"}
    assert took == [False, True]
    assert len(expected) > 5 and got == expected


def balanced_load(res):
    assert res.status == "loaded" and res.rows_read == res.rows_loaded + res.rows_quarantined, res
    return res


def test_repeated_values_are_counted_across_chunks_and_give_up_past_the_cap():
    import polars as pl
    rv = repo.RepeatedValues("vin", where="km")
    rv.add(pl.DataFrame({"vin": ["A", "B", None], "km": ["1", None, "3"]}))
    rv.add(pl.DataFrame({"vin": ["A", "B", "C"], "km": ["1", "2", "3"]}))
    rv.add(pl.DataFrame({"other": ["A"]}))                  # a frame without the columns counts nothing
    assert rv.repeated() == ["A"]                           # B's first visit had no mileage
    capped = repo.RepeatedValues("vin", cap=3)
    capped.add(pl.DataFrame({"vin": ["A", "B", "A"]}))
    assert capped.repeated() == ["A"]
    capped.add(pl.DataFrame({"vin": ["C", "D"]}))                 # four distinct values: past the cap
    assert capped.repeated() is None


def test_repeated_values_match_counting_them_all_at_once():
    import random

    import polars as pl
    rnd = random.Random(3)
    values = [f"V{rnd.randrange(3000):05d}" for _ in range(5000)]
    rv = repo.RepeatedValues("vin")
    cuts = sorted(rnd.sample(range(1, len(values)), 12))
    for a, b in zip([0, *cuts], [*cuts, len(values)]):
        rv.add(pl.DataFrame({"vin": values[a:b]}))
    everything = pl.Series(values)
    assert rv.repeated() == everything.filter(everything.is_duplicated()).unique().sort().to_list()
    assert sum(len(part) for part in rv._again) == len(rv.repeated())   # each repeated value's text kept once
