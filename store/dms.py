"""The canonical DMS tables as the jobs read them (follow-ups, the 三包 monitor, claims' worklist,
surveys, reports): read only, a ``Connection`` first, plain values back. The ingest writes these
tables (``store/repository.py``); nothing here writes.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, func, or_, select

from .tables import FEED_TABLES


def _rows(conn: Connection, feed: str, columns: tuple[str, ...], *where) -> list[dict]:
    t = FEED_TABLES[feed]
    q = select(*(t.c[c] for c in columns))
    return [dict(r) for r in conn.execute(q.where(*where) if where else q).mappings()]


def repair_orders(conn: Connection, *columns: str, valid_only: bool = False) -> list[dict]:
    """``columns`` of every repair order (``valid_only``: not 作废)."""
    ro = FEED_TABLES["repair_orders"]
    return _rows(conn, "repair_orders", columns, *([ro.c.status != "作废"] if valid_only else []))


def vehicle_sales(conn: Connection, *columns: str) -> list[dict]:
    return _rows(conn, "vehicle_sales", columns)


def vehicles(conn: Connection, *columns: str) -> list[dict]:
    return _rows(conn, "vehicles", columns)


def repair_order(conn: Connection, ro_number: str) -> dict | None:
    """ro_number, closed_at and advisor of a repair order by its number (any dealer), or None."""
    ro = FEED_TABLES["repair_orders"]
    r = conn.execute(select(ro.c.ro_number, ro.c.closed_at, ro.c.advisor)
                     .where(ro.c.ro_number == ro_number)).mappings().first()
    return dict(r) if r else None


def last_closed_ro(conn: Connection, vins: list[str]) -> dict | None:
    """ro_number and closed_at of the latest closed repair order of any of ``vins``, or None."""
    ro = FEED_TABLES["repair_orders"]
    r = conn.execute(select(ro.c.ro_number, ro.c.closed_at).where(ro.c.vin.in_(vins), ro.c.closed_at.is_not(None))
                     .order_by(ro.c.closed_at.desc()).limit(1)).mappings().first()
    return dict(r) if r else None


def latest_advisor(conn: Connection, vin: str, at: datetime | None = None) -> str | None:
    """The advisor of a VIN's latest repair order opened by ``at`` (any time when None)."""
    ro = FEED_TABLES["repair_orders"]
    q = select(ro.c.advisor).where(ro.c.vin == vin, ro.c.advisor.is_not(None))
    if at is not None:
        q = q.where(ro.c.opened_at <= at)
    return conn.execute(q.order_by(ro.c.opened_at.desc()).limit(1)).scalar()


def is_service_document(conn: Connection, doc: str) -> bool:
    """``doc`` is an RO number or the VIN of a repair order."""
    ro = FEED_TABLES["repair_orders"]
    return conn.execute(select(ro.c.ro_number).where((ro.c.ro_number == doc) | (ro.c.vin == doc)).limit(1)).first() \
        is not None


def is_sales_document(conn: Connection, doc: str) -> bool:
    """``doc`` is a sale number or the VIN of a vehicle sale."""
    vs = FEED_TABLES["vehicle_sales"]
    return conn.execute(select(vs.c.sale_no).where((vs.c.sale_no == doc) | (vs.c.vin == doc)).limit(1)).first() \
        is not None


def sales_on(conn: Connection, dealer_code: str, day: date) -> list[dict]:
    """model, order_date, invoice_date, delivery_date of a dealer's sales ordered, invoiced or delivered on ``day``."""
    vs = FEED_TABLES["vehicle_sales"]
    return _rows(conn, "vehicle_sales", ("model", "order_date", "invoice_date", "delivery_date"),
                 vs.c.dealer_code == dealer_code,
                 or_(vs.c.order_date == day, vs.c.invoice_date == day, vs.c.delivery_date == day))


def stock_snapshot(conn: Connection, dealer_code: str, day: date) -> tuple[date | None, list[dict]]:
    """(the dealer's latest stock day up to ``day``, its rows: model, stock_status, arrival_date,
    certificate_status); (None, []) before the first STOCK load."""
    st = FEED_TABLES["stock"]
    snapshot = conn.execute(select(func.max(st.c.business_date)).where(st.c.dealer_code == dealer_code,
                                                                       st.c.business_date <= day)).scalar()
    if snapshot is None:
        return None, []
    return snapshot, _rows(conn, "stock", ("model", "stock_status", "arrival_date", "certificate_status"),
                           st.c.dealer_code == dealer_code, st.c.business_date == snapshot)
