"""Repository functions. Each takes a SQLAlchemy ``Connection`` and never commits: the caller
owns the transaction, so a file's whole load (rows, quarantine, issues, ledger) commits or rolls
back as one. Same behaviour on SQLite and PostgreSQL.

Over 400 lines on purpose: one aggregate (a file's load: rows by COPY or stage-and-upsert, quarantine,
value issues, the ledger row), whose pieces commit or roll back together and share the write-path state.
"""
from __future__ import annotations

import json
import re
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

from sqlalchemy import (Column, Connection, Date, DateTime, Integer, MetaData, String, Table, Text,
                        and_, cast, delete, func, literal, or_, select, text)
from sqlalchemy.exc import DBAPIError

from dealersync.errors import ValueRefused
from dealersync.schemas.feeds import FeedDef

from .bulk import sqlite_iso_text, write_arrow, write_records
from .db import dialect_insert, upsert  # noqa: F401  (importable from here too)
from .ledger import DONE_STATUSES, find_by_sha, ledger, list_quarantine, now  # noqa: F401  (re-exported)
from .tables import FEED_TABLES, TransferStatus, ingest_file, quarantine, sftp_transfer, value_issue


# ------------------------------------------------------------------------------------ ledger
# the ledger's own SQL lives in store/ledger.py; find_by_sha, ledger, list_quarantine stay importable here
def add_quarantine(conn: Connection, load_id: int, records: list[dict]) -> None:
    write_records(conn, quarantine, [dict(r, load_id=load_id) for r in records])


def add_issues(conn: Connection, load_id: int, feed: str, dealer_code: str, records: list[dict]) -> None:
    add_warnings(conn, [dict(r, load_id=load_id, feed=feed, dealer_code=dealer_code) for r in records])


# ------------------------------------------------------------------------------------ staging

def _stage_columns(feed: FeedDef, pg: bool):
    """The stage's columns, typed like the canonical table's (a key of integers or dates joins and
    conflicts with the target's own type: a text stage made PostgreSQL fail with ``bigint = text``).
    Text columns compare in byte order: PostgreSQL's sorts and groupings over the stage run much
    faster with the "C" collation than with a libc locale (C.UTF-8 included); SQLite compares bytes anyway."""
    target = FEED_TABLES[feed.name]
    text_type = Text(collation="C") if pg else Text()

    def typ(c: str):
        t = target.c[c].type
        return text_type if isinstance(t, (String, Text)) else t
    return [Column(c, typ(c)) for c in feed.columns] + [Column("source_row", Integer, nullable=False)]


def create_stage(conn: Connection, feed: FeedDef, load_id: int) -> Table:
    """A temporary table holding the file's valid rows until the final upsert."""
    pg = conn.dialect.name == "postgresql"
    kw = {"postgresql_on_commit": "DROP"} if pg else {}
    t = Table(f"stage_{feed.name}_{load_id}", MetaData(), *_stage_columns(feed, pg), prefixes=["TEMPORARY"], **kw)
    t.create(conn)
    return t


@dataclass(frozen=True)
class Lineage:
    """Where a chunk's rows come from: stamped on every row of the canonical table."""
    dealer_code: str
    business_date: date | None
    source_file: str
    load_id: int
    ingested_at: datetime


def stage_frame(conn: Connection, stage: Table, frame) -> None:
    """Append a chunk's valid rows (a polars frame: canonical strings, null for blank, and source_row)
    to the stage, cast to its column types on the way (as the plain bulk write does)."""
    if frame.height:
        write_arrow(conn, stage, _arrow(frame, [c.name for c in stage.columns]))


def _arrow(frame, columns: list[str]):
    import polars as pl
    return frame.select(columns).to_arrow(compat_level=pl.CompatLevel.oldest())


class _LoadKeys:
    """What the write path knows of one load across its chunks: the 64-bit hashes of the keys it has
    written so far (sorted, 8 bytes a key; past ``cap`` it keeps none and every row counts as a
    possible repeat, the path before this class), and whether a plain bulk write already met a key of
    another load (then every later chunk goes to the stage at once, without a COPY that would fail)."""

    def __init__(self, cap: int = 16_000_000):
        import numpy as np
        self.cap = cap
        self.seen: "np.ndarray | None" = np.zeros(0, np.uint64)
        self.copy_fails = False

    def again(self, hashes) -> "np.ndarray":
        """For each of ``hashes`` (one chunk, distinct keys), whether an earlier chunk may have had it
        (a hash collision only sends a new key to the upsert, which inserts it)."""
        import numpy as np
        if self.seen is None:
            return np.ones(len(hashes), dtype=bool)
        if not len(self.seen):
            return np.zeros(len(hashes), dtype=bool)
        pos = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
        return self.seen[pos] == hashes

    def add(self, hashes) -> None:
        import numpy as np
        if self.seen is None:
            return
        if len(self.seen) + len(hashes) > self.cap:
            self.seen = None
            return
        hs = np.sort(hashes)
        self.seen = np.insert(self.seen, np.searchsorted(self.seen, hs), hs)


_LOADS: "weakref.WeakKeyDictionary[Lineage, _LoadKeys]" = weakref.WeakKeyDictionary()
_LOADS_LOCK = threading.Lock()


def _load_keys(lineage: Lineage) -> _LoadKeys:
    with _LOADS_LOCK:
        state = _LOADS.get(lineage)
        if state is None:
            state = _LOADS[lineage] = _LoadKeys()
        return state


def write_chunk(conn: Connection, feed: FeedDef, frame, lineage: Lineage, stage: Callable[[], Table]) -> list[dict]:
    """Load one validated chunk (a polars frame: canonical columns as strings, null for blank, and
    ``source_row``) into the feed's canonical table; returns the SUPERSEDED warnings (earlier rows of
    this load whose key came again; the later row wins). ``lineage``: the same object for every chunk
    of a load (what the load wrote so far is kept with it).

    Inside the chunk the last occurrence of a key wins. The rows whose key no earlier chunk of this
    load had (by the keys' hashes) then go in with a plain bulk write (COPY) inside a savepoint: the
    common case costs nothing more. The rows whose key an earlier chunk had go through ``stage()`` and
    the keyed upsert (only those rows are joined to the table to find the rows they supersede). When
    the plain write meets a key already in the table (another day's row), the savepoint is rolled back
    and those rows take the upsert too, as do all the rows of the load's later chunks."""
    import polars as pl
    if frame.height == 0:
        return []
    key = list(feed.key)
    warnings: list[dict] = []
    dup = ~frame.select(pl.struct(key).is_last_distinct()).to_series()
    if dup.any():
        later = frame.select(pl.col("source_row").max().over(key)).to_series().filter(dup)
        for r, last in zip(frame.filter(dup).iter_rows(named=True), later):
            warnings.append(_superseded(feed, lineage, int(r["source_row"]), {k: r[k] for k in key}, int(last)))
        frame = frame.filter(~dup)
    state = _load_keys(lineage)
    hashes = frame.select(pl.struct(key).hash()).to_series().to_numpy()
    again = state.again(hashes)
    fresh = frame.filter(pl.Series(~again)) if again.any() else frame
    repeat = frame.filter(pl.Series(again)) if again.any() else frame.clear()
    if not state.copy_fails and fresh.height:
        if _copy_new_rows(conn, feed, fresh, lineage):
            fresh = fresh.clear()
        else:
            state.copy_fails = True
    if repeat.height or fresh.height:
        try:
            st = stage()
            if repeat.height:
                stage_frame(conn, st, repeat)
                warnings += _superseded_in_load(conn, st, feed, lineage)
            stage_frame(conn, st, fresh)
            upsert_from_stage(conn, st, feed, lineage)
            conn.execute(delete(st))
        except Exception as e:
            raise refused(e, lineage.source_file, frame) from None
    state.add(hashes)
    return warnings


def _copy_new_rows(conn: Connection, feed: FeedDef, frame, lineage: Lineage) -> bool:
    """The plain bulk write of rows whose keys this load has not had, in a savepoint; False (and
    nothing written) when a key is already in the table."""
    target = FEED_TABLES[feed.name]
    constants = dict(dealer_code=lineage.dealer_code, business_date=lineage.business_date,
                     source_file=lineage.source_file, load_id=lineage.load_id, ingested_at=lineage.ingested_at)
    savepoint = conn.begin_nested()
    try:
        write_arrow(conn, target, _arrow(frame, list(feed.columns) + ["source_row"]), constants)
    except Exception as e:
        savepoint.rollback()
        if not _is_unique_violation(e):
            raise refused(e, lineage.source_file, frame) from None
        return False
    savepoint.commit()
    return True


_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")


def refused(e: BaseException, source_file: str, frame=None) -> Exception:
    """A database's refusal of a chunk as :class:`ValueRefused` naming the file, the row (from
    PostgreSQL's COPY context: the chunk's line -> the file's row) and the column, with the database's
    own words and never the value; anything else comes back as it was."""
    orig = getattr(e, "orig", None) or e
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    data_fault = bool(state) and state[:2] in ("22", "23")   # SQLSTATE data exception, integrity violation
    if not (data_fault or (isinstance(e, ValueError) and "NUL" in str(e))
            or (isinstance(e, DBAPIError) and not state and "constraint" in str(orig).lower())):
        return e
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    primary = primary.split(": 0x")[0] if "invalid byte sequence" in primary else primary
    if "NUL" in primary or "0x00" in str(orig):
        primary = "a NUL byte (0x00) in a text value"
    row = column = None
    m = _COPY_CONTEXT.search(getattr(diag, "context", None) or "")
    if m:
        column = m.group(2)
        line = int(m.group(1))
        if frame is not None and "source_row" in frame.columns and 0 < line <= frame.height:
            row = int(frame["source_row"][line - 1])
    column = column or getattr(diag, "column_name", None)
    return ValueRefused(f"the database refused a value ({primary}); the file's load was rolled back",
                        file=source_file, row=row, column=column)


def _is_unique_violation(e: Exception) -> bool:
    orig = getattr(e, "orig", e)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return code == "23505" or "UNIQUE constraint failed" in str(orig)


def _superseded(feed: FeedDef, lineage: Lineage, row: int, key: dict, later: int) -> dict:
    keytext = ", ".join(f"{k}={v}" for k, v in key.items())
    return dict(load_id=lineage.load_id, feed=feed.name, dealer_code=lineage.dealer_code,
                source_file=lineage.source_file, source_row=row, column_name=feed.key[0],
                raw_value=key[feed.key[0]], reason_code="SUPERSEDED", severity="WARNING",
                message=f"{keytext} appears again at row {later}; the later row wins")


def _superseded_in_load(conn: Connection, stage: Table, feed: FeedDef, lineage: Lineage) -> list[dict]:
    """Rows an earlier chunk of this load put in whose key comes again in the staged chunk. Each staged
    key is looked up by the table's primary key (a correlated subquery, one index probe a staged row):
    a join let PostgreSQL, whose statistics of the table predate the load, hash the whole table for
    each chunk."""
    target = FEED_TABLES[feed.name]
    earlier = (select(target.c.source_row)
               .where(target.c.dealer_code == lineage.dealer_code,
                      *[target.c[k] == _key_typed(conn, stage, target, k) for k in feed.key],
                      target.c.load_id == lineage.load_id)
               .scalar_subquery())
    found = select(earlier.label("earlier"), stage.c.source_row.label("later"),
                   *[stage.c[k] for k in feed.key]).subquery()
    q = select(found).where(found.c.earlier.is_not(None)).order_by(found.c.earlier)
    with _index_probes(conn):
        got = conn.execute(q).all()
    return [_superseded(feed, lineage, r.earlier, {k: r._mapping[k] for k in feed.key}, r.later) for r in got]


def _key_typed(conn: Connection, stage: Table, target: Table, col: str):
    """A staged key column as the table's primary key compares it: on PostgreSQL a staged text
    keeps its "C" collation through a cast, and a comparison in another collation than the index's
    cannot use the index."""
    typed = _typed(conn, stage, target, col)
    if conn.dialect.name == "postgresql" and isinstance(target.c[col].type, (String, Text)):
        return typed.collate("default")
    return typed


@contextmanager
def _index_probes(conn: Connection):
    """PostgreSQL plans with the table's statistics from before this load (an empty table's, on a first
    load: "2 rows"), and then scans the whole table for each staged key. Sequential scans (and JIT,
    which their disabled cost would start) are off for the one query (``set_config`` local to the
    transaction, put back after it)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    names = ("enable_seqscan", "jit")   # the disabled scans' costs would start JIT compiling too
    old = conn.exec_driver_sql(f"SELECT {', '.join(f'current_setting({n!r})' for n in names)}").one()
    conn.exec_driver_sql(f"SELECT {', '.join(f'set_config({n!r}, {chr(39)}off{chr(39)}, true)' for n in names)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SELECT {', '.join('set_config(%s, %s, true)' for _ in names)}",
                             tuple(v for pair in zip(names, old) for v in pair))


def add_warnings(conn: Connection, records: list[dict]) -> None:
    """Value issues and warnings (full ``value_issue`` records), in one bulk write."""
    write_records(conn, value_issue, records)


def drop_stage(conn: Connection, stage: Table) -> None:
    stage.drop(conn)


def _typed(conn: Connection, stage: Table, target: Table, col: str):
    t = target.c[col].type
    if conn.dialect.name == "sqlite" and sqlite_iso_text(t):
        return stage.c[col]
    return cast(stage.c[col], t)


def upsert_from_stage(conn: Connection, stage: Table, feed: FeedDef, lineage: Lineage) -> int:
    """Upsert the staged rows (one per key) into the canonical table. A row from an older business
    day never overwrites a newer one."""
    target = FEED_TABLES[feed.name]
    names = list(feed.columns) + ["dealer_code", "business_date", "source_file", "source_row", "load_id",
                                  "ingested_at"]
    sel = select(*[_typed(conn, stage, target, c) for c in feed.columns],
                 literal(lineage.dealer_code, String), literal(lineage.business_date, Date),
                 literal(lineage.source_file, String), stage.c.source_row, literal(lineage.load_id, Integer),
                 literal(lineage.ingested_at, DateTime)
                 ).where(stage.c.source_row.is_not(None))  # SQLite needs a WHERE before ON CONFLICT
    ins = dialect_insert(conn, target)
    stmt = ins.from_select(names, sel)
    stmt = stmt.on_conflict_do_update(
        index_elements=["dealer_code", *feed.store_key],
        set_={c: stmt.excluded[c] for c in names},
        where=or_(stmt.excluded.business_date.is_(None), target.c.business_date.is_(None),
                  stmt.excluded.business_date >= target.c.business_date))
    return conn.execute(stmt).rowcount


def mileage_warnings(conn: Connection, feed: FeedDef, lineage: Lineage, rows_loaded: int = 0,
                     repeated_vins: list[str] | None = None) -> int:
    """Repair orders of this load whose mileage is lower than an earlier visit of the same VIN
    (loaded, flagged). Only VINs seen more than once are ranked.

    ``repeated_vins``: the VINs that came more than once in this load, when the caller kept count
    (``RepeatedValues``). If no other load of the dealer's feed can have rows in the table, those are
    the only VINs to rank, and none means no warning, with no pass over the table. Otherwise a big load
    finds the repeats in one pass over the dealer's rows, a small one through its own VINs."""
    if feed.name != "repair_orders":
        return 0
    target = FEED_TABLES[feed.name].name
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    params = {"dealer": lineage.dealer_code, "load": lineage.load_id}
    if repeated_vins is not None and not _other_loads(conn, feed, lineage):
        if not repeated_vins:
            return 0
        params["vins"] = json.dumps(repeated_vins) if conn.dialect.name == "sqlite" else repeated_vins
        again = ("SELECT value AS vin FROM json_each(:vins)" if conn.dialect.name == "sqlite"
                 else "SELECT unnest(CAST(:vins AS text[])) AS vin")
    elif rows_loaded >= 100_000:
        again = f"""SELECT vin FROM {target} WHERE dealer_code = :dealer AND mileage_km IS NOT NULL
         GROUP BY vin HAVING count(*) > 1 AND max(CASE WHEN load_id = :load THEN 1 ELSE 0 END) = 1"""
    else:
        again = f"""SELECT vin FROM {target}
         WHERE dealer_code = :dealer AND mileage_km IS NOT NULL
           AND vin IN (SELECT vin FROM {target} WHERE load_id = :load)
         GROUP BY vin HAVING count(*) > 1"""
    sql = f"""
    WITH again AS ({again}), o AS (
        SELECT t.vin, t.source_row, t.load_id, t.mileage_km AS km,
               max(t.mileage_km) OVER (PARTITION BY t.vin ORDER BY t.opened_at
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max
          FROM {target} t JOIN again a ON a.vin = t.vin
         WHERE t.dealer_code = :dealer AND t.mileage_km IS NOT NULL
    )
    SELECT vin, source_row, km, prev_max FROM o WHERE load_id = :load AND prev_max > km ORDER BY source_row"""
    rows = conn.execute(text(sql), params).all()
    add_warnings(conn, [dict(
        load_id=lineage.load_id, feed=feed.name, dealer_code=lineage.dealer_code, source_file=lineage.source_file,
        source_row=r.source_row, column_name="mileage_km", raw_value=str(r.km), reason_code="MILEAGE_BACKWARDS",
        severity="WARNING", message=f"mileage {r.km} km is lower than {r.prev_max} km at an earlier visit "
                                    f"of VIN {r.vin}") for r in rows])
    return len(rows)


def _other_loads(conn: Connection, feed: FeedDef, lineage: Lineage) -> bool:
    """Whether another load of this dealer's feed, loaded or under way, may have rows in its table
    (a replaced load's rows are gone)."""
    q = select(ingest_file.c.id).where(
        ingest_file.c.dealer_code == lineage.dealer_code, ingest_file.c.feed == feed.name,
        ingest_file.c.id != lineage.load_id, ingest_file.c.status.in_(("LOADED", "LOADING"))).limit(1)
    return conn.execute(q).first() is not None


class RepeatedValues:
    """The values of one column that come more than once in a load, gathered chunk by chunk (for the
    mileage rule: the VINs with a mileage). It keeps a sorted array of the 64-bit hashes seen so far
    (8 bytes a value) and the text of the values seen again only, once each; a hash collision can only add a value
    that came once, which costs the rule a little work and changes no result. Past ``cap`` distinct
    values it keeps nothing and says None, so memory stays bounded whatever the file's size."""

    def __init__(self, column: str, where: str | None = None, cap: int = 8_000_000):
        import numpy as np
        self.column, self.where, self.cap = column, where, cap
        self._seen: np.ndarray | None = np.zeros(0, np.uint64)
        self._repeated = np.zeros(0, np.uint64)         # hashes of the values whose text is in _again
        self._again: list = []

    def add(self, frame) -> None:
        import numpy as np
        import polars as pl
        if self._seen is None or not {self.column, self.where or self.column} <= set(frame.columns):
            return
        if self.where is not None:
            frame = frame.filter(pl.col(self.where).is_not_null())
        s = frame.get_column(self.column).drop_nulls()
        if not len(s):
            return
        h = s.hash().to_numpy()
        order = np.argsort(h)
        hs = h[order]                                   # sorted: the look-ups below walk memory in order
        same = hs[1:] == hs[:-1]
        again = np.zeros(len(hs), dtype=bool)
        again[1:] |= same                               # twice in this chunk
        again[:-1] |= same
        pos = np.searchsorted(self._seen, hs)
        seen = (self._seen[np.minimum(pos, len(self._seen) - 1)] == hs) if len(self._seen) else again & False
        again |= seen                                   # or seen in an earlier one
        if again.any():                                 # the text of each repeated value, once
            rep = hs[again]
            first = np.r_[True, rep[1:] != rep[:-1]]
            rows, rep = order[again][first], rep[first]
            at = np.searchsorted(self._repeated, rep)
            known = (self._repeated[np.minimum(at, len(self._repeated) - 1)] == rep) if len(self._repeated) \
                else np.zeros(len(rep), dtype=bool)
            if not known.all():
                self._again.append(s.gather(rows[~known]))
                self._repeated = np.insert(self._repeated, at[~known], rep[~known])
        new = np.r_[True, ~same] & ~seen                # first time seen: merged in, in order, in one pass
        self._seen = np.insert(self._seen, pos[new], hs[new])
        if len(self._seen) > self.cap:
            self._seen = None

    def repeated(self) -> list[str] | None:
        import polars as pl
        if self._seen is None:
            return None
        return pl.concat(self._again).unique().sort().to_list() if self._again else []


# ------------------------------------------------------------------------------------ SFTP transfers

def pulled_before(conn: Connection, host: str, remote_path: str, size: int, mtime: int) -> bool:
    """True when this remote file, at this size and mtime, was already pulled."""
    q = select(func.count()).select_from(sftp_transfer).where(
        sftp_transfer.c.direction == "PULL", sftp_transfer.c.host == host, sftp_transfer.c.remote_path == remote_path,
        sftp_transfer.c.size == size, sftp_transfer.c.remote_mtime == mtime,
        sftp_transfer.c.status == TransferStatus.DONE.value)
    return conn.execute(q).scalar_one() > 0


def pushed_before(conn: Connection, host: str, remote_path: str, sha256: str):
    return conn.execute(select(sftp_transfer).where(
        sftp_transfer.c.direction == "PUSH", sftp_transfer.c.host == host, sftp_transfer.c.remote_path == remote_path,
        sftp_transfer.c.sha256 == sha256, sftp_transfer.c.status == TransferStatus.DONE.value)).mappings().first()


def record_transfer(conn: Connection, **values) -> None:
    """Idempotent on (direction, host, remote path, sha256): a repeat only refreshes the receipt."""
    upsert(conn, sftp_transfer, values, ["direction", "host", "remote_path", "sha256"])


def transfers(conn: Connection, direction: str | None = None):
    q = select(sftp_transfer).order_by(sftp_transfer.c.id)
    if direction:
        q = q.where(sftp_transfer.c.direction == direction)
    return conn.execute(q).mappings().all()
