"""Ingestion benchmark: N repair-order rows (dms_a CSV, GB18030, ~2% dirty rows) ingested end to
end into SQLite and PostgreSQL, against a bare PostgreSQL COPY of the same file as the floor; then
N repair-order lines whose keys come again in later chunks (5% of the rows), so that every chunk after
the first ones goes through the stage and the keyed upsert instead of the plain COPY.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--big 2000000] [--repeat 3] [--pg-url URL]
                                     [--lines-rows 1000000] [--only-lines] [--chunk-rows 200000]

Each measurement runs in its own process, so peak RSS (ru_maxrss) is that run's alone. The bare COPY
and the load into PostgreSQL run ``--repeat`` times, alternating (these machines are noisy); the table
shows the median run of each (its phases), every run's seconds, and the highest peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
PG_URL = os.environ.get("DEALERSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HEADER = ["工单号", "开单时间", "结算时间", "交车时间", "车架号", "车牌号", "客户编号", "送修人", "送修人电话", "进厂里程",
          "维修类型", "服务顾问", "工时费", "材料费", "合计金额", "故障描述", "工单状态"]


def generate(rows: int, seed: int = 1, dirty: float = 0.02) -> Path:
    """Write the benchmark file once (cached by size and seed)."""
    import numpy as np
    import pandas as pd

    from dealersync.schemas.identifiers import make_vins
    folder = OUT / f"{rows}_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "GZ0012_RO_20261103.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    chunk = 250_000
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write((",".join(HEADER) + "\r\n").encode("gb18030"))
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            vins = make_vins(rng, n)
            opened = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="m")
            closed = opened + pd.to_timedelta(rng.integers(60, 3000, n), unit="m")
            labor = rng.integers(100, 1500, n)
            parts = rng.integers(0, 9000, n)
            df = pd.DataFrame({
                "ro": [f"RO{start + i:09d}" for i in range(n)],
                "opened": opened.strftime("%Y-%m-%d %H:%M:%S"), "closed": closed.strftime("%Y-%m-%d %H:%M:%S"),
                "delivered": closed.strftime("%Y/%m/%d %H:%M:%S"), "vin": vins,
                "plate": [f"粤A{x:05d}" for x in rng.integers(0, 99999, n)],
                "cust": [f"C{x:07d}" for x in rng.integers(0, rows // 3 + 1, n)],
                "sender": np.array(["张伟", "王芳", "李娜", "刘洋", "陈静"])[rng.integers(0, 5, n)],
                "mobile": [f"1{x:010d}" for x in rng.integers(3 * 10 ** 9, 9 * 10 ** 9, n)],
                "km": rng.integers(1000, 200000, n).astype(str),
                "type": np.array(["首保", "定保", "保养", "小修", "索赔", "事故"])[rng.integers(0, 6, n)],
                "advisor": np.array(["李明", "王静", "陈强"])[rng.integers(0, 3, n)],
                "labor": [f"{x}.00" for x in labor], "parts": [f"{x:,}.00" for x in parts],
                "total": [f"{x:,}.00" for x in labor + parts],
                "complaint": np.array(["异响", "保养", "漏油", "刹车软", "仪表灯亮"])[rng.integers(0, 5, n)],
                "status": np.array(["已结算", "已交车", "在修"])[rng.integers(0, 3, n)]})
            bad = np.flatnonzero(rng.random(n) < dirty)
            kinds = rng.integers(0, 5, len(bad))
            for kind, col, val in [(0, "vin", None), (1, "opened", "2024-02-30 10:00:00"), (2, "mobile", "138123"),
                                   (3, "ro", ""), (4, "km", "12,3a")]:
                rows_k = bad[kinds == kind]
                if kind == 0:
                    df.loc[rows_k, "vin"] = df.loc[rows_k, "vin"].str.slice(0, 8) + "Q" + df.loc[rows_k, "vin"].str.slice(9)
                else:
                    df.loc[rows_k, col] = val
            f.write(df.to_csv(index=False, header=False, lineterminator="\r\n").encode("gb18030"))
    tmp.rename(path)
    return path


LINE_HEADER = ["工单号", "行号", "项目类型", "项目代码", "项目名称", "数量", "工时", "单价", "金额", "收费类型", "主损件"]


def repeat_shift(chunk_rows: int) -> int:
    """How far back a repeated line's key comes from: more than a chunk, so always an earlier chunk."""
    return chunk_rows + chunk_rows // 4 + 3


def generate_lines(rows: int, chunk_rows: int, seed: int = 1) -> tuple[Path, int]:
    """The repair-order lines file (dms_a, GB18030; 1% of the amounts malformed, blanked as value
    issues) and the number of its rows whose key (ro_number, line_no) an earlier chunk already had:
    every 20th row from ``repeat_shift`` on takes the key of the row that far back."""
    import numpy as np
    import pandas as pd
    shift = repeat_shift(chunk_rows)
    folder = OUT / f"lines_{rows}_{chunk_rows}_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "GZ0012_ROLINE_20261103.csv"
    idx = np.arange(rows)
    again = (idx % 20 == 7) & (idx >= shift)
    if path.exists():
        return path, int(again.sum())
    rng = np.random.default_rng(seed)
    src = idx.copy()
    for i in np.flatnonzero(again):          # in order: a chain of repeats ends on the first key
        src[i] = src[i - shift]
    ro, line = src // 3, src % 3 + 1
    kinds = np.array(["工时", "配件", "外加工"])[rng.integers(0, 3, rows)]
    qty = rng.integers(1, 5, rows)
    price = rng.integers(10, 2000, rows)
    amount = np.array([f"{x:,}.00" for x in qty * price], dtype=object)
    amount[rng.random(rows) < 0.01] = "12,3a"
    df = pd.DataFrame({
        "ro": [f"RO{x:09d}" for x in ro], "line": line, "type": kinds,
        "code": np.array(["A0101", "A0203", "06H115562", "5Q0615301F", "B1105"])[rng.integers(0, 5, rows)],
        "desc": np.array(["更换机油", "更换机滤", "四轮定位", "刹车片", "空调清洗"])[rng.integers(0, 5, rows)],
        "qty": qty, "hours": np.round(rng.random(rows) * 3, 1), "price": [f"{x}.00" for x in price],
        "amount": amount,
        "pay": np.array(["客户付费", "索赔", "保险", "内部", "免费"])[rng.integers(0, 5, rows)],
        "causal": np.array(["是", "否"])[rng.integers(0, 2, rows)]})
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write((",".join(LINE_HEADER) + "\r\n").encode("gb18030"))
        f.write(df.to_csv(index=False, header=False, lineterminator="\r\n").encode("gb18030"))
    tmp.rename(path)
    return path, int(again.sum())


def _peak_mb() -> float:
    """This process's peak RSS. (ru_maxrss would do, but Linux carries it over exec from the parent.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ingest(path: str, url: str, chunk_rows: int = 200_000) -> dict:
    from dealersync.services.ingest import ingest_file
    from dealersync.store import repository as repo
    from dealersync.store.db import make_engine, upgrade
    kw = {}
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        import sqlalchemy as sa
        admin = make_engine(url)
        with admin.begin() as c:
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        kw = {"connect_args": {"options": f"-csearch_path={schema}"}}
    engine = make_engine(url, **kw)
    upgrade(engine)
    if kw:
        _checkpoint(url.replace("postgresql+psycopg://", "postgresql://"))
    stages = []
    create_stage = repo.create_stage
    repo.create_stage = lambda *a, **k: stages.append(1) or create_stage(*a, **k)
    t0 = time.perf_counter()
    res = ingest_file(engine, path, chunk_rows=chunk_rows)
    secs = time.perf_counter() - t0
    peak = _peak_mb()
    canonical = None
    if kw:
        canonical = copy_into_canonical(engine, res.feed)
        with admin.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    assert res.status == "loaded", res.message
    assert res.rows_read == res.rows_loaded + res.rows_quarantined
    return {"seconds": secs, "rows": res.rows_read, "loaded": res.rows_loaded, "quarantined": res.rows_quarantined,
            "value_issues": res.value_issues, "superseded": res.rows_superseded, "staged": bool(stages),
            "peak_mb": peak, "timings": res.timings, "canonical_copy": canonical}


def copy_into_canonical(engine, feed: str = "repair_orders") -> float:
    """Seconds for a bare COPY of the rows dealersync loaded (already valid) into an empty table shaped
    like the canonical one (typed columns, its unique key, its indexes), in COPY's binary format as
    dealersync sends them: PostgreSQL's own share."""
    import io

    from dealersync.store.tables import FEED_TABLES
    table = FEED_TABLES[feed].name
    raw = engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        buf = io.BytesIO()
        with cur.copy(f"COPY {table} TO STDOUT WITH (FORMAT binary)") as cp:
            for block in cp:
                buf.write(block)
        cur.execute(f"CREATE TABLE bench_canonical (LIKE {table} INCLUDING ALL)")
        raw.driver_connection.commit()
        t0 = time.perf_counter()
        with cur.copy("COPY bench_canonical FROM STDIN WITH (FORMAT binary)") as cp:
            cp.write(buf.getbuffer())
        raw.driver_connection.commit()
        return time.perf_counter() - t0
    finally:
        raw.close()


def _checkpoint(conninfo: str) -> None:
    """Start each timed run from a clean server: the dirty buffers and WAL of the runs before are written
    out now, not during this run (CHECKPOINT needs a superuser or pg_checkpoint; skipped without)."""
    import psycopg
    try:
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("CHECKPOINT")
    except psycopg.Error as e:
        print(f"# no CHECKPOINT before the run: {e}", file=sys.stderr)


def worker_copy(path: str, url: str) -> dict:
    """The floor: PostgreSQL COPY of the raw file into a text table, no validation at all."""
    import psycopg
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    with open(path, encoding="gb18030") as f:
        width = len(f.readline().split(","))
    with psycopg.connect(conninfo) as conn:
        conn.execute(f"CREATE TABLE {table} ({', '.join(f'c{i} text' for i in range(width))})")
        conn.commit()
        _checkpoint(conninfo)
        t0 = time.perf_counter()
        with conn.cursor() as cur, open(path, "rb") as f:
            with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'GB18030')") as cp:
                while block := f.read(1 << 20):
                    cp.write(block)
        conn.commit()
        secs = time.perf_counter() - t0
        n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.execute(f"DROP TABLE {table}")
    return {"seconds": secs, "rows": n, "loaded": n, "quarantined": 0, "value_issues": 0, "peak_mb": _peak_mb()}


def run_worker(kind: str, path: Path, url: str, chunk_rows: int = 200_000) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, str(path), url, "--chunk-rows", str(chunk_rows)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    """The median run (by seconds), with every run's seconds, the highest peak RSS and the median
    canonical COPY."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    out = dict(ordered[len(ordered) // 2])
    out["runs"] = [r["seconds"] for r in runs]
    out["peak_mb"] = max(r["peak_mb"] for r in runs)
    canon = sorted(r["canonical_copy"] for r in runs if r.get("canonical_copy"))
    if canon:
        out["canonical_copy"] = canon[len(canon) // 2]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=2_000_000, help="second size for the peak-RSS check (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the bare COPY and of the PostgreSQL load")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--lines-rows", type=int, default=1_000_000,
                    help="repair-order lines with keys again in later chunks (the stage-and-upsert path; 0: skip)")
    ap.add_argument("--only-lines", action="store_true", help="the repair-order lines run only")
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--worker", nargs=3, metavar=("KIND", "PATH", "URL"))
    a = ap.parse_args()
    if a.worker:
        kind, path, url = a.worker
        print(json.dumps(worker_copy(path, url) if kind == "copy" else worker_ingest(path, url, a.chunk_rows)))
        return
    results = []
    sizes = [] if a.only_lines else [a.rows] + ([a.big] if a.big else [])
    for rows in sizes:
        t0 = time.perf_counter()
        path = generate(rows)
        print(f"# {path.name}: {path.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t0:.0f} s to generate or find)",
              file=sys.stderr)
        copies, loads = [], []
        for _ in range(a.repeat):   # alternating, so both see the same spells of a noisy machine
            copies.append(run_worker("copy", path, a.pg_url))
            loads.append(run_worker("ingest", path, a.pg_url))
        copy = _median(copies)
        results.append(("bare COPY (PostgreSQL)", rows, copy, copy["seconds"]))
        results.append(("dealersync -> PostgreSQL", rows, _median(loads), copy["seconds"]))
        if rows == a.rows:
            with tempfile.TemporaryDirectory() as d:
                results.append(("dealersync -> SQLite", rows, run_worker("ingest", path, f"sqlite:///{d}/b.db"),
                                copy["seconds"]))
    if a.lines_rows:
        path, again = generate_lines(a.lines_rows, a.chunk_rows)
        print(f"# {path.name}: {path.stat().st_size / 1e6:.0f} MB, {again:,} rows whose key an earlier chunk had",
              file=sys.stderr)
        copies, loads = [], []
        for _ in range(a.repeat):
            copies.append(run_worker("copy", path, a.pg_url, a.chunk_rows))
            loads.append(run_worker("ingest", path, a.pg_url, a.chunk_rows))
        for r in loads:   # the run took the path it is meant to measure, with the right outcome
            assert r["staged"] and r["superseded"] == again, (r["superseded"], again)
        copy = _median(copies)
        results.append(("bare COPY (ROLINE)", a.lines_rows, copy, copy["seconds"]))
        results.append(("ROLINE keys again -> PG", a.lines_rows, _median(loads), copy["seconds"]))
    print(f"\n{'run':26s} {'rows':>10s} {'seconds':>8s} {'rows/s':>9s} {'x COPY':>7s} {'peak RSS MB':>12s} "
          f"{'quarantined':>11s} {'value issues':>12s} {'superseded':>10s}  {'runs (s)':16s} "
          f"seconds per phase (median run)")
    for name, rows, r, copy_s in results:
        runs = " ".join(f"{x:.1f}" for x in r.get("runs", [r["seconds"]]))
        print(f"{name:26s} {rows:>10,d} {r['seconds']:8.1f} {r['rows'] / r['seconds']:9,.0f} "
              f"{r['seconds'] / copy_s:7.2f} {r['peak_mb']:12.0f} {r['quarantined']:11,d} {r['value_issues']:12,d} "
              f"{r.get('superseded', 0):10,d}  "
              f"{runs:16s} " + " ".join(f"{k} {v:.1f}" for k, v in (r.get("timings") or {}).items()))
        if r.get("canonical_copy"):
            c = r["canonical_copy"]
            kept = r['loaded'] - r.get('superseded', 0)   # the rows in the table
            print(f"{'  COPY of its valid rows':26s} {kept:>10,d} {c:8.1f} {kept / c:9,.0f} "
                  f"{c / copy_s:7.2f}  (into a table shaped like the canonical one: PostgreSQL's own share)")


if __name__ == "__main__":
    main()
