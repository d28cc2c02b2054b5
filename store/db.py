"""Engine creation, migrations, and the two statements every store module builds the same way: an
INSERT with the dialect's ON CONFLICT support and an upsert on a natural key."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

_MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kw) -> Engine:
    """An engine for ``url`` (SQLite file or PostgreSQL). Always ``hide_parameters=True``: a failed
    statement's error text never quotes the row's values (mobiles, resident IDs: PIPL art. 51)."""
    kw["hide_parameters"] = True
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 300}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            # pysqlite would run DDL (the staging table) outside the transaction; take control of
            # BEGIN ourselves so a file's whole load is one transaction (SQLAlchemy's documented recipe)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # IMMEDIATE: take the write lock up front, so concurrent writers (fan-out, two flows) queue on
            # the busy timeout instead of failing with "database is locked" when a read snapshot upgrades
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url, pool_pre_ping=True, **kw)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# The advisory lock that serialises migrations on PostgreSQL, one per schema: stores in different
# schemas of one database (a test run's workers, two dealers) migrate side by side.
MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('dealersync-migrate:' || current_schema()))"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the store's schema up to date (idempotent). One process migrates at a time (issue #15):
    on PostgreSQL a transaction advisory lock on the schema taken before Alembic looks at it (a second
    ``db upgrade`` waits, then finds the schema at head); on SQLite the transaction's write lock
    (BEGIN IMMEDIATE) does the same."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(MIGRATION_LOCK_SQL))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def dialect_insert(conn: Connection, table: Table):
    """INSERT with the dialect's ON CONFLICT support (PostgreSQL or SQLite)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert(conn: Connection, table: Table, values: dict, key: list[str], where_newer: str | None = None,
           keep: tuple[str, ...] = ()) -> None:
    """Insert or update on the natural ``key``. ``where_newer``: a column whose newer value must never be
    overwritten by an older one (the latest version wins); ``keep``: columns an update leaves as they are
    (``first_seen``)."""
    ins = dialect_insert(conn, table).values(**values)
    where = None
    if where_newer:
        where = getattr(table.c, where_newer) <= getattr(ins.excluded, where_newer)
    conn.execute(ins.on_conflict_do_update(index_elements=key, where=where,
                                           set_={k: v for k, v in values.items() if k not in key and k not in keep}))
