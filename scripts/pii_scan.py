"""PII scan of a full demo run (issue #16, "Done when"): ``dealersync --debug demo`` in a temporary data
folder with a temporary PREFECT_HOME, then its stdout, stderr, the Prefect database's run tables (logs,
flow and task runs and states, artifacts, variables) and every file of the data folder except the stores
and the drop folder (which hold personal data on purpose) are scanned for CN mobiles, valid resident IDs
(python-stdnum) and e-mail addresses. An XLSX (or any zip) is read inside (shared strings, sheet XML,
comments, charts, properties) and a .gz unpacked: their raw bytes are compressed and hid every value.
Prints one line per place and exits 1 on any finding.

    .venv/bin/python scripts/pii_scan.py [--rows 150] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.dealersync.pii_scan import file_text, find_pii  # noqa: E402  (one scanner for the tests and this script)

RUN_TABLES = ("log", "flow_run", "flow_run_state", "task_run", "task_run_state", "artifact", "artifact_collection",
              "variable")


def find(text: str) -> list[str]:
    return find_pii(text)


def data_places(root: Path) -> dict[str, str]:
    """The text of every file of ``root``/data except the stores and the drop folder, by relative path."""
    out = {}
    for p in sorted((root / "data").rglob("*")):
        if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm") and "drop" not in p.relative_to(root).parts:
            out[str(p.relative_to(root))] = file_text(p)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=150)
    ap.add_argument("--keep", help="run in this folder and keep it")
    a = ap.parse_args()
    root = Path(a.keep or tempfile.mkdtemp(prefix="pii-scan-"))
    root.mkdir(parents=True, exist_ok=True)
    keep = ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",)   # a loaded machine starts the server slowly
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DEALERSYNC_")) or k in keep}
    env.update(PREFECT_HOME=str(root / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DEALERSYNC_DATA_DIR=str(root / "data"))
    r = subprocess.run([str(Path(sys.executable).parent / "dealersync"), "--debug", "demo", "--rows", str(a.rows)],
                       env=env, capture_output=True, text=True, cwd=root, timeout=1800)
    places = {"stdout": r.stdout, "stderr": r.stderr}
    con = sqlite3.connect(root / "prefect" / "prefect.db")
    have = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for t in [t for t in RUN_TABLES if t in have]:   # artifact_collection: only in newer Prefect servers
        places[f"prefect.db {t}"] = "\n".join(repr(row) for row in con.execute(f'SELECT * FROM "{t}"'))
    con.close()
    places.update(data_places(root))
    bad = 0
    print(f"demo run exit {r.returncode}; folder {root}")
    for where, text in places.items():
        hits = find(text)
        bad += len(hits)
        print(f"{where:40s} {len(text):>9,} chars  {len(hits):>4} finding(s)" + (f"  e.g. {hits[0][:3]}..." if hits else ""))
    return 1 if bad or r.returncode not in (0, 2) else 0


if __name__ == "__main__":
    sys.exit(main())
