"""Bulk writes (``store/bulk.py``): the binary COPY, the CSV COPY it falls back to, and SQLite's
executemany store the same values; records with awkward text survive the COPY."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa

from dealersync.store import bulk
from dealersync.store.tables import FEED_TABLES, ingest_file, quarantine

RO = FEED_TABLES["repair_orders"]
LINES = FEED_TABLES["repair_order_lines"]


def _load(conn) -> int:
    return conn.execute(ingest_file.insert().values(
        path="/x", file_name="x.csv", size=1, sha256="0" * 64, source="DMS", status="LOADING",
        started_at=datetime(2026, 11, 3))).inserted_primary_key[0]


def _strings(d: dict) -> pa.Table:
    return pa.table({k: pa.array(v, type=pa.int64() if k == "source_row" else pa.large_string())
                     for k, v in d.items()})


ROS = {"ro_number": ["RO1", "RO2", "RO3"],
       "opened_at": ["2024-01-02 08:30:00", "2024-02-29 23:59:59", None],
       "closed_at": [None, "2024-03-01 00:00:00", "1999-12-31 12:00:00"],
       "vin": ["LSVAU2180N2183294", None, "测试"],
       "mileage_km": ["12000", None, "-5"],
       "labor_amount": ["1280.5", "999999999999.9999", None],
       "total_amount": ["0", "-0.0001", "12"],
       "complaint": ['异响, "左前"\n第二行', "", "tab\there \\ back"],
       "source_row": [2, 3, 4]}
LINE_ROWS = {"ro_number": ["RO1", "RO1"], "line_no": ["1", "2"], "quantity": ["1.5", None],
             "causal_part": ["1", "0"], "source_row": [2, 3]}


def _constants(load_id: int, dealer: str) -> dict:
    return dict(dealer_code=dealer, business_date=date(2026, 11, 3), source_file="GZ0012_RO_20261103.csv",
                load_id=load_id, ingested_at=datetime(2026, 11, 3, 8, 0, 0))


def _rows(conn, table, dealer: str) -> list[dict]:
    rows = conn.execute(sa.select(table).where(table.c.dealer_code == dealer)
                        .order_by(table.c.source_row)).mappings().all()
    return [{k: v for k, v in r.items() if k != "dealer_code"} for r in rows]


def test_the_binary_copy_stores_what_the_text_copy_and_sqlite_store(engine, monkeypatch):
    encoded = []
    real = bulk._encode_binary
    monkeypatch.setattr(bulk, "_encode_binary", lambda b: encoded.append(b.num_rows) or real(b))
    with engine.begin() as conn:
        load = _load(conn)
        bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "A"))
        bulk.write_arrow(conn, LINES, _strings(LINE_ROWS), _constants(load, "A"))
        first = _rows(conn, RO, "A"), _rows(conn, LINES, "A")

        def no_binary(batch):
            raise pa.ArrowInvalid("forced")
        monkeypatch.setattr(bulk, "_encode_binary", no_binary)
        bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "B"))
        bulk.write_arrow(conn, LINES, _strings(LINE_ROWS), _constants(load, "B"))
        second = _rows(conn, RO, "B"), _rows(conn, LINES, "B")
    assert encoded == ([3, 2] if engine.dialect.name == "postgresql" else [])
    assert first == second
    ro1, ro2, ro3 = first[0]
    assert ro1["opened_at"] == datetime(2024, 1, 2, 8, 30) and ro1["closed_at"] is None
    assert ro2["labor_amount"] == Decimal("999999999999.9999") and ro2["total_amount"] == Decimal("-0.0001")
    assert ro3["mileage_km"] == -5 and ro3["complaint"] == "tab\there \\ back"
    assert ro1["complaint"] == '异响, "左前"\n第二行' and ro2["complaint"] == ""
    assert (ro1["business_date"], ro1["load_id"], ro1["source_row"]) == (date(2026, 11, 3), load, 2)
    assert ro1["ingested_at"] == datetime(2026, 11, 3, 8, 0, 0)
    assert [r["causal_part"] for r in first[1]] == [True, False]
    assert first[1][0]["quantity"] == Decimal("1.5") and first[1][1]["quantity"] is None


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)   # the binary COPY is PostgreSQL's
def test_a_value_arrow_will_not_cast_goes_as_text_and_the_server_decides(engine):
    """Arrow refuses to round 1.23456 into NUMERIC(16, 4); PostgreSQL's COPY rounds it."""
    with pytest.raises(pa.ArrowInvalid):
        bulk.typed(RO, _strings({"ro_number": ["RO9"], "labor_amount": ["1.23456"], "source_row": [2]}), {})
    with engine.begin() as conn:
        load = _load(conn)
        bulk.write_arrow(conn, RO, _strings({"ro_number": ["RO9"], "labor_amount": ["1.23456"], "source_row": [2]}),
                         _constants(load, "A"))
        assert _rows(conn, RO, "A")[0]["labor_amount"] == Decimal("1.2346")


def test_records_with_awkward_text_survive_the_bulk_insert(engine):
    awkward = ['a\tb', 'line1\nline2\r\n', 'back\\slash \\N', '"quoted", comma', '', None, '张伟\u3000']
    with engine.begin() as conn:
        load = _load(conn)
        bulk.write_records(conn, quarantine, [dict(load_id=load, source_file="f.csv", row_number=i + 2,
                                                   column_name=None if v is None else "c", raw_value=v,
                                                   reason_code="X", message=f"m{i}", raw_row=v)
                                              for i, v in enumerate(awkward)])
        got = conn.execute(sa.select(quarantine.c.raw_value, quarantine.c.raw_row, quarantine.c.column_name)
                           .order_by(quarantine.c.row_number)).all()
    assert [r[0] for r in got] == awkward and [r[1] for r in got] == awkward
    assert [r[2] for r in got] == [None if v is None else "c" for v in awkward]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_chunk_sent_in_slices_stores_what_one_slice_stores(engine, monkeypatch):
    with engine.begin() as conn:
        load = _load(conn)
        bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "A"))
        monkeypatch.setattr(bulk, "SLICE_ROWS", 2)
        assert len(list(bulk._encode_binary(bulk.typed(RO, _strings(ROS), {})))) == 4   # header, 2 slices, end
        bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "B"))
        assert _rows(conn, RO, "A") == _rows(conn, RO, "B")


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_servers_refusal_of_a_queued_copy_reaches_the_caller(engine, monkeypatch):
    """The slices go through psycopg's sending thread; a key already there still fails the write (the
    keyed upsert of ``write_chunk`` depends on it) and the transaction carries on after the savepoint."""
    monkeypatch.setattr(bulk, "SLICE_ROWS", 1)
    with engine.begin() as conn:
        load = _load(conn)
        bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "A"))
        sp = conn.begin_nested()
        with pytest.raises(Exception) as err:
            bulk.write_arrow(conn, RO, _strings(ROS), _constants(load, "A"))
        sp.rollback()
        assert getattr(err.value, "sqlstate", None) == "23505"
        assert len(_rows(conn, RO, "A")) == 3
