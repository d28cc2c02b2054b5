"""SALESDAY: the daily sales and stock report to the OEM (``dms-exports.md`` section 4).

UTF-8 CSV with header, one row per model, file ``<DealerCode>_SALESDAY_<YYYYMMDD>.csv``:

- ``orders`` / ``invoiced`` / ``delivered``: vehicle sales (section 2.5) whose order, invoice or delivery
  date is the report day;
- from the day's STOCK snapshot (section 2.7; the latest one on or before the day when that day's is
  missing, and the summary says so), vehicles not transferred out (调出): ``in_stock`` (在库),
  ``in_transit`` (在途), ``reserved`` (已订); the stock-age buckets count vehicles on hand (an arrival
  date, status 在库 / 已订 / 已售未交) by whole days from ``arrival_date`` to the report day (0-30,
  31-60, 61-90, over 90); ``certificates_pledged`` counts certificates of conformity pledged to the
  financing bank (抵押).

Rows are sorted by model; the bytes depend only on the store's content.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import Connection

from dealersync.services.xlsx import Col, Sheet
from dealersync.store import dms
from dealersync.textsafe import csv_bytes

HEADER = ["report_date", "dealer_code", "model", "orders", "invoiced", "delivered", "in_stock", "in_transit", "reserved",
          "stock_age_0_30", "stock_age_31_60", "stock_age_61_90", "stock_age_over_90", "certificates_pledged"]
LABELS = ["日期", "经销商", "车型", "订单", "开票", "交车", "在库", "在途", "已订", "库龄0-30天", "库龄31-60天",
          "库龄61-90天", "库龄90天以上", "合格证抵押"]
NO_MODEL = "未注明车型"
ON_HAND = ("在库", "已订", "已售未交")


def _bucket(age: int) -> str:
    return "stock_age_0_30" if age <= 30 else "stock_age_31_60" if age <= 60 else "stock_age_61_90" if age <= 90 \
        else "stock_age_over_90"


def figures(conn: Connection, day: date, dealer: str) -> dict:
    """``{"rows": [dict per model in HEADER order], "snapshot": date | None, "totals": dict}``."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(HEADER[3:], 0))
    for r in dms.sales_on(conn, dealer, day):
        c = counts[r["model"] or NO_MODEL]
        c["orders"] += r["order_date"] == day
        c["invoiced"] += r["invoice_date"] == day
        c["delivered"] += r["delivery_date"] == day
    snapshot, stock = dms.stock_snapshot(conn, dealer, day)
    for r in stock:
        if r["stock_status"] == "调出":
            continue
        c = counts[r["model"] or NO_MODEL]
        key = {"在库": "in_stock", "在途": "in_transit", "已订": "reserved"}.get(r["stock_status"])
        if key:
            c[key] += 1
        if r["arrival_date"] is not None and r["stock_status"] in ON_HAND:
            c[_bucket(max((day - r["arrival_date"]).days, 0))] += 1
        c["certificates_pledged"] += r["certificate_status"] == "抵押"
    rows = [{"report_date": day.isoformat(), "dealer_code": dealer, "model": m, **counts[m]} for m in sorted(counts)]
    totals = {k: sum(r[k] for r in rows) for k in HEADER[3:]}
    return {"rows": rows, "snapshot": snapshot, "totals": totals}


def csv_data(fig: dict) -> bytes:
    """The CSV bytes the OEM receives (text-safe cells, ``\\n`` line ends, no BOM)."""
    return csv_bytes(HEADER, [[r[h] for h in HEADER] for r in fig["rows"]])


def summary(fig: dict, day: date) -> str:
    t = fig["totals"]
    snap = ("无库存快照" if fig["snapshot"] is None else "库存按当日快照" if fig["snapshot"] == day
            else f"当日无库存快照，按 {fig['snapshot']:%Y-%m-%d} 的快照")
    return (f"{day:%Y-%m-%d} 订单 {t['orders']} 台、开票 {t['invoiced']} 台、交车 {t['delivered']} 台；"
            f"在库 {t['in_stock']} 台、在途 {t['in_transit']} 台、已订 {t['reserved']} 台，"
            f"库龄超过 90 天 {t['stock_age_over_90']} 台，合格证抵押 {t['certificates_pledged']} 张（{snap}）。")


def sheet(fig: dict, day: date) -> Sheet:
    """The same figures for people (Chinese headers), e.g. for the artifact or a manager's copy."""
    return Sheet("销售库存日报", [Col(lb, "text" if i < 3 else "int") for i, lb in enumerate(LABELS)],
                 [[r[h] for h in HEADER] for r in fig["rows"]], title=f"销售及库存日报 {day:%Y-%m-%d}",
                 notes=[summary(fig, day)])
