"""Shared fixtures. Store tests run on SQLite and on PostgreSQL (``DEALERSYNC_TEST_POSTGRES_URL``,
default 127.0.0.1:5432/test). With ``CI=true`` a missing PostgreSQL fails the run, never skips."""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from dealersync.store.db import make_engine, upgrade

PG_URL = os.environ.get("DEALERSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        e = make_engine(PG_URL, connect_args={"connect_timeout": 5})
        with e.connect() as c:
            c.execute(sa.text("select 1"))
        e.dispose()
        return None
    except Exception as ex:  # noqa: BLE001
        return f"{type(ex).__name__}: {ex}"


def require_postgres():
    why = _pg_available()
    if why:
        msg = f"PostgreSQL at {PG_URL} is not reachable: {why}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A migrated, empty store on each backend."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    upgrade(eng)
    yield eng
    eng.dispose()
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()
