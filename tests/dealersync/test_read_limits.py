"""Hostile sizes fail their own file only, with a message naming the limit's setting (issue #15,
"Contain the damage"): a CSV line of 200 MB must not take 1.6 GB, a workbook over its limits is
refused, and the folder's next file still loads."""
from __future__ import annotations

import subprocess
import sys

from dealersync.connectors.files import ReadLimits
from dealersync.services.ingest import ingest_file
from dealersync.store import repository as repo

from .test_ingest_dirt import CUST_A, balanced, csv_bytes, cust, write


def test_a_long_line_fails_its_file_and_the_next_file_loads(sqlite_engine, tmp_path):
    body = csv_bytes(CUST_A, [cust("C1"), cust("C2", address="X" * (3 << 20)), cust("C3")])
    bad = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", body)
    res = ingest_file(sqlite_engine, bad, limits=ReadLimits(max_line_bytes=1 << 20))
    assert res.status == "rejected" and (res.rows_read, res.rows_loaded) == (0, 0)
    assert "max_line_bytes" in res.message and bad.name in res.message
    good = write(tmp_path, "GZ0012_CUSTOMER_20261104.csv", csv_bytes(CUST_A, [cust("C1")]))
    assert balanced(ingest_file(sqlite_engine, good)).rows_loaded == 1
    with sqlite_engine.connect() as c:
        assert sorted(r["status"] for r in repo.ledger(c)) == ["LOADED", "REJECTED"]


def test_a_long_line_inside_a_quoted_value_is_refused_too(sqlite_engine, tmp_path):
    body = csv_bytes(CUST_A, [cust("C1"), cust("C2", address="Y\n" * (600 << 10))])   # 1.2 MB over many lines
    bad = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", body)
    res = ingest_file(sqlite_engine, bad, limits=ReadLimits(max_line_bytes=1 << 20))
    assert res.status == "rejected" and res.rows_loaded == 0


def test_a_200_mb_line_is_refused_in_bounded_memory(tmp_path):
    """The reproduction of issue #15: a 200 MB CSV line, default settings, in a process of its own."""
    path = tmp_path / "GZ0012_CUSTOMER_20261103.csv"
    with open(path, "wb") as f:
        f.write(csv_bytes(CUST_A, [cust("C1")]))
        f.write(b"C2,")
        chunk = b"A" * (1 << 20)
        for _ in range(200):
            f.write(chunk)
        f.write(b"\r\n")
    code = ("import resource, sys\n"
            "from dealersync.store.db import make_engine, upgrade\n"
            "from dealersync.services.ingest import ingest_file\n"
            "e = make_engine('sqlite:///' + sys.argv[2]); upgrade(e)\n"
            # the child's own peak (VmHWM): ru_maxrss survives exec and reports the parent's peak
            "before = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')) // 1024\n"
            "r = ingest_file(e, sys.argv[1])\n"
            "print(r.status, r.message)\n"
            "print(before, next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "s.db")], capture_output=True,
                         text=True, timeout=600, env={"DEALERSYNC_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    lines = out.stdout.strip().splitlines()
    assert lines and lines[0].startswith("rejected") and "max_line_bytes" in lines[0], out.stderr[-2000:]
    before, peak = map(int, lines[-1].split())
    assert peak - before < 200, f"the refusal took {peak - before} MB more (peak {peak} MB)"
