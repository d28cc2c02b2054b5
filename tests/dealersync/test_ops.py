"""Operations: status overview, retention purge, backfill windows."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select, update

from dealersync.flows import deploy
from dealersync.services import ops
from dealersync.errors import ConfigurationError
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.tables import FEED_TABLES, ingest_file as ledger, purge_run, quarantine, value_issue


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=30, seed=2)
    for feed in ("customers", "repair_orders", "warranty_claims"):
        ingest_file(engine, files[feed])
    return engine


def test_status_reports_activity_and_problems(store):
    with store.begin() as c:
        st = ops.status(c, date(2026, 11, 23), pending_files=3)
    assert st["last_activity"]["ingest_dms_exports"] and st["last_activity"]["push_crm"] is None
    assert st["files"]["pending"] == 3 and st["files"]["loaded"] == 3
    assert st["quarantine"]["rows"] >= 1 and st["quarantine"]["top_reasons"]


def test_purge_keeps_repair_records_a_year_and_records_each_run(store):
    with pytest.raises(ConfigurationError, match="at least 365"):
        ops.Retention(repair_orders=200).check()
    with store.begin() as c:   # the loads are two years old
        c.execute(update(ledger).values(finished_at=datetime(2024, 10, 1)))
        q_before = c.execute(select(func.count()).select_from(quarantine)).scalar()
        ro_before = c.execute(select(func.count()).select_from(FEED_TABLES["repair_orders"])).scalar()
        dry = ops.purge(c, date(2026, 11, 23), dry_run=True)
        assert c.execute(select(func.count()).select_from(quarantine)).scalar() == q_before > 0
        assert {r["table"]: r["rows"] for r in dry}["quarantine"] == q_before
        done = ops.purge(c, date(2026, 11, 23))
        assert c.execute(select(func.count()).select_from(quarantine)).scalar() == 0
        assert c.execute(select(func.count()).select_from(value_issue)).scalar() == 0
        # repair orders opened within the policy (3 years) stay
        assert c.execute(select(func.count()).select_from(FEED_TABLES["repair_orders"])).scalar() == ro_before
        runs = c.execute(select(purge_run.c.dry_run)).scalars().all()
    assert runs == [True, False] and {r["table"] for r in done} >= {"repair_orders", "quarantine", "master_audit"}


def test_backfill_windows_one_per_day_and_per_month():
    w = deploy.windows("push_crm", date(2026, 10, 30), date(2026, 11, 2))
    assert [x[0] for x in w] == ["2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"]
    assert w[0][1] == {"day": "2026-10-30"}
    m = deploy.windows("monthly_csi_report", date(2026, 9, 15), date(2026, 11, 2))
    assert [x[1]["month"] for x in m] == ["2026-09", "2026-10", "2026-11"]
    p = deploy.windows("pull_crm", date(2026, 11, 1), date(2026, 11, 1))[0][1]
    assert p["stateless"] is True   # a backfill never moves the watermark
    with pytest.raises(ConfigurationError):
        deploy.windows("resolve_customers", date(2026, 11, 1), date(2026, 11, 2))
    with pytest.raises(ConfigurationError):
        deploy.windows("push_crm", date(2026, 11, 2), date(2026, 11, 1))
    assert [r["status"] for r in deploy.run_backfill("push_crm", date(2026, 11, 1), date(2026, 11, 3), dry_run=True,
                                                  progress=lambda m: None)] == ["dry-run"] * 3
