"""The speed-ups of the test fixtures prove the same things: the SQLite store a test gets (a copy of one
migrated once a worker) is, table by table and row by row, the store ``upgrade`` makes."""
from __future__ import annotations

import sqlite3

from dealersync.store.db import make_engine, upgrade


def _dump(path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
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
    assert any("alembic_version" in line for line in _dump(copied))
