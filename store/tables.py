"""SQLAlchemy 2 tables of the store. Schema changes go through Alembic (``store/migrations``).

Canonical feed tables are declared from the pandera models' metadata so the two never disagree;
every row carries its lineage: dealer_code, business_date, source_file, source_row, load_id.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, ForeignKey, Index, Integer, MetaData,
                        Numeric, String, Table, Text, UniqueConstraint)

from schemas.feeds import FEEDS

NAMING = {"ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}
metadata = MetaData(naming_convention=NAMING)

ingest_file = Table(
    "ingest_file", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="the load id"),
    Column("path", Text, nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, comment="local file mtime when ingested; with path and size it spares re-hashing"),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("source", String(8), nullable=False, default="DMS"),
    Column("feed", String(32)),
    Column("dealer_code", String(32)),
    Column("business_date", Date),
    Column("profile", String(64)),
    Column("encoding", String(32)),
    Column("status", String(16), nullable=False),  # LOADING, LOADED, REJECTED, REPLACED
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
    Column("rows_superseded", Integer, nullable=False, default=0),
    Column("value_issues", Integer, nullable=False, default=0),
    Column("warnings", Integer, nullable=False, default=0),
    Column("message", Text),
    Column("file_warnings", Text, comment="JSON list of file-level warnings"),
    Column("replaced_by", Integer),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("duration_ms", Integer),
    Column("timings", Text, comment="JSON: seconds per phase (read, validate, stage, finalise)"),
    Index(None, "dealer_code", "feed", "business_date"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, ForeignKey("ingest_file.id"), nullable=False, index=True),
    Column("source_file", String(255), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("column_name", String(64)),
    Column("raw_value", Text),
    Column("reason_code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("raw_row", Text, comment="JSON object header -> raw cell"),
)

value_issue = Table(
    "value_issue", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, ForeignKey("ingest_file.id"), nullable=False, index=True),
    Column("feed", String(32), nullable=False),
    Column("dealer_code", String(32)),
    Column("source_file", String(255), nullable=False),
    Column("source_row", Integer, nullable=False),
    Column("column_name", String(64)),
    Column("raw_value", Text),
    Column("reason_code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("severity", String(8), nullable=False),  # ISSUE (value blanked) or WARNING (row rule)
)

sftp_transfer = Table(
    "sftp_transfer", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("direction", String(4), nullable=False),          # PULL or PUSH
    Column("host", String(255), nullable=False),
    Column("remote_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("remote_mtime", BigInteger),
    Column("sha256", String(64), nullable=False),
    Column("local_path", Text),
    Column("load_id", Integer, comment="ingest_file.id of a pulled file"),
    Column("status", String(16), nullable=False),            # DONE
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("seconds", Numeric(12, 3)),
    UniqueConstraint("direction", "host", "remote_path", "sha256"),
)

_KIND_TYPES = {"date": Date, "datetime": DateTime, "decimal": lambda: Numeric(16, 4), "integer": BigInteger,
               "bool": Boolean}

LINEAGE = ("dealer_code", "business_date", "source_file", "source_row", "load_id", "ingested_at")


def _sql_type(meta: dict):
    t = _KIND_TYPES.get(meta["kind"])
    if t is not None:
        return t()
    return String(64) if meta["key"] else Text()


def lineage_columns():
    return [Column("dealer_code", String(32), nullable=False),
            Column("business_date", Date),
            Column("source_file", String(255), nullable=False),
            Column("source_row", Integer, nullable=False),
            Column("load_id", Integer, nullable=False, index=True),
            Column("ingested_at", DateTime, nullable=False)]


def feed_columns(feed_name: str) -> list[Column]:
    feed = FEEDS[feed_name]
    return [Column(c, _sql_type(m), nullable=not m["key"]) for c, m in feed.columns.items()]


def _feed_table(feed_name: str) -> Table:
    feed = FEEDS[feed_name]
    return Table(feed.table, metadata,
                 Column("id", Integer, primary_key=True, autoincrement=True),
                 *feed_columns(feed_name), *lineage_columns(),
                 UniqueConstraint("dealer_code", *feed.key))


FEED_TABLES: dict[str, Table] = {name: _feed_table(name) for name in FEEDS}
