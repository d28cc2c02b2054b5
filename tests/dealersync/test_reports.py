"""The STOCK feed (spec 2.7) and the reports (issue #19 item 4): SALESDAY against a day computed by hand
from files read through the real ingestion (both profiles), same-day replacement of a snapshot, and
exactly-once publishing against the sandbox portal over real HTTP."""
from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from dealersync.services.ingest import ingest_file
from dealersync.services.reports import periods, salesday
from dealersync.services.reports.run import Target, run_report
from dealersync.store.tables import FEED_TABLES, quarantine, report_upload

DAY = date(2026, 11, 5)
_T = {**{str(i): i for i in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))),
      "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
_W = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def vin(serial: int, good: bool = True) -> str:
    """A VIN with its ISO 3779 check digit computed here (independently of the product's check)."""
    body = f"LSVAG218_E2{serial:06d}"
    s = sum(_T[c] * w for c, w in zip(body, _W) if c != "_") % 11
    digit = "X" if s == 10 else str(s)
    if not good:
        digit = str((int(digit) + 1) % 10) if digit != "X" else "0"
    return body.replace("_", digit)


STOCK_A = ["车架号", "车型", "配置", "颜色", "入库日期", "库存状态", "库位", "合格证状态", "采购价"]
STOCK_B = ["VIN码", "车型名称", "版本", "车身颜色", "到店日期", "状态", "存放地点", "合格证", "进价"]
SNAPSHOT = [  # the day's stock, with what each row adds up to in the hand-computed figures below
    [vin(1), "朗逸", "舒适版", "白", "2026-10-30", "在库", "A01", "在店", "98000"],      # in stock, 6 days
    [vin(2), "朗逸", "舒适版", "黑", "2026-09-01", "在库", "A02", "抵押", "98000"],      # in stock, 65 days, pledged
    [vin(3), "朗逸", "豪华版", "白", "", "在途", "", "抵押", ""],                          # in transit, pledged
    [vin(4), "帕萨特", "330TSI", "灰", "2026-07-01", "已订", "B01", "抵押", "1,650,00.00"],  # reserved, 127 days, pledged
    [vin(5), "帕萨特", "330TSI", "白", "2026-10-06", "已售未交", "B02", "已交客户", ""],     # sold not delivered, 30 days
    [vin(6), "途观L", "", "蓝", "2026-09-06", "调出", "", "抵押", ""],                     # transferred out: nothing
    [vin(7), "途观L", "", "蓝", "2026-09-06", "在库", "C01", "在店", ""],                  # in stock, 60 days
    [vin(8, good=False), "朗逸", "", "", "2026-10-01", "在库", "", "在店", ""],            # bad VIN: quarantined
    [vin(9), "朗逸", "", "红", "2026/8/6", "库存", "A03", "质押", ""],                     # 库存=在库, 91 days, 质押=抵押
]
SALES_A = ["销售单号", "订单日期", "开票日期", "交车日期", "车架号", "客户编号", "客户名称", "手机", "证件号码", "销售顾问",
           "车型", "成交价", "付款方式"]
SALES = [
    ["S1", "2026-11-05", "2026-11-05", "", vin(11), "C1", "王芳", "", "", "李明", "朗逸", "120000", "全款"],
    ["S2", "2026-11-01", "2026-11-05", "2026-11-05", vin(12), "C2", "李娜", "", "", "李明", "朗逸", "118000", "贷款"],
    ["S3", "2026-11-05", "", "", vin(13), "C3", "张伟", "", "", "王静", "帕萨特", "", ""],
    ["S4", "2026-11-04", "2026-11-04", "2026-11-04", vin(14), "C4", "刘洋", "", "", "王静", "帕萨特", "", ""],
    ["S5", "2026-10-20", "2026-10-30", "2026-11-05", vin(15), "C5", "某某物流有限公司", "", "", "陈强", "途观L", "", ""],
]
EXPECTED = """report_date,dealer_code,model,orders,invoiced,delivered,in_stock,in_transit,reserved,stock_age_0_30,stock_age_31_60,stock_age_61_90,stock_age_over_90,certificates_pledged
2026-11-05,GZ0012,帕萨特,1,0,0,0,0,1,1,0,0,1,1
2026-11-05,GZ0012,朗逸,1,2,1,3,1,0,1,0,1,1,3
2026-11-05,GZ0012,途观L,0,0,1,1,0,0,0,1,0,0,0
"""


def write_a(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode("gb18030"))
    return path


def write_b(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["库存台账导出"])   # dms_b's title row above the header
    ws.append(header)
    for n, r in enumerate(rows):
        when = date(*map(int, r[4].replace("/", "-").split("-"))) if r[4] else None
        # arrival dates as Excel dates, one as the YYYYMMDD number dms_b also writes
        ws.append([*r[:4], (int(when.strftime("%Y%m%d")) if n == 0 else when) if when else None, *r[5:]])
    wb.save(path)
    return path


@pytest.fixture
def day_store(engine, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    write_a(drop / "GZ0012_STOCK_20261104.csv", STOCK_A, [SNAPSHOT[0], [vin(20), "朗逸", "", "", "2026-01-01", "在库", "", "抵押", ""]])
    res = ingest_file(engine, write_a(drop / "GZ0012_STOCK_20261105.csv", STOCK_A, SNAPSHOT))
    assert (res.status, res.rows_read, res.rows_loaded, res.rows_quarantined) == ("loaded", 9, 8, 1)
    ingest_file(engine, drop / "GZ0012_STOCK_20261104.csv")
    ingest_file(engine, write_a(drop / "GZ0012_SALE_20261105.csv", SALES_A, SALES))
    return engine


def test_salesday_matches_the_day_computed_by_hand(day_store):
    with day_store.begin() as c:
        fig = salesday.figures(c, DAY, "GZ0012")
        q = c.execute(select(quarantine.c.column_name, quarantine.c.reason_code)).all()
    assert salesday.csv_data(fig).decode("utf-8") == EXPECTED
    assert q == [("vin", "VIN_CHECK_DIGIT")]
    assert "订单 2 台、开票 2 台、交车 2 台" in salesday.summary(fig, DAY)
    with day_store.begin() as c:   # the day before has its own snapshot: 2 in stock, one pledged
        before = salesday.figures(c, date(2026, 11, 4), "GZ0012")
    assert before["totals"]["in_stock"] == 2 and before["totals"]["certificates_pledged"] == 1
    with day_store.begin() as c:   # a day without a snapshot uses the latest one before it, and says so
        later = salesday.figures(c, date(2026, 11, 6), "GZ0012")
    assert later["snapshot"] == DAY and "按 2026-11-05 的快照" in salesday.summary(later, date(2026, 11, 6))


def test_stock_in_dms_b_xlsx_reads_the_same(engine, tmp_path):
    res = ingest_file(engine, write_b(tmp_path / "SH0001_STOCK_20261105.xlsx", STOCK_B, SNAPSHOT))
    assert (res.status, res.profile, res.rows_loaded, res.rows_quarantined) == ("loaded", "dms_b", 8, 1)
    with engine.begin() as c:
        fig = salesday.figures(c, DAY, "SH0001")
    stock_cols = salesday.HEADER[6:]
    expected = [line.split(",") for line in EXPECTED.splitlines()[1:]]
    assert [[str(r[h]) for h in stock_cols] for r in fig["rows"]] == [e[6:] for e in expected]


def test_a_corrected_snapshot_of_the_day_replaces_it(day_store, tmp_path):
    fixed = [r for r in SNAPSHOT if r[0] != vin(1)]        # vehicle 1 left the stock after all
    res = ingest_file(day_store, write_a(tmp_path / "drop" / "GZ0012_STOCK_20261105_2.csv", STOCK_A, fixed))
    assert res.status == "loaded" and res.replaced_loads
    st = FEED_TABLES["stock"]
    with day_store.begin() as c:
        vins = {v for (v,) in c.execute(select(st.c.vin).where(st.c.business_date == DAY))}
        fig = salesday.figures(c, DAY, "GZ0012")
        older = {v for (v,) in c.execute(select(st.c.vin).where(st.c.business_date == date(2026, 11, 4)))}
    assert vin(1) not in vins and len(vins) == 7 and older == {vin(1), vin(20)}
    assert next(r for r in fig["rows"] if r["model"] == "朗逸")["in_stock"] == 2


def test_a_stock_file_without_its_day_is_refused(engine, tmp_path):
    res = ingest_file(engine, write_a(tmp_path / "stock.csv", STOCK_A, SNAPSHOT[:1]), feed="stock", dealer="GZ0012")
    assert res.status == "rejected" and "business day" in res.message


def test_periods():
    assert periods.week("2026-W45") == periods.Period("2026-W45", date(2026, 11, 2), date(2026, 11, 8))
    assert periods.week(None, default=date(2026, 11, 9)).label == "2026-W45"
    assert periods.month(None, default=date(2026, 12, 2)) == periods.Period("2026-11", date(2026, 11, 1), date(2026, 11, 30))
    assert periods.month("2026-12").end == date(2026, 12, 31)


def test_salesday_is_published_once(day_store, tmp_path):
    from tests.dealersync.test_claims import client_for, portal, stats
    with portal(tmp_path) as url:
        target = Target("GZ0012", tmp_path / "reports", client_for(url), outbox=tmp_path / "outbox")
        first = run_report(day_store, "salesday", periods.day("2026-11-05"), target)
        again = run_report(day_store, "salesday", periods.day("2026-11-05"), target)
        st = stats(url)
    assert first["upload"]["sent_now"] == ["portal"] and first["upload"]["portal"] == "UPLOADED"
    assert again["upload"]["sent_now"] == [] and again["file"] == first["file"]
    assert st["reports"] == 1 and sum(v for k, v in st["by_path"].items() if k.endswith("/reports")) == 1
    assert (tmp_path / "outbox" / "GZ0012_SALESDAY_20261105.csv").read_text(encoding="utf-8") == EXPECTED
    with day_store.begin() as c:
        rows = c.execute(select(report_upload.c.report_type, report_upload.c.period, report_upload.c.status,
                                report_upload.c.sftp)).all()
    assert rows == [("SALESDAY", "2026-11-05", "UPLOADED", "QUEUED")]
