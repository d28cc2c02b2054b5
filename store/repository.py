"""Repository functions. Each takes a SQLAlchemy ``Connection`` and never commits: the caller
owns the transaction, so a file's whole load (rows, quarantine, issues, ledger) commits or rolls
back as one. Same behaviour on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

from sqlalchemy import (Column, Connection, Date, DateTime, Integer, MetaData, String, Table, Text,
                        and_, cast, delete, func, insert, literal, or_, select, text, update)
from sqlalchemy.dialects import postgresql, sqlite

from dealersync.schemas.feeds import FeedDef

from .bulk import sqlite_iso_text, write_arrow, write_records
from .tables import FEED_TABLES, ingest_file, quarantine, sftp_transfer, value_issue

DONE_STATUSES = ("LOADED", "REPLACED")


def now() -> datetime:
    return datetime.now().replace(microsecond=0)


def dialect_insert(conn: Connection, table: Table):
    """INSERT with the dialect's ON CONFLICT support (PostgreSQL or SQLite)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(conn: Connection, table: Table, values: dict, key: list[str], where_newer: str | None = None) -> None:
    """Insert or update on the natural ``key``. ``where_newer``: a column whose newer value must never be
    overwritten by an older one (the latest version wins)."""
    ins = dialect_insert(conn, table).values(**values)
    where = None
    if where_newer:
        where = getattr(table.c, where_newer) <= getattr(ins.excluded, where_newer)
    conn.execute(ins.on_conflict_do_update(index_elements=key, set_={k: v for k, v in values.items() if k not in key},
                                           where=where))


# ------------------------------------------------------------------------------------ ledger

def find_by_sha(conn: Connection, sha256: str):
    return conn.execute(select(ingest_file).where(ingest_file.c.sha256 == sha256)).mappings().first()


def seen_unchanged(conn: Connection, path: str, size: int, mtime_ns: int) -> bool:
    """This path, with this size and mtime, is already in the ledger as done or rejected."""
    q = select(func.count()).select_from(ingest_file).where(
        ingest_file.c.path == path, ingest_file.c.size == size, ingest_file.c.mtime_ns == mtime_ns,
        ingest_file.c.status.in_((*DONE_STATUSES, "REJECTED")))
    return conn.execute(q).scalar_one() > 0


def start_load(conn: Connection, *, path: str, file_name: str, size: int, sha256: str, source: str,
               feed: str, dealer_code: str, business_date: date | None, mtime_ns: int | None = None) -> int:
    """Insert (or re-arm after a crash) the ledger row of a file in status LOADING."""
    row = find_by_sha(conn, sha256)
    values = dict(path=path, file_name=file_name, size=size, mtime_ns=mtime_ns, source=source, feed=feed,
                  dealer_code=dealer_code,
                  business_date=business_date, status="LOADING", started_at=now(), finished_at=None,
                  message=None, rows_read=0, rows_loaded=0, rows_quarantined=0, rows_superseded=0,
                  value_issues=0, warnings=0)
    if row is not None:
        conn.execute(update(ingest_file).where(ingest_file.c.id == row["id"]).values(**values))
        return row["id"]
    return conn.execute(insert(ingest_file).values(sha256=sha256, **values)).inserted_primary_key[0]


def finish_load(conn: Connection, load_id: int, **values) -> None:
    fw = values.pop("file_warnings", None)
    if fw is not None:
        values["file_warnings"] = json.dumps(fw, ensure_ascii=False)
    values.setdefault("finished_at", now())
    conn.execute(update(ingest_file).where(ingest_file.c.id == load_id).values(**values))


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


def write_chunk(conn: Connection, feed: FeedDef, frame, lineage: Lineage, stage: Callable[[], Table]) -> list[dict]:
    """Load one validated chunk (a polars frame: canonical columns as strings, null for blank, and
    ``source_row``) into the feed's canonical table; returns the SUPERSEDED warnings (earlier rows of
    this load whose key came again; the later row wins).

    Inside the chunk the last occurrence of a key wins. The chunk then goes in with a plain bulk
    write (COPY) inside a savepoint: the common case, a key not in the table yet, costs nothing more.
    When a key is already there (an earlier chunk of this file, or another day's row), the savepoint is
    rolled back and the chunk goes through ``stage()`` and the keyed upsert instead."""
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
    target = FEED_TABLES[feed.name]
    constants = dict(dealer_code=lineage.dealer_code, business_date=lineage.business_date,
                     source_file=lineage.source_file, load_id=lineage.load_id, ingested_at=lineage.ingested_at)
    savepoint = conn.begin_nested()
    try:
        write_arrow(conn, target, _arrow(frame, list(feed.columns) + ["source_row"]), constants)
    except Exception as e:
        savepoint.rollback()
        if not _is_unique_violation(e):
            raise
    else:
        savepoint.commit()
        return warnings
    st = stage()
    stage_frame(conn, st, frame)
    warnings += _superseded_in_load(conn, st, feed, lineage)
    upsert_from_stage(conn, st, feed, lineage)
    conn.execute(delete(st))
    return warnings


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
    """Rows an earlier chunk of this load put in whose key comes again in the staged chunk."""
    target = FEED_TABLES[feed.name]
    on = [target.c[k] == _typed(conn, stage, target, k) for k in feed.key]
    q = (select(target.c.source_row, stage.c.source_row.label("later"), *[target.c[k] for k in feed.key])
         .join_from(target, stage, and_(*on))
         .where(target.c.dealer_code == lineage.dealer_code, target.c.load_id == lineage.load_id)
         .order_by(target.c.source_row))
    return [_superseded(feed, lineage, r.source_row, {k: r._mapping[k] for k in feed.key}, r.later)
            for r in conn.execute(q)]


def add_warnings(conn: Connection, records: list[dict]) -> None:
    """Value issues and warnings (full ``value_issue`` records), in one bulk write."""
    write_records(conn, value_issue, records)


def replace_previous(conn: Connection, feed: FeedDef, dealer_code: str, business_date: date | None,
                     load_id: int) -> list[int]:
    """A corrected re-export of the same day replaces that day's rows: delete what earlier loads of
    the same dealer, feed and business day put in, and mark those loads REPLACED."""
    if business_date is None:
        return []
    old = [r[0] for r in conn.execute(
        select(ingest_file.c.id).where(ingest_file.c.dealer_code == dealer_code, ingest_file.c.feed == feed.name,
                                       ingest_file.c.business_date == business_date,
                                       ingest_file.c.status == "LOADED", ingest_file.c.id != load_id))]
    if old:
        table = FEED_TABLES[feed.name]
        conn.execute(delete(table).where(table.c.load_id.in_(old)))
        conn.execute(update(ingest_file).where(ingest_file.c.id.in_(old))
                     .values(status="REPLACED", replaced_by=load_id))
    return old


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
        index_elements=["dealer_code", *feed.key],
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


# ------------------------------------------------------------------------------------ queries

def list_quarantine(conn: Connection, file: str | None = None, limit: int | None = None):
    q = (select(quarantine.c.source_file, quarantine.c.row_number, quarantine.c.column_name,
                quarantine.c.raw_value, quarantine.c.reason_code, quarantine.c.message, quarantine.c.load_id,
                ingest_file.c.feed, ingest_file.c.status.label("file_status"))
         .join(ingest_file, ingest_file.c.id == quarantine.c.load_id)
         .order_by(quarantine.c.load_id, quarantine.c.row_number))
    if file:
        q = q.where(or_(quarantine.c.source_file == file, ingest_file.c.path == file))
    if limit:
        q = q.limit(limit)
    return conn.execute(q).mappings().all()


def ledger(conn: Connection):
    return conn.execute(select(ingest_file).order_by(ingest_file.c.id)).mappings().all()


# ------------------------------------------------------------------------------------ SFTP transfers

def pulled_before(conn: Connection, host: str, remote_path: str, size: int, mtime: int) -> bool:
    """True when this remote file, at this size and mtime, was already pulled."""
    q = select(func.count()).select_from(sftp_transfer).where(
        sftp_transfer.c.direction == "PULL", sftp_transfer.c.host == host, sftp_transfer.c.remote_path == remote_path,
        sftp_transfer.c.size == size, sftp_transfer.c.remote_mtime == mtime, sftp_transfer.c.status == "DONE")
    return conn.execute(q).scalar_one() > 0


def pushed_before(conn: Connection, host: str, remote_path: str, sha256: str):
    return conn.execute(select(sftp_transfer).where(
        sftp_transfer.c.direction == "PUSH", sftp_transfer.c.host == host, sftp_transfer.c.remote_path == remote_path,
        sftp_transfer.c.sha256 == sha256, sftp_transfer.c.status == "DONE")).mappings().first()


def record_transfer(conn: Connection, **values) -> None:
    """Idempotent on (direction, host, remote path, sha256): a repeat only refreshes the receipt."""
    upsert(conn, sftp_transfer, values, ["direction", "host", "remote_path", "sha256"])


def transfers(conn: Connection, direction: str | None = None):
    q = select(sftp_transfer).order_by(sftp_transfer.c.id)
    if direction:
        q = q.where(sftp_transfer.c.direction == direction)
    return conn.execute(q).mappings().all()
