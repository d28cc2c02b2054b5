"""The dealer's clock: every time the product stamps or compares is the dealer's local time.

DMS exports carry naive Asia/Shanghai times and the dealer's business day is Shanghai's (China has one
time zone, UTC+8, no daylight saving), so the store's stamps are naive Shanghai times too, whatever
zone the host runs in: a purge cut-off (a Shanghai midnight), a stale-claim timeout and a row's
``ingested_at`` are then on one clock. ``services.context.Clock`` adds a fixed day (``--date``).
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

DEALER_TZ = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """Naive Asia/Shanghai time to the second (the stamp of every row the product writes)."""
    return datetime.now(DEALER_TZ).replace(tzinfo=None, microsecond=0)


def today() -> date:
    """The dealer's date by the wall clock (never the host's date)."""
    return datetime.now(DEALER_TZ).date()
