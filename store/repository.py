"""Repository functions. Each takes a SQLAlchemy ``Connection`` and never commits: the caller
owns the transaction, so a file's whole load (rows, quarantine, issues, ledger) commits or rolls
back as one. Same behaviour on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import (Column, Connection, Date, DateTime, Integer, MetaData, String, Table, Text, cast,
                        delete, func, insert, literal, or_, select, text, update)
from sqlalchemy.dialects import postgresql, sqlite

from schemas.feeds import FEEDS, FeedDef

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
    if records:
        conn.execute(insert(quarantine), [dict(r, load_id=load_id) for r in records])


def add_issues(conn: Connection, load_id: int, feed: str, dealer_code: str, records: list[dict]) -> None:
    if records:
        conn.execute(insert(value_issue), [dict(r, load_id=load_id, feed=feed, dealer_code=dealer_code)
                                           for r in records])


# ------------------------------------------------------------------------------------ staging

def _stage_columns(feed: FeedDef, pg: bool):
    # byte-order comparison: PostgreSQL's sorts and groupings over the stage run much faster with
    # the "C" collation than with a libc locale (C.UTF-8 included); SQLite compares bytes anyway
    text_type = Text(collation="C") if pg else Text()
    return [Column(c, text_type) for c in feed.columns] + [Column("source_row", Integer, nullable=False)]


def create_stage(conn: Connection, feed: FeedDef, load_id: int) -> Table:
    """A temporary table holding the file's valid rows until the final upsert."""
    pg = conn.dialect.name == "postgresql"
    kw = {"postgresql_on_commit": "DROP"} if pg else {}
    t = Table(f"stage_{feed.name}_{load_id}", MetaData(), *_stage_columns(feed, pg), prefixes=["TEMPORARY"], **kw)
    t.create(conn)
    return t


def stage_frame(conn: Connection, stage: Table, frame) -> None:
    """Append a chunk's valid rows (a DataFrame with the stage's columns; NA for blank).
    PostgreSQL: the chunk as CSV written by pyarrow (C++) straight into COPY; SQLite: executemany."""
    if len(frame) == 0:
        return
    cols = [c.name for c in stage.columns]
    if conn.dialect.name == "postgresql":
        import pyarrow as pa
        import pyarrow.csv as pacsv
        sink = pa.BufferOutputStream()
        # unquoted empty = NULL, quoted "" = empty string: COPY's CSV rules
        pacsv.write_csv(pa.Table.from_pandas(frame[cols], preserve_index=False), sink,
                        pacsv.WriteOptions(include_header=False))
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {stage.name} ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv)") as cp:
                cp.write(memoryview(sink.getvalue()))
    else:
        data = [frame[c].to_numpy(dtype=object, na_value=None) if c != "source_row" else frame[c].astype(int).tolist()
                for c in cols]
        marks = ", ".join("?" for _ in cols)
        conn.exec_driver_sql(f"INSERT INTO {stage.name} ({', '.join(cols)}) VALUES ({marks})", list(zip(*data)))


def analyze_stage(conn: Connection, stage: Table) -> None:
    """Give the planner the staged table's real size (a temp table has no statistics), and enough
    memory for the file-wide aggregates to stay in memory."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    conn.exec_driver_sql(f"ANALYZE {stage.name}")


def _winners(stage: Table, feed: FeedDef):
    """source_row of the last occurrence of each key in the file."""
    return select(func.max(stage.c.source_row)).group_by(*[stage.c[k] for k in feed.key])


def record_superseded(conn: Connection, stage: Table, feed: FeedDef, load_id: int, dealer_code: str,
                      source_file: str) -> int:
    """Earlier occurrences of a key inside the file: loaded-then-superseded, recorded as warnings."""
    key = [stage.c[k] for k in feed.key]
    ranked = select(stage.c.source_row, *key,
                    func.max(stage.c.source_row).over(partition_by=key).label("last_row")).subquery()
    q = (select(ranked.c.source_row, ranked.c.last_row, *[ranked.c[k] for k in feed.key])
         .where(ranked.c.source_row < ranked.c.last_row).order_by(ranked.c.source_row))
    n = 0
    batch = []
    for r in conn.execute(q):
        keytext = ", ".join(f"{k}={r._mapping[k]}" for k in feed.key)
        batch.append(dict(load_id=load_id, feed=feed.name, dealer_code=dealer_code, source_file=source_file,
                          source_row=r.source_row, column_name=feed.key[0], raw_value=r._mapping[feed.key[0]],
                          reason_code="SUPERSEDED", severity="WARNING",
                          message=f"{keytext} appears again at row {r.last_row}; the later row wins"))
        n += 1
        if len(batch) >= 5000:
            conn.execute(insert(value_issue), batch)
            batch = []
    if batch:
        conn.execute(insert(value_issue), batch)
    return n


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


def _typed(conn: Connection, stage: Table, target: Table, col: str):
    t = target.c[col].type
    if conn.dialect.name == "sqlite" and isinstance(t, (Date, DateTime)):
        return stage.c[col]  # SQLite keeps ISO text, which is what SQLAlchemy reads back
    return cast(stage.c[col], t)


def upsert_from_stage(conn: Connection, stage: Table, feed: FeedDef, *, dealer_code: str,
                      business_date: date | None, source_file: str, load_id: int) -> int:
    """Upsert the last occurrence of each key into the canonical table. A row from an older business
    day never overwrites a newer one."""
    target = FEED_TABLES[feed.name]
    names = list(feed.columns) + ["dealer_code", "business_date", "source_file", "source_row", "load_id",
                                  "ingested_at"]
    sel = select(*[_typed(conn, stage, target, c) for c in feed.columns],
                 literal(dealer_code, String), literal(business_date, Date), literal(source_file, String),
                 stage.c.source_row, literal(load_id, Integer), literal(now(), DateTime)
                 ).where(stage.c.source_row.in_(_winners(stage, feed)))
    ins = dialect_insert(conn, target)
    stmt = ins.from_select(names, sel)
    stmt = stmt.on_conflict_do_update(
        index_elements=["dealer_code", *feed.key],
        set_={c: stmt.excluded[c] for c in names},
        where=or_(stmt.excluded.business_date.is_(None), target.c.business_date.is_(None),
                  stmt.excluded.business_date >= target.c.business_date))
    return conn.execute(stmt).rowcount


def mileage_warnings(conn: Connection, stage: Table, feed: FeedDef, *, dealer_code: str, load_id: int,
                     source_file: str) -> int:
    """Repair orders whose mileage is lower than an earlier visit of the same VIN (loaded, flagged)."""
    if feed.name != "repair_orders":
        return 0
    target = FEED_TABLES[feed.name].name
    pg = conn.dialect.name == "postgresql"
    ts = (lambda e: f"CAST({e} AS TIMESTAMP)") if pg else (lambda e: e)
    sql = f"""
    WITH s AS (
        SELECT vin, {ts('opened_at')} AS opened_at, CAST(mileage_km AS BIGINT) AS km, source_row, 1 AS is_new
          FROM {stage.name}
         WHERE mileage_km IS NOT NULL
           AND source_row IN (SELECT max(source_row) FROM {stage.name} GROUP BY ro_number)
        UNION ALL
        SELECT t.vin, t.opened_at, t.mileage_km, NULL, 0 FROM {target} t
         WHERE t.dealer_code = :dealer AND t.mileage_km IS NOT NULL
           AND t.vin IN (SELECT vin FROM {stage.name})
           AND NOT EXISTS (SELECT 1 FROM {stage.name} x WHERE x.ro_number = t.ro_number)
    ), o AS (
        SELECT vin, opened_at, km, source_row, is_new,
               max(km) OVER (PARTITION BY vin ORDER BY opened_at
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max
          FROM s
    )
    SELECT vin, source_row, km, prev_max FROM o WHERE is_new = 1 AND prev_max > km ORDER BY source_row"""
    rows = conn.execute(text(sql), {"dealer": dealer_code}).all()
    if rows:
        conn.execute(insert(value_issue), [dict(
            load_id=load_id, feed=feed.name, dealer_code=dealer_code, source_file=source_file,
            source_row=r.source_row, column_name="mileage_km", raw_value=str(r.km), reason_code="MILEAGE_BACKWARDS",
            severity="WARNING", message=f"mileage {r.km} km is lower than {r.prev_max} km at an earlier visit "
                                        f"of VIN {r.vin}") for r in rows])
    return len(rows)


def drop_stage(conn: Connection, stage: Table) -> None:
    stage.drop(conn)


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
