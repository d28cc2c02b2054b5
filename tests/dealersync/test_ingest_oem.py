"""The OEM's drops (RECALL, DELIVERY, CLAIMRESULT, LABOROPS) go through the same ingestion:
pandera validation, quarantine with reasons, ledger, idempotency and same-day replacement."""
from __future__ import annotations

import sqlalchemy as sa

from dealersync.services.ingest import ingest_file
from tests.dealersync.test_ingest_dirt import VIN1, VIN2, balanced, csv_bytes, issues, quarantined, write


def table(engine, name):
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(f"select * from {name} order by source_row")).mappings()]


def test_recall_list(sqlite_engine, tmp_path):
    rows = [["RC2026-01", "制动软管召回", VIN1, "2026-01-01", "2026-12-31"],
            ["RC2026-01", "制动软管召回", VIN2.lower(), "2026/1/1", ""],
            ["RC2026-01", "制动软管召回", "1M8GDM9A1KP042788", "2026-01-01", ""]]
    p = write(tmp_path, "GZ0012_RECALL_20261103.csv",
              csv_bytes(["campaign_code", "campaign_name", "vin", "start_date", "end_date"], rows, "utf-8"))
    res = balanced(ingest_file(sqlite_engine, p))
    assert (res.feed, res.profile, res.rows_loaded, res.rows_quarantined) == ("recalls", "oem", 2, 1)
    assert [r["vin"] for r in table(sqlite_engine, "oem_recall")] == [VIN1, VIN2]
    assert quarantined(sqlite_engine)[0]["reason_code"] == "VIN_CHECK_DIGIT"


def test_delivery_with_masked_mobiles(sqlite_engine, tmp_path):
    rows = [[VIN1, "2026-11-01", "张*", "138****5678"], [VIN2, "2026-11-02", "李*", "13812345678"]]
    p = write(tmp_path, "GZ0012_DELIVERY_20261103.csv",
              csv_bytes(["vin", "retail_date", "customer_name", "masked_mobile"], rows, "utf-8"))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 2 and res.value_issues == 1
    assert [i["reason_code"] for i in issues(sqlite_engine)] == ["BAD_MASKED_MOBILE"]  # a clear number is refused
    assert [r["masked_mobile"] for r in table(sqlite_engine, "oem_delivery")] == ["138****5678", None]


def test_claim_results_map_the_oem_words(sqlite_engine, tmp_path):
    rows = [["WC0000001", "OEM-77", "理赔", "1,280.00", ""], ["WC0000002", "OEM-78", "拒赔", "0", "超出保修期"],
            ["WC0000003", "OEM-79", "不知道", "", ""]]
    p = write(tmp_path, "GZ0012_CLAIMRESULT_20261103.csv",
              csv_bytes(["claim_no", "oem_claim_no", "status", "paid_amount", "reason"], rows, "utf-8"))
    res = balanced(ingest_file(sqlite_engine, p))
    assert (res.rows_loaded, res.rows_quarantined) == (2, 1)
    got = table(sqlite_engine, "oem_claim_result")
    assert [(r["claim_no"], r["status"], float(r["paid_amount"])) for r in got] == [
        ("WC0000001", "APPROVED", 1280.0), ("WC0000002", "REJECTED", 0.0)]
    assert quarantined(sqlite_engine)[0]["reason_code"] == "BAD_ENUM"


def test_labor_operation_table_keyed_on_code_and_validity(engine, tmp_path):
    rows = [["A0101", "更换机油", "0.5", "2026-01-01"], ["A0101", "更换机油", "0.6", "2026-07-01"],
            ["A0203", "更换刹车片", "1.2", "2026-01-01"]]
    p = write(tmp_path, "GZ0012_LABOROPS_20261103.csv",
              csv_bytes(["code", "description", "standard_hours", "valid_from"], rows, "utf-8"))
    res = balanced(ingest_file(engine, p))
    assert res.rows_loaded == 3 and res.rows_superseded == 0
    again = ingest_file(engine, p)
    assert again.status == "skipped"
    assert len(table(engine, "oem_labor_op")) == 3
