"""The ingest ledger: one row per load of a file, claimed by exactly one process.

In the manner of Prefect's server models (``prefect/server/models/flows.py``): every function takes a
``Connection`` first and never commits (the caller owns the transaction); creates are idempotent
(insert on conflict do nothing, then re-select); answers are values (a :class:`Claim`, ``rowcount > 0``);
status words are :class:`~dealersync.store.tables.LoadStatus` (a check constraint, migration 0011l).

One process per load (issue #15): a load under way holds the unique ``claim_key`` (a digest of the
file's path). A second process finds it taken and is told who holds it; a claim whose holder is dead
(PostgreSQL: its session advisory lock is free; SQLite: the holder's pid is gone on this host, or the
claim is older than the stale-claim timeout) is taken over, with a compare-and-set on the holder.
Status transitions only move forward: each is a compare-and-set on the expected current status.
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import hashlib
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from .db import dialect_insert
from .tables import FEED_TABLES, LoadStatus, ingest_file, quarantine, value_issue

DONE_STATUSES = (LoadStatus.LOADED.value, LoadStatus.REPLACED.value)
NAME_REASONS = ("UNKNOWN_FEED", "BAD_NAME")   # rejections about the file's name, not its content


def now() -> datetime:
    return dealer_clock.now()


def holder(run: str | None = None) -> str:
    """This process, as written in ``claimed_by``: ``host:pid``, or ``host:pid:run`` for one run of a job."""
    return f"{socket.gethostname()}:{os.getpid()}{':' + run if run else ''}"[:128]


def claim_key(path: str | Path) -> str:
    """The key of a load under way: SHA-256 (hex) of the file's resolved path."""
    return hashlib.sha256(str(Path(path).resolve()).encode("utf-8", "surrogateescape")).hexdigest()


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id from a hex digest (or any text)."""
    digest = hashlib.sha256(key.encode()).digest() if len(key) != 64 else bytes.fromhex(key)
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_alive(claimed_by: str | None, claimed_at: datetime | None, stale_seconds: float,
                 me: str | None = None) -> bool:
    """Whether the process that wrote ``claimed_by`` (``host:pid[:run]``) may still be at work: on this
    host, its pid exists (in this very process: it is ``me``, when a run is named); elsewhere, the
    claim is younger than ``stale_seconds``."""
    if not claimed_by:
        return False
    host, pid, *_ = claimed_by.split(":") + [""]
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return me is None or claimed_by == me
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return claimed_at is not None and now() - claimed_at < timedelta(seconds=stale_seconds)


@contextmanager
def load_lock(engine: Engine, key: str) -> Iterator[bool]:
    """PostgreSQL: hold the session advisory lock of ``key`` on a connection of its own for the whole
    ``with`` block; yields False when another live session holds it (the lock goes with a killed
    process's connection). SQLite: yields None (liveness is judged by :func:`holder_alive`; a load's
    transaction holds the database's write lock anyway)."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    with engine.connect() as conn:
        lid = _lock_id(key)
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lid}).scalar()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lid})
                conn.commit()


def lock_day(conn: Connection, dealer_code: str, feed: str, business_date: date | None) -> None:
    """Serialise the loads of one dealer, feed and business day until the transaction ends (PostgreSQL:
    a transaction advisory lock; SQLite: a load's transaction already holds the write lock), so
    same-day replacement is decided on committed facts."""
    if business_date is not None and conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                     {"k": _lock_id(f"day:{dealer_code}:{feed}:{business_date.isoformat()}")})


# ------------------------------------------------------------------------------------ reading

def find_by_sha(conn: Connection, sha256: str, statuses: tuple[str, ...] | None = None, exclude: int | None = None):
    """The latest ledger row of these bytes (optionally only in ``statuses``, not ``exclude``), or None."""
    q = select(ingest_file).where(ingest_file.c.sha256 == sha256)
    if statuses:
        q = q.where(ingest_file.c.status.in_(statuses))
    if exclude is not None:
        q = q.where(ingest_file.c.id != exclude)
    return conn.execute(q.order_by(ingest_file.c.id.desc()).limit(1)).mappings().first()


def prior_unchanged(conn: Connection, path: str, size: int, mtime_ns: int):
    """The latest finished ledger row (done or rejected) of this path at this size and mtime, or None."""
    q = (select(ingest_file).where(ingest_file.c.path == path, ingest_file.c.size == size,
                                   ingest_file.c.mtime_ns == mtime_ns,
                                   ingest_file.c.status.in_((*DONE_STATUSES, LoadStatus.REJECTED.value)))
         .order_by(ingest_file.c.id.desc()).limit(1))
    return conn.execute(q).mappings().first()


def rejected_name(conn: Connection, file_name: str):
    """The latest rejection of a file for its name (keyed on the name, whatever the content), or None."""
    q = (select(ingest_file).where(ingest_file.c.file_name == file_name, ingest_file.c.reason.in_(NAME_REASONS),
                                   ingest_file.c.status == LoadStatus.REJECTED.value)
         .order_by(ingest_file.c.id.desc()).limit(1))
    return conn.execute(q).mappings().first()


def get(conn: Connection, load_id: int):
    return conn.execute(select(ingest_file).where(ingest_file.c.id == load_id)).mappings().first()


def ledger(conn: Connection):
    return conn.execute(select(ingest_file).order_by(ingest_file.c.id)).mappings().all()


# ------------------------------------------------------------------------------------ claiming

@dataclass(frozen=True)
class Claim:
    """The answer of :func:`claim_load`: ``load_id`` when this process holds the load, else the
    ``holder`` (host:pid) and ``since`` of the process that does."""
    load_id: int | None
    holder: str | None = None
    since: datetime | None = None
    taken_over: bool = False


def _insert(conn: Connection):
    return dialect_insert(conn, ingest_file)


def claim_load(conn: Connection, *, key: str, alive, **values) -> Claim:
    """Claim the load of the file keyed ``key`` (see :func:`claim_key`) for this process.

    Args:
        key: the claim key; unique among loads under way.
        alive: ``alive(row) -> bool``: whether the holder of an existing claim is still at work.
        values: the ledger row's columns (path, file_name, size, mtime_ns, feed, dealer_code, ...).

    Returns:
        ``Claim(load_id)`` when claimed (a new LOADING row, or a dead holder's row taken over);
        ``Claim(None, holder, since)`` when a live process holds it.
    """
    me = holder()
    row = dict(values, status=LoadStatus.LOADING.value, claim_key=key, claimed_by=me, claimed_at=now(),
               started_at=now(), finished_at=None, message=None, reason=None, sha256=None, rows_read=0,
               rows_loaded=0, rows_quarantined=0, rows_superseded=0, value_issues=0, warnings=0)
    for _ in range(3):
        q = select(ingest_file).where(ingest_file.c.claim_key == key)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        cur = conn.execute(q).mappings().first()
        if cur is not None:
            if alive(cur):
                return Claim(None, cur["claimed_by"], cur["claimed_at"])
            # the holder died mid-load (its transaction rolled back: the row holds nothing of it): take over
            took = conn.execute(update(ingest_file).where(
                ingest_file.c.id == cur["id"], ingest_file.c.claim_key == key,
                ingest_file.c.status == LoadStatus.LOADING.value,
                ingest_file.c.claimed_by.is_(None) if cur["claimed_by"] is None
                else ingest_file.c.claimed_by == cur["claimed_by"]).values(**row)).rowcount
            if took:
                return Claim(cur["id"], taken_over=True)
            continue
        # a failed or rejected earlier load of this path is tried again under its own row (one entry per file)
        again = (LoadStatus.FAILED.value, LoadStatus.REJECTED.value)
        failed = conn.execute(select(ingest_file.c.id).where(
            ingest_file.c.path == values.get("path"), ingest_file.c.status.in_(again),
            ingest_file.c.claim_key.is_(None)).order_by(ingest_file.c.id.desc()).limit(1)).scalar()
        if failed is not None:
            try:
                with conn.begin_nested():
                    took = conn.execute(update(ingest_file).where(
                        ingest_file.c.id == failed, ingest_file.c.status.in_(again),
                        ingest_file.c.claim_key.is_(None)).values(**row)).rowcount
            except IntegrityError:   # the key was claimed meanwhile
                continue
            if took:
                return Claim(failed)
            continue
        ins = _insert(conn).values(**row).on_conflict_do_nothing(index_elements=["claim_key"])
        new = conn.execute(ins.returning(ingest_file.c.id)).scalar()
        if new is not None:
            return Claim(new)
    cur = conn.execute(select(ingest_file).where(ingest_file.c.claim_key == key)).mappings().first()
    return Claim(None, cur["claimed_by"] if cur else None, cur["claimed_at"] if cur else None)


def finish_load(conn: Connection, load_id: int, status: LoadStatus | str, **values) -> bool:
    """Move a load out of LOADING (compare-and-set: only from LOADING) and release its claim.

    Returns:
        True when the row moved; False when it was not LOADING (another process moved it)."""
    values.setdefault("finished_at", now())
    values["status"] = LoadStatus(status).value
    q = (update(ingest_file).where(ingest_file.c.id == load_id, ingest_file.c.status == LoadStatus.LOADING.value)
         .values(claim_key=None, **values))
    return conn.execute(q).rowcount > 0


def release(conn: Connection, load_id: int) -> bool:
    """Drop a claim that loaded nothing and says nothing (the same bytes were loaded meanwhile)."""
    return conn.execute(delete(ingest_file).where(ingest_file.c.id == load_id,
                                                  ingest_file.c.status == LoadStatus.LOADING.value)).rowcount > 0


def touch(conn: Connection, load_id: int, *, size: int, mtime_ns: int) -> bool:
    """A done load's file was touched, its bytes the same: record the new size and mtime, so the
    folder scan does not read it again."""
    return conn.execute(update(ingest_file).where(ingest_file.c.id == load_id).values(
        size=size, mtime_ns=mtime_ns)).rowcount > 0


# ------------------------------------------------------------------------------------ same-day replacement

def _order(seq: int | None, mtime_ns: int | None) -> tuple[int, int]:
    return (seq or 1, mtime_ns or 0)


@dataclass(frozen=True)
class Replacement:
    """The answer of :func:`replace_day`: the loads replaced by this one, or the later load that
    already holds the day (then this one loads nothing)."""
    replaced: list[int]
    superseded_by: int | None = None


def replace_day(conn: Connection, *, feed: str, dealer_code: str, business_date: date | None, load_id: int,
                seq: int | None, mtime_ns: int | None, also: tuple[int, ...] = ()) -> Replacement:
    """Decide same-day replacement by the export's sequence number, then its mtime (never the arrival
    order): if a LOADED load of the same dealer, feed and day comes later, this load is superseded;
    otherwise the earlier ones (and ``also``: loads a forced re-read takes the place of) have their rows
    deleted and become REPLACED. Call under :func:`lock_day`."""
    ids = set(also)
    if business_date is not None:
        rows = conn.execute(select(ingest_file.c.id, ingest_file.c.export_seq, ingest_file.c.mtime_ns).where(
            ingest_file.c.dealer_code == dealer_code, ingest_file.c.feed == feed,
            ingest_file.c.business_date == business_date, ingest_file.c.status == LoadStatus.LOADED.value,
            ingest_file.c.id != load_id)).all()
        mine = _order(seq, mtime_ns)
        later = [r for r in rows if _order(r.export_seq, r.mtime_ns) > mine and r.id not in ids]
        if later:
            return Replacement([], max(later, key=lambda r: (_order(r.export_seq, r.mtime_ns), r.id)).id)
        ids |= {r.id for r in rows}
    ids.discard(load_id)
    if not ids:
        return Replacement([])
    old = sorted(ids)
    table = FEED_TABLES[feed]
    conn.execute(delete(table).where(table.c.load_id.in_(old)))
    conn.execute(update(ingest_file).where(ingest_file.c.id.in_(old), ingest_file.c.status == LoadStatus.LOADED.value)
                 .values(status=LoadStatus.REPLACED.value, replaced_by=load_id))
    return Replacement(old)


# ------------------------------------------------------------------------------------ quarantine

def list_quarantine(conn: Connection, file: str | None = None, limit: int | None = None,
                    include_replaced: bool = True):
    """Quarantined rows with their load's feed and status (``file_status`` REPLACED: rows of a load a
    later export took the place of)."""
    q = (select(quarantine.c.source_file, quarantine.c.row_number, quarantine.c.column_name,
                quarantine.c.raw_value, quarantine.c.reason_code, quarantine.c.message, quarantine.c.load_id,
                ingest_file.c.feed, ingest_file.c.status.label("file_status"))
         .join(ingest_file, ingest_file.c.id == quarantine.c.load_id)
         .order_by(quarantine.c.load_id, quarantine.c.row_number))
    if file:
        q = q.where(or_(quarantine.c.source_file == file, ingest_file.c.path == file))
    if not include_replaced:
        q = q.where(ingest_file.c.status != LoadStatus.REPLACED.value)
    if limit:
        q = q.limit(limit)
    return conn.execute(q).mappings().all()


def quarantine_counts(conn: Connection, top: int = 10) -> dict:
    """Quarantined rows of current loads and, apart, of replaced loads (issue #17 item 9); the top
    reasons count current loads only. Returns ``{"rows", "rows_of_replaced_loads", "top_reasons"}``."""
    j = quarantine.join(ingest_file, ingest_file.c.id == quarantine.c.load_id)
    replaced = ingest_file.c.status == LoadStatus.REPLACED.value
    by = dict(conn.execute(select(replaced.label("r"), func.count()).select_from(j).group_by(replaced)).all())
    reasons = dict(conn.execute(select(quarantine.c.reason_code, func.count()).select_from(j)
                                .where(ingest_file.c.status != LoadStatus.REPLACED.value).group_by(quarantine.c.reason_code)
                                .order_by(func.count().desc()).limit(top)).all())
    return {"rows": int(by.get(False, 0) or by.get(0, 0)), "rows_of_replaced_loads": int(by.get(True, 0) or by.get(1, 0)),
            "top_reasons": reasons}



def open_quarantine(conn: Connection, file: str | None = None, limit: int | None = None,
                    include_resolved: bool = False) -> list[dict]:
    """Quarantined rows, all columns, with their load's feed, dealer, profile and business day, by load
    and row. Without ``include_resolved``: only rows still open (not replayed, not of a REPLACED load).
    ``file``: the source file's name or the load's path."""
    q = (select(quarantine, ingest_file.c.feed, ingest_file.c.dealer_code, ingest_file.c.profile,
                ingest_file.c.business_date)
         .join(ingest_file, ingest_file.c.id == quarantine.c.load_id)
         .order_by(quarantine.c.load_id, quarantine.c.row_number))
    if not include_resolved:
        q = q.where(quarantine.c.resolved_by.is_(None), ingest_file.c.status != LoadStatus.REPLACED.value)
    if file:
        q = q.where((quarantine.c.source_file == file) | (ingest_file.c.path == file))
    if limit:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def quarantine_origin(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """{quarantine id: the row, with its load's dealer, business day and profile} of ``ids`` that exist."""
    return {r["id"]: dict(r) for r in conn.execute(
        select(quarantine, ingest_file.c.dealer_code, ingest_file.c.business_date, ingest_file.c.profile)
        .join(ingest_file, ingest_file.c.id == quarantine.c.load_id)
        .where(quarantine.c.id.in_(ids))).mappings()}


def resolve_quarantine(conn: Connection, ids: list[int], load_id: int) -> int:
    """Quarantined rows ``ids`` resolved by the replay load ``load_id``; returns the rows marked."""
    return conn.execute(update(quarantine).where(quarantine.c.id.in_(ids)).values(resolved_by=load_id)).rowcount


def value_issues(conn: Connection, file: str | None = None, limit: int | None = None,
                 warnings: bool = True) -> list[dict]:
    """Value issues (and, with ``warnings``, row-rule warnings) of loads not REPLACED, by load, row, id."""
    q = (select(value_issue).join(ingest_file, ingest_file.c.id == value_issue.c.load_id)
         .where(ingest_file.c.status != LoadStatus.REPLACED.value)
         .order_by(value_issue.c.load_id, value_issue.c.source_row, value_issue.c.id))
    if not warnings:
        q = q.where(value_issue.c.severity == "ISSUE")
    if file:
        q = q.where(value_issue.c.source_file == file)
    if limit:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]
