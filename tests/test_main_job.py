"""The README's first command ends with ``dealersync run``: on a fresh data folder it writes sample
exports, ingests them through the Prefect flow (ephemeral server) and prints a summary; a second
run finds nothing new. Runs the real CLI in a subprocess."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

EXE = Path(sys.executable).with_name("dealersync")


def run(cwd, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALERSYNC_", "PREFECT_"))}
    env["PREFECT_HOME"] = str(Path(cwd) / "prefect-home")
    return subprocess.run([str(EXE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_main_job_first_run_and_rerun(tmp_path):
    assert shutil.which(str(EXE)), "the dealersync console script is not installed"
    first = run(tmp_path, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "first run: sample exports written" in first.stdout
    for feed in ("customers", "vehicles", "repair_orders", "repair_order_lines", "vehicle_sales", "warranty_claims"):
        assert feed in first.stdout
    db = tmp_path / ".data" / "dealersync.db"
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.connect() as c:
        files = c.execute(sa.text("select rows_read, rows_loaded, rows_quarantined, status from ingest_file")).all()
        assert len(files) == 6 and all(s == "LOADED" and r == lo + q for r, lo, q, s in files)
        assert c.execute(sa.text("select count(*) from dms_repair_order")).scalar_one() > 100
    second = run(tmp_path, "run")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "nothing new to ingest" in second.stdout
    with eng.connect() as c:
        assert c.execute(sa.text("select count(*) from ingest_file")).scalar_one() == 6
