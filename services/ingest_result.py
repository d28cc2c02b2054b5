"""What ingesting one file answers (:class:`FileResult`), and the ways a load ends without loading:
busy (another process holds it), rejected (the file's fault: never tried again unchanged), failed (tried
again on a later run). Each ending writes its ledger row; part of :mod:`dealersync.services.ingest`."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from sqlalchemy.engine import Engine

from dealersync.errors import BadSourceData
from dealersync.privacy import render_exception
from dealersync.store import ledger

log = logging.getLogger("dealersync.services.ingest")


@dataclass
class FileResult:
    file: str
    path: str
    feed: str | None = None
    dealer: str | None = None
    business_date: str | None = None
    profile: str | None = None
    encoding: str | None = None
    sheet: str | None = None   # workbooks: the sheet read
    status: str = "pending"   # loaded, skipped, rejected, replaced (a later export of the day holds it), failed, busy
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_superseded: int = 0
    value_issues: int = 0
    warnings: int = 0
    replaced_loads: list[int] = field(default_factory=list)
    load_id: int | None = None
    message: str | None = None
    seconds: float = 0.0
    top_reasons: dict[str, int] = field(default_factory=dict)
    file_warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)   # seconds per phase

    def to_json(self) -> dict:
        return asdict(self)


def busy(res: FileResult, holder: str | None, since, t0: float) -> FileResult:
    res.status = "busy"
    res.message = (f"being loaded by {holder}" + (f" since {since:%Y-%m-%d %H:%M:%S}" if since else "")
                   + "; left to it")
    res.seconds = round(time.monotonic() - t0, 3)
    log.info("%s: %s", res.file, res.message)
    return res


def reject(engine: Engine, res: FileResult, e: BadSourceData, t0: float) -> FileResult:
    res.status = "rejected"
    res.message = render_exception(e)   # the ledger and every listing show it: masked
    # nothing of a rejected file is loaded, whatever was read before the fault showed
    res.rows_read = res.rows_loaded = res.rows_quarantined = res.rows_superseded = res.value_issues = 0
    res.warnings = 0
    res.seconds = round(time.monotonic() - t0, 3)
    with engine.begin() as conn:
        ledger.finish_load(conn, res.load_id, "REJECTED", message=res.message, reason=(e.reason or "BAD_SOURCE")[:32],
                           duration_ms=int(res.seconds * 1000), profile=res.profile, encoding=res.encoding)
    log.warning("%s rejected: %s", res.file, e)
    return res


def fail(engine: Engine, res: FileResult, reason: str, message: str, t0: float) -> FileResult:
    """The load failed (nothing of it stays): ledger FAILED with the reason, tried again on a later run."""
    res.status = "failed"
    res.message = message
    res.rows_read = res.rows_loaded = res.rows_quarantined = res.rows_superseded = res.value_issues = 0
    res.warnings = 0
    res.replaced_loads = []
    res.seconds = round(time.monotonic() - t0, 3)
    with engine.begin() as conn:
        ledger.finish_load(conn, res.load_id, "FAILED", message=message, reason=reason[:32],
                           duration_ms=int(res.seconds * 1000), profile=res.profile, encoding=res.encoding)
    log.warning("%s failed: %s", res.file, message)
    return res
