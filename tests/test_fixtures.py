"""The speed-ups of the test fixtures prove the same things: the SQLite store a test gets (a copy of one
migrated once a worker) and the PostgreSQL schema a test gets (migrated, or emptied after an earlier
test that left its shape alone) are, table by table and row by row, the store ``upgrade`` makes."""
from __future__ import annotations

import sqlite3
import uuid

import sqlalchemy as sa

from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.db import make_engine, upgrade
from tests.conftest import PG_URL, require_postgres


def _dump(path) -> list[list[str]]:
    """Every statement that rebuilds the database, its lines sorted (two runs of the migrations can list
    a table's constraints in another order: SQLite's batch migrations rebuild tables from a set)."""
    con = sqlite3.connect(path)
    try:
        return [sorted(x.rstrip(", ") for x in stmt.splitlines()) for stmt in con.iterdump()]
    finally:
        con.close()


def test_the_copied_sqlite_store_is_a_freshly_migrated_one(sqlite_engine, tmp_path):
    fresh = tmp_path / "fresh" / "store.db"
    eng = make_engine(f"sqlite:///{fresh}")
    upgrade(eng)
    eng.dispose()
    copied = sqlite_engine.url.database
    with sqlite_engine.connect() as c:     # the test's engine opens it as the product does
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    sqlite_engine.dispose()
    assert copied != str(fresh) and _dump(copied) == _dump(fresh)
    assert any("alembic_version" in line for stmt in _dump(copied) for line in stmt)


def _pg_state(c, schema: str) -> dict:
    """Every table's row count, alembic_version's rows and every sequence's state."""
    tables = [t for (t,) in c.execute(sa.text("select tablename from pg_tables where schemaname = :s"), {"s": schema})]
    out = {t: c.execute(sa.text(f'select count(*) from "{schema}"."{t}"')).scalar_one() for t in tables}
    out["alembic_version"] = c.execute(sa.text(f'select version_num from "{schema}".alembic_version')).all()
    for (q,) in c.execute(sa.text("select sequencename from pg_sequences where schemaname = :s"), {"s": schema}).all():
        out["seq " + q] = c.execute(sa.text(f'select last_value, is_called from "{schema}"."{q}"')).one()
    return out


def test_a_postgresql_schema_handed_back_is_a_freshly_migrated_one(pg_schemas, tmp_path):
    require_postgres()
    schema = pg_schemas.take()
    used = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    files = generate(tmp_path / "drop", rows=20, seed=5)
    for feed in ("customers", "vehicles"):
        assert ingest_file(used, files[feed]).status == "loaded"
    used.dispose()
    pg_schemas.give_back(schema)
    assert pg_schemas.take() == schema          # emptied and reused
    fresh = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{fresh}"'))
    try:
        upgrade(make_engine(PG_URL, connect_args={"options": f"-csearch_path={fresh}"}))
        with admin.connect() as c:
            assert pg_schemas._shape(c, schema) == pg_schemas._shape(c, fresh)
            reused, migrated = _pg_state(c, schema), _pg_state(c, fresh)
        assert reused == migrated and any(k.startswith("seq ") for k in reused) and len(reused) > 30
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{fresh}" CASCADE'))
        admin.dispose()
        pg_schemas.give_back(schema)


def test_a_postgresql_schema_a_test_changed_is_not_reused(pg_schemas):
    require_postgres()
    schema = pg_schemas.take()
    with pg_schemas.admin.begin() as c:
        c.execute(sa.text(f'ALTER TABLE "{schema}".ingest_file ADD COLUMN extra integer'))
    pg_schemas.give_back(schema)
    assert schema not in pg_schemas.free
    with pg_schemas.admin.connect() as c:
        assert c.execute(sa.text("select count(*) from pg_namespace where nspname = :s"), {"s": schema}).scalar_one() == 0
