"""A customer's data on request (issue #16, item 6): ``master export ID`` gives everything held about
them; ``master erase ID --yes`` leaves none of their identifiers in any table of the store (every table
scanned by reflection, not just the ones the eraser knows), keeps the rows the dealership must keep,
and writes one audit row."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from dealersync.cli.main import main
from dealersync.resolution import service
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store import personal
from dealersync.store.tables import FEED_TABLES, customer_record, master_audit, master_customer


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=40, seed=11)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
    return engine


def _richest_master(c) -> str:
    """A master with records from several sources (DMS, SALES, SERVICE) and a mobile."""
    q = (select(customer_record.c.master_id).group_by(customer_record.c.master_id)
         .having(func.count(sa.distinct(customer_record.c.source)) >= 3)
         .order_by(func.count().desc(), customer_record.c.master_id))
    return c.execute(q).scalars().first()


def _everywhere(engine, values: set[str]) -> list[tuple[str, str]]:
    """(table, value) for each identifier found in any text cell of any table of the store."""
    meta = sa.MetaData()
    meta.reflect(engine)
    hits = []
    with engine.connect() as c:
        for t in meta.sorted_tables:
            for row in c.execute(select(t)):
                text = " ".join(str(v) for v in row if v is not None)
                hits += [(t.name, v) for v in values if v in text]
    return hits


def test_export_then_erase_leaves_no_identifier_anywhere(store):
    with store.begin() as c:
        mid = _richest_master(c)
        assert mid
        doc = personal.export_customer(c, mid)
    recs = doc["source_records"]
    assert {r["source"] for r in recs} >= {"DMS", "SALES", "SERVICE"}
    idents = {v for r in recs for v in (r["raw_mobile"], r["raw_id_number"], r["raw_email"]) if v and len(v) >= 6}
    idents |= {m for m in (doc["masters"][0]["primary_mobile"], doc["masters"][0]["id_number"]) if m}
    assert idents and {t for t, _ in _everywhere(store, idents)} >= {"dms_customer", "customer_record", "master_customer"}
    sales_before = _count(store, FEED_TABLES["vehicle_sales"])
    with store.begin() as c:
        counts = personal.erase_customer(c, mid, actor="test", reason="PIPL art. 47 request 42")
    assert counts["customer_record"] == len(recs) and counts["dms_customer"] >= 1
    assert _everywhere(store, idents) == []
    assert _count(store, FEED_TABLES["vehicle_sales"]) == sales_before        # the sale stays, without its buyer
    with store.begin() as c:
        m = c.execute(select(master_customer).where(master_customer.c.master_id == mid)).mappings().one()
        audit = c.execute(select(master_audit).where(master_audit.c.action == "ERASE")).mappings().all()
        again = personal.erase_customer(c, mid, actor="test")
    assert m["status"] == "ERASED" and m["name"] is None and m["primary_mobile"] is None
    assert len(audit) == 1 and audit[0]["master_id"] == mid and audit[0]["reason"] == "PIPL art. 47 request 42"
    assert json.loads(audit[0]["after"]) == counts
    assert again == {}


def _count(engine, t) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(t)).scalar()


def test_cli_export_and_erase(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    files = generate(tmp_path / "drop", rows=20, seed=4)
    assert main(["ingest", str(files["customers"]), str(files["vehicle_sales"])]) in (0, 2)
    assert main(["resolve"]) == 0
    from dealersync.config import get_settings
    from dealersync.store.db import make_engine
    eng = make_engine(get_settings().effective_database_url)
    with eng.connect() as c:
        mid = c.execute(select(customer_record.c.master_id).where(customer_record.c.source == "DMS")).scalars().first()
    capsys.readouterr()
    out = tmp_path / "export.json"
    assert main(["master", "export", mid, "--out", str(out), "--reason", "request 7"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["master_id"] == mid and doc["source_records"]
    assert main(["master", "erase", mid]) == 2                       # asks for --yes
    assert "--yes" in capsys.readouterr().err
    assert main(["master", "erase", mid, "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["customer_record"] >= 1
    assert main(["master", "erase", "M_NO_SUCH", "--yes"]) == 2
    with eng.connect() as c:
        actions = c.execute(select(master_audit.c.action).where(master_audit.c.master_id == mid)
                            .order_by(master_audit.c.id)).scalars().all()
    assert actions[-2:] == ["EXPORT", "ERASE"]
    eng.dispose()
