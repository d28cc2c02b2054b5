"""Services hold no SQL of their own (issue #14 item 4): every query lives in a ``store/`` module per
aggregate (functions taking a Connection first, never committing), and a service calls those.

An AST check over every module under ``services/``: it fails on
- an import from SQLAlchemy other than the ``Connection`` and ``Engine`` types and ``sqlalchemy.exc``
  (``select``, ``text``, ``func``, ``and_``, ``insert``... are how SQL is written), or ``import sqlalchemy``;
- a call of ``.execute(...)``, ``.exec_driver_sql(...)`` or ``read_sql...(...)`` (running SQL);
- a name imported from ``dealersync.store.tables`` that is not a status enum (a table or column
  object is how a query is built).
"""
from __future__ import annotations

import ast
import enum
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "services"
TYPES = {"Connection", "Engine"}
RUNS_SQL = {"execute", "exec_driver_sql", "read_sql", "read_sql_query", "read_sql_table"}


def sql_in(source: str, filename: str = "<module>") -> list[tuple[int, str]]:
    """(line, what) of every piece of SQL construction or execution in a module's source."""
    tables = importlib.import_module("dealersync.store.tables")
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if a.name == "sqlalchemy" or (a.name.startswith("sqlalchemy.") and a.name != "sqlalchemy.exc")]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            mod = node.module
            if mod in ("sqlalchemy", "sqlalchemy.engine"):
                found += [(node.lineno, f"from {mod} import {a.name}") for a in node.names if a.name not in TYPES]
            elif mod.startswith("sqlalchemy") and mod != "sqlalchemy.exc":
                found += [(node.lineno, f"from {mod} import ...")]
            elif mod == "dealersync.store.tables":
                for a in node.names:
                    obj = getattr(tables, a.name, None)
                    if not (isinstance(obj, type) and issubclass(obj, enum.Enum)):
                        found.append((node.lineno, f"from {mod} import {a.name} (a table, not a status enum)"))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if name in RUNS_SQL:
                found.append((node.lineno, f"{name}(...)"))
    return found


def test_the_check_finds_sql():
    bad = ("from sqlalchemy import select, text\nimport sqlalchemy\n"
           "from dealersync.store.tables import followup_task, JobStatus\n"
           "def f(conn):\n    conn.execute(text('select 1'))\n    return pd.read_sql('x', conn)\n")
    what = [w for _, w in sql_in(bad)]
    assert what == ["from sqlalchemy import select", "from sqlalchemy import text", "import sqlalchemy",
                    "from dealersync.store.tables import followup_task (a table, not a status enum)",
                    "execute(...)", "read_sql(...)"], what
    ok = ("from sqlalchemy import Connection, Engine\nfrom sqlalchemy.exc import DBAPIError\n"
          "from dealersync.store.tables import JobStatus\nfrom dealersync.store import claims\n"
          "def f(conn):\n    return claims.list_jobs(conn)\n")
    assert sql_in(ok) == []


def test_services_hold_no_sql():
    wrong = []
    for path in sorted(SERVICES.rglob("*.py")):
        wrong += [f"{path.relative_to(ROOT)}:{line}: {what}"
                  for line, what in sql_in(path.read_text(encoding="utf-8"), str(path))]
    assert not wrong, "SQL belongs in a store/ module per aggregate:\n" + "\n".join(wrong)
