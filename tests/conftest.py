"""Shared fixtures. Store tests run on SQLite and on PostgreSQL (``DEALERSYNC_TEST_POSTGRES_URL``,
default 127.0.0.1:5432/test). With ``CI=true`` a missing PostgreSQL fails the run, never skips.

The suite runs on pytest-xdist workers (``DEALERSYNC_TEST_WORKERS``, default ``auto``: one per CPU);
``-n 0`` or ``-p no:xdist`` runs it in one process. What a worker starts is its own: PostgreSQL schemas
have random names, servers bind port 0, each sshd and LibreOffice run has its own folder, and each
worker has its own PREFECT_HOME (set below, before anything imports Prefect)."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Prefect keeps profiles, results and its ephemeral database under PREFECT_HOME: one per worker, never the
# user's ~/.prefect (tests that start Prefect in a subprocess give it a home of their own as well)
_PREFECT_HOME = tempfile.mkdtemp(prefix=f"dealersync-prefect-{WORKER}-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from dealersync.store.db import make_engine, upgrade  # noqa: E402

PG_URL = os.environ.get("DEALERSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# CI replays the same Hypothesis examples every run (a landing must not depend on the draw) and keeps
# no example database; elsewhere each run draws new ones. Example counts stay as each test sets them.
settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
if IN_CI:
    settings.load_profile("ci")

# The slowest tests (a real Prefect server, a wheel in a fresh venv, process races, the load matrix,
# the contract conformance runs) are handed out first, so no worker is left with a long one at the end.
SLOW_FIRST = ("tests/flows/test_topology.py", "tests/test_main_job.py", "tests/flows/test_deployments.py",
              "tests/flows/test_children.py", "tests/flows/test_privacy_prefect.py", "tests/test_wheel.py",
              "tests/store/test_concurrency.py", "tests/flows/test_flows.py", "tests/flows/test_front_doors.py",
              "tests/store/test_matrix.py",
              "tests/sandbox/")


# Modules whose tests share one expensive session fixture run on one worker: the tests that use the
# ``prefect_server`` fixture share the worker's ephemeral Prefect server (15-25 s to start). Every other
# test is handed out on its own.
ONE_WORKER = {"tests/flows/test_flows.py": "prefect-ephemeral", "tests/flows/test_front_doors.py": "prefect-ephemeral"}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The whole suite (no test path given: ``pytest``, ``./scripts/test``, CI) runs on xdist workers
    unless ``-n`` says otherwise (``-n 0``: one process) or xdist is off (``-p no:xdist``). A run of named
    tests (``pytest tests/x/test_y.py``) stays in one process; add ``-n 2`` to spread it. Without a
    ``--dist`` of its own, the run uses the scheduler below."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if whole_suite and config.option.numprocesses is None and not config.option.tx \
            and not config.getoption("usepdb", False):
        config.option.numprocesses = os.environ.get("DEALERSYNC_TEST_WORKERS", "auto")
    if config.option.numprocesses and config.option.dist == "no":
        config.option.dist = "load"
        config.pluginmanager.register(_Scheduler(), "dealersync-scheduler")


class _Scheduler:
    """xdist's load-scope scheduling with one test a scope, but the modules of ``ONE_WORKER`` in theirs,
    in collection order (slowest first, below). Not xdist's ``loadgroup``: with pytest 9 its
    ``xdist_group`` marks do not reach the scheduler (it renames ``item._nodeid``, which the node id no
    longer reads)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config, log):
        from xdist.scheduler import LoadScopeScheduling

        class Scheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)

        config.option.loadscopereorder = False   # keep the slowest-first order
        return Scheduling(config, log)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(SLOW_FIRST) if path.startswith(p)), len(SLOW_FIRST))
    items.sort(key=rank)   # stable: the order inside each rank is the collection order


def pytest_unconfigure(config):
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A migrated, empty SQLite store file, made once a worker: each test gets a copy of it instead of
    running the migrations again (tests/test_fixtures.py checks the copy is the store ``upgrade`` makes)."""
    path = tmp_path_factory.mktemp("migrated") / "store.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()   # the last connection closed: the WAL is checkpointed into the file and removed
    assert not path.with_name("store.db-wal").exists()
    return path


def sqlite_store(template, tmp_path):
    target = tmp_path / "store.db"
    shutil.copyfile(template, target)
    return make_engine(f"sqlite:///{target}")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A migrated, empty store on each backend."""
    if request.param == "sqlite":
        eng = sqlite_store(request.getfixturevalue("migrated_sqlite"), tmp_path)
        yield eng
        eng.dispose()
        return
    require_postgres()
    pool = request.getfixturevalue("pg_schemas")
    schema = pool.take()
    # the search_path in the URL, not in connect_args: a test handing engine.url to the CLI or a child
    # process must reach this schema, not public (which other runs on the server may have migrated)
    eng = make_engine(PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}")
    yield eng
    eng.dispose()
    pool.give_back(schema)


# What a PostgreSQL schema is made of: tables and their columns, sequences, constraints, indexes,
# functions, triggers and the migration it is at. A schema a test leaves with this unchanged is emptied
# and handed to the next test; any other is dropped.
_PG_SHAPE = """select string_agg(x, ',' order by x) from (
    select c.relname::text || ':' || c.relkind::text || ':' || coalesce((select string_agg(a.attname::text
           || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text
           || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ';' order by a.attnum)
           from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
           where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '') as x
      from pg_class c where c.relnamespace = cast(:s as regnamespace)
    union all select conname::text || ':' || pg_get_constraintdef(oid) from pg_constraint
      where connamespace = cast(:s as regnamespace)
    union all select pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indrelid
      where c.relnamespace = cast(:s as regnamespace)
    union all select 'f:' || proname::text || '(' || pg_get_function_identity_arguments(oid) || ')' || md5(prosrc)
      from pg_proc where pronamespace = cast(:s as regnamespace)
    union all select 't:' || pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
      where c.relnamespace = cast(:s as regnamespace) and not t.tgisinternal
    union all select 'v:' || version_num from {schema}.alembic_version) q"""


class PgSchemas:
    """Migrated, empty PostgreSQL schemas for one worker. A migration takes about 1.4 s; emptying a
    schema whose shape the test left as it was (``_PG_SHAPE``) about 0.15 s: every table's rows
    deleted but alembic_version's, every sequence back at its start. tests/test_fixtures.py checks a
    schema handed back is, table by table and row by row, one just migrated."""

    def __init__(self):
        self.admin = make_engine(PG_URL)
        self.free: list[str] = []
        self.shape: str | None = None
        self.all: set[str] = set()

    def _shape(self, c, schema: str) -> str:
        """The schema's shape, its own name left out (defaults and index definitions quote it)."""
        shape = c.execute(sa.text(_PG_SHAPE.format(schema=f'"{schema}"')), {"s": schema}).scalar_one()
        return shape.replace(schema, "<schema>")

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        schema = f"t_{uuid.uuid4().hex[:10]}"
        with self.admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        self.all.add(schema)
        eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        upgrade(eng)
        eng.dispose()
        with self.admin.connect() as c:
            shape = self._shape(c, schema)
        if self.shape is None:
            self.shape = shape
        return schema

    def give_back(self, schema: str) -> None:
        try:
            with self.admin.begin() as c:
                c.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                if self._shape(c, schema) != self.shape:
                    raise LookupError("the test changed the schema")
                c.execute(sa.text("SET LOCAL session_replication_role = replica"))   # no FK order to follow
                for (t,) in c.execute(sa.text("select tablename from pg_tables where schemaname = :s"
                                              " and tablename <> 'alembic_version'"), {"s": schema}).all():
                    c.execute(sa.text(f'DELETE FROM "{schema}"."{t}"'))
                c.execute(sa.text("select setval(format('%I.%I', schemaname, sequencename)::regclass, start_value,"
                                  " false) from pg_sequences where schemaname = :s"), {"s": schema})
            self.free.append(schema)
        except Exception:  # noqa: BLE001 - changed, locked or broken: not reused
            self.drop(schema)

    def drop(self, schema: str) -> None:
        with self.admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.all.discard(schema)

    def close(self) -> None:
        for schema in list(self.all):
            self.drop(schema)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_schemas():
    pool = PgSchemas()
    yield pool
    pool.close()


@pytest.fixture
def sqlite_engine(tmp_path, migrated_sqlite):
    eng = sqlite_store(migrated_sqlite, tmp_path)
    yield eng
    eng.dispose()
