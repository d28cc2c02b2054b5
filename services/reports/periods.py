"""Report periods: a day ``YYYY-MM-DD``, an ISO week ``YYYY-Www`` (Monday to Sunday) or a month ``YYYY-MM``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dealersync.errors import ConfigurationError
from dealersync.services.context import Clock

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Period:
    label: str      # 2026-11-05, 2026-W45, 2026-11
    start: date     # first day
    end: date       # last day (inclusive)

    def contains(self, d: date | None) -> bool:
        return d is not None and self.start <= d <= self.end

    @property
    def compact(self) -> str:
        """For file names: 20261105, 2026W45, 202611."""
        return self.label.replace("-", "")


def day(value: str | date | None = None, default: date | None = None) -> Period:
    d = value if isinstance(value, date) else _parse(value, r"\d{4}-\d{2}-\d{2}", "--date", "YYYY-MM-DD") if value \
        else default or today()
    if isinstance(d, str):
        d = date.fromisoformat(d)
    return Period(d.isoformat(), d, d)


def week(value: str | None = None, default: date | None = None) -> Period:
    """``2026-W45``; default: the week before ``default`` (today)."""
    if value:
        m = re.fullmatch(r"(\d{4})-?W(\d{2})", value.strip().upper())
        if not m:
            raise ConfigurationError(f"--week {value!r}: expected YYYY-Www, e.g. 2026-W45")
        start = date.fromisocalendar(int(m[1]), int(m[2]), 1)
    else:
        d = (default or today()) - timedelta(days=7)
        start = d - timedelta(days=d.weekday())
    y, w, _ = start.isocalendar()
    return Period(f"{y}-W{w:02d}", start, start + timedelta(days=6))


def month(value: str | None = None, default: date | None = None) -> Period:
    """``2026-11``; default: the month before ``default`` (today)."""
    if value:
        _parse(value, r"\d{4}-\d{2}", "--month", "YYYY-MM")
        y, m = map(int, value.split("-"))
    else:
        d = (default or today()).replace(day=1) - timedelta(days=1)
        y, m = d.year, d.month
    start = date(y, m, 1)
    end = (date(y + (m == 12), m % 12 + 1, 1)) - timedelta(days=1)
    return Period(f"{y}-{m:02d}", start, end)


def today() -> date:
    """The dealer's day by the run context's clock (``services.context.Clock``), the one every job reads."""
    return Clock().today()


def local(ts) -> datetime | None:
    """A CRM timestamp (ISO, UTC ``Z``) as naive Asia/Shanghai time, like the DMS's; ``None`` stays."""
    if not ts:
        return None
    t = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    return t.astimezone(SHANGHAI).replace(tzinfo=None) if t.tzinfo else t


def _parse(value: str, pattern: str, option: str, shape: str) -> str:
    if not re.fullmatch(pattern, value or ""):
        raise ConfigurationError(f"{option} {value!r}: expected {shape}")
    try:
        if len(value) == 10:
            date.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"{option} {value!r}: no such day") from None
    return value
