"""Retention for every personal table (issue #16, item 5): customers are purged once nothing of theirs
is kept, never while a vehicle, order or sale is; a future --date is refused; rows younger than the policy
need --yes; every purge is audited (table, rows, cutoff)."""
from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from dealersync.cli.main import main
from dealersync.errors import ConfigurationError
from dealersync.resolution import service
from dealersync.services import ops
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.tables import (FEED_TABLES, customer_record, master_contact, master_customer, master_vehicle,
                                     purge_run)

NOW = date(2026, 11, 30)
OLD = datetime(2020, 1, 1)
CUST, VEH, SALES, RO = (FEED_TABLES[n] for n in ("customers", "vehicles", "vehicle_sales", "repair_orders"))


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=40, seed=5)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders", "repair_order_lines", "warranty_claims"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
    return engine


def _frame(c, q) -> pd.DataFrame:
    return pd.DataFrame(c.execute(q).mappings().all())


def test_customers_go_once_nothing_of_theirs_is_kept_and_never_before(store):
    with store.begin() as c:
        # every export was last loaded six years ago; repair orders keep their own (recent) dates, sales go
        for t in (CUST, VEH, SALES):
            c.execute(update(t).values(ingested_at=OLD))
        ros = _frame(c, select(RO.c.customer_id, RO.c.vin))
        veh = _frame(c, select(VEH.c.vin, VEH.c.owner_customer_id))
        cust = set(c.execute(select(CUST.c.customer_id)).scalars())
        # the expected survivors, computed here from the frames (vehicles kept by a repair order, customers
        # by a kept vehicle or a repair order of theirs)
        kept_vins = set(ros["vin"].dropna())
        kept_owner = set(veh[veh["vin"].isin(kept_vins)]["owner_customer_id"].dropna())
        expect = {x for x in cust if x in kept_owner or x in set(ros["customer_id"].dropna())}
        assert 0 < len(expect) < len(cust)   # the sample has both kinds
        masters_before = c.execute(select(func.count()).select_from(master_customer)).scalar()
        out = ops.purge(c, NOW, now=NOW)
        left = set(c.execute(select(CUST.c.customer_id)).scalars())
        assert left == expect
        assert set(c.execute(select(VEH.c.vin)).scalars()) == set(veh["vin"]) & kept_vins
        assert c.execute(select(func.count()).select_from(SALES)).scalar() == 0
        # source records follow their rows; masters and contact points follow their records
        recs = _frame(c, select(customer_record.c.source, customer_record.c.source_id, customer_record.c.id,
                                customer_record.c.master_id))
        assert "SALES" not in set(recs["source"])
        assert {s.split(":", 1)[1] for s in recs[recs["source"] == "DMS"]["source_id"]} == expect
        ids = set(recs["id"])
        assert set(c.execute(select(master_contact.c.record_id)).scalars()) <= ids
        assert set(c.execute(select(master_vehicle.c.record_id)).scalars()) <= ids
        active = set(c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")).scalars())
        assert active == set(recs["master_id"])
        assert c.execute(select(func.count()).select_from(master_customer)).scalar() < masters_before
        run = c.execute(select(purge_run.c.result, purge_run.c.dry_run)).one()
    by = {r["table"]: r for r in json.loads(run.result)}
    assert not run.dry_run
    assert by["dms_customer"]["rows"] == len(cust) - len(expect) and by["dms_customer"]["cutoff"] == "2021-12-01"
    assert {"customer_record (source row gone)", "master_customer", "master_contact", "crm_lead"} <= set(by)
    assert out == json.loads(run.result)


def test_a_future_date_is_refused_and_nothing_is_deleted(store):
    with store.begin() as c:
        n = c.execute(select(func.count()).select_from(RO)).scalar()
        with pytest.raises(ConfigurationError, match="2062-11-30.*future"):
            ops.purge(c, date(2062, 11, 30), now=NOW)
        assert c.execute(select(func.count()).select_from(RO)).scalar() == n > 0


def test_cli_purge_with_a_typo_year_exits_2_and_keeps_every_repair_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    files = generate(tmp_path / "drop", rows=20, seed=2)
    assert main(["ingest", str(files["repair_orders"])]) == 0
    capsys.readouterr()
    assert main(["purge", "--date", "2062-11-30"]) == 2
    assert "future" in capsys.readouterr().err
    assert main(["purge", "--dry-run", "--json"]) == 0
    rows = {r["table"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["repair_orders"]["rows"] == 0


def test_rows_younger_than_the_policy_need_yes(store):
    """Repair orders are kept three years by default; a configured one year (the legal floor) would
    delete the ones between one and three years old: refused until confirmed."""
    short = ops.Retention(repair_orders=365)
    with store.begin() as c:
        c.execute(update(RO).values(opened_at=datetime(2024, 6, 1)))   # 2.5 years before NOW
        n = c.execute(select(func.count()).select_from(RO)).scalar()
        with pytest.raises(ConfigurationError, match=r"younger than the retention policy \(.*repair_orders %d" % n):
            ops.purge(c, NOW, short, now=NOW)
        dry = {r["table"]: r for r in ops.purge(c, NOW, short, dry_run=True, now=NOW)}
        assert dry["repair_orders"]["younger_than_policy"] == n
        assert c.execute(select(func.count()).select_from(RO)).scalar() == n
        ops.purge(c, NOW, short, now=NOW, confirm=True)
        assert c.execute(select(func.count()).select_from(RO)).scalar() == 0
        assert ops.purge(c, NOW, now=NOW)   # the default policy deletes nothing young: no confirmation asked


@pytest.mark.parametrize("days,error", [({"customers": 0}, "at least 1 day"), ({"custmers": 30}, "unknown kind"),
                                        ({"repair_orders": 100}, "at least 365")])
def test_retention_is_configurable_per_table_and_checked(days, error):
    with pytest.raises(ConfigurationError, match=error):
        ops.Retention.from_days(days).check()


def test_stock_snapshots_go_after_the_stock_period_by_business_day(engine, tmp_path):
    """dms_stock (daily snapshots, no personal data) had no rule and grew forever: kept two years by
    business day by default (2026-11-30 - 730 days = 2024-11-30), configurable, and audited."""
    stock = FEED_TABLES["stock"]
    ingest_file(engine, generate(tmp_path / "drop", rows=40, seed=5)["stock"])
    with engine.begin() as c:
        vins = sorted(c.execute(select(stock.c.vin)).scalars())
        assert len(vins) >= 8
        old, kept = vins[: len(vins) // 2], vins[len(vins) // 2:]
        c.execute(update(stock).where(stock.c.vin.in_(old)).values(business_date=date(2024, 11, 29)))
        c.execute(update(stock).where(stock.c.vin.in_(kept)).values(business_date=date(2024, 11, 30)))
        by = {r["table"]: r for r in ops.purge(c, NOW, now=NOW)}
        assert by["dms_stock"] == {"table": "dms_stock", "cutoff": "2024-11-30", "rows": len(old),
                                   "younger_than_policy": 0, "action": "deleted"}
        assert sorted(c.execute(select(stock.c.vin)).scalars()) == kept
        # a shorter configured period deletes snapshots the default keeps: only with --yes
        with pytest.raises(ConfigurationError, match=r"dms_stock %d" % len(kept)):
            ops.purge(c, NOW, ops.Retention(stock=30), now=NOW)
        ops.purge(c, NOW, ops.Retention.from_days({"stock": 30}), now=NOW, confirm=True)
        assert c.execute(select(func.count()).select_from(stock)).scalar() == 0


def test_purge_without_a_date_is_not_refused_on_a_host_behind_shanghai(tmp_path):
    """One clock: ``purge`` without ``--date`` purges as of the dealer's day (Asia/Shanghai) and checks it
    against the same clock. It used to check against the host's date, so a host west of Shanghai (here a
    POSIX zone 24 hours behind UTC: its date is behind Shanghai's at every hour of the day) refused every
    purge as "in the future". A --date after the dealer's day is still refused."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALERSYNC_")}
    env.update(TZ="XXX+24", DEALERSYNC_DATA_DIR=str(tmp_path / "data"), PREFECT_SERVER_ANALYTICS_ENABLED="false")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "dealersync.cli.main", "purge", "--dry-run", "--json", *args],
                              env=env, capture_output=True, text=True, timeout=300)

    r = cli()
    assert r.returncode == 0, r.stderr[-2000:]
    assert "in the future" not in r.stderr
    assert {row["action"] for row in json.loads(r.stdout)} == {"would delete"}
    from dealersync.services.context import Clock
    later = Clock().real_today().toordinal() + 2
    r = cli("--date", date.fromordinal(later).isoformat())
    assert r.returncode != 0 and "in the future" in r.stderr, (r.returncode, r.stderr[-2000:])
