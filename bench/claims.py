"""Claims reliability benchmark: N warranty claims pushed to the sandbox portal (a separate process)
with ~20% injected faults (503, 429, dropped connections, early token expiry), while the pushing
process is killed (SIGKILL) twice and restarted. Then the statuses are polled until every claim has a
final state. Prints: claims on the portal, duplicates, claims with a final state recorded locally, and
throughput against the portal's rate limit.

    .venv/bin/python bench/claims.py [--claims 10000] [--rate 40] [--kill-at 20,45] [--pg-url URL]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_URL = os.environ.get("DEALERSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FINAL = {"SETTLED", "REJECTED", "RETURNED"}


def seed(url: str, n: int) -> None:
    from sqlalchemy import insert

    from dealersync.services.sample import PARTS, make_vin
    from dealersync.store.db import make_engine, upgrade
    from dealersync.store.tables import FEED_TABLES
    import random
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(1)
    now = datetime.now()
    lin = dict(dealer_code="GZ0012", source_file="bench", load_id=0, ingested_at=now)
    ros, lines, wcs = [], [], []
    for i in range(n):
        ro, vin = f"RB{i:08d}", make_vin(rng)
        closed = now - timedelta(days=rng.randrange(1, 20), hours=rng.randrange(0, 20))
        ros.append(dict(ro_number=ro, vin=vin, opened_at=closed - timedelta(hours=6), closed_at=closed, status="已结算",
                        mileage_km=rng.randrange(1000, 60000), repair_type="索赔", source_row=i + 2, **lin))
        part = rng.choice(PARTS)
        lines += [dict(ro_number=ro, line_no=1, line_type="工时", code="A0101", description="工时", hours=1.5, quantity=1, unit_price=300,
                       amount=300, pay_type="索赔", causal_part=False, source_row=2 * i + 2, **lin),
                  dict(ro_number=ro, line_no=2, line_type="配件", code=part, description="配件", hours=None, quantity=1,
                       unit_price=800, amount=800, pay_type="索赔", causal_part=True, source_row=2 * i + 3, **lin)]
        wcs.append(dict(claim_no=f"WB{i:08d}", ro_number=ro, vin=vin, mileage_km=30000, claim_type="保修",
                        complaint_code="C01", complaint="异响", cause_code="R07", cause="部件磨损", correction="更换",
                        defect_code="D100", causal_part_no=part, labor_op_codes="A0101", claim_amount=1100,
                        source_row=i + 2, **lin))
    with engine.begin() as c:
        for t, rows in (("repair_orders", ros), ("repair_order_lines", lines), ("warranty_claims", wcs)):
            for k in range(0, len(rows), 5000):
                c.execute(insert(FEED_TABLES[t]), rows[k:k + 5000])


def worker(url: str, portal: str, rate: float, log: str) -> None:
    """One pushing process: prepare and send everything outstanding; appends its timings to ``log``."""
    from dealersync.connectors.oem import OemClient, OemSettings
    from dealersync.services import claims
    from dealersync.store.db import make_engine
    engine = make_engine(url)
    client = OemClient(OemSettings(url=portal, client_id="dealersync", client_secret="sandbox-secret",
                                   dealer_number="GZ0012", rate_per_second=rate))
    t0 = time.time()
    with engine.begin() as c:
        claims.sync_jobs(c, 30)
    prep = claims.prepare(engine, client, date.today(), 30)
    t1 = time.time()
    Path(log).open("a").write(json.dumps({"pid": os.getpid(), "prepare_start": t0, "send_start": t1, **prep}) + "\n")
    out = claims.send_queued(engine, client, workers=6)
    Path(log).open("a").write(json.dumps({"pid": os.getpid(), "send_start": t1, "send_end": time.time(),
                                          "requests": client.requests_sent, **out}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=40.0, help="the portal's rate limit, requests/s")
    ap.add_argument("--kill-at", default="20,45", help="seconds after each start to SIGKILL the pusher")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--worker", nargs=4)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], a.worker[1], float(a.worker[2]), a.worker[3])
        return
    import requests
    import sqlalchemy as sa

    from dealersync.store.db import make_engine
    schema = f"bench_claims_{uuid.uuid4().hex[:6]}"
    admin = make_engine(a.pg_url)
    with admin.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = a.pg_url + ("&" if "?" in a.pg_url else "?") + f"options=-csearch_path%3D{schema}"
    tmp = Path(tempfile.mkdtemp())
    log = tmp / "runs.jsonl"
    port = 18710
    portal_proc = subprocess.Popen(
        [sys.executable, "-m", "dealersync.cli.main", "sandbox", "portal", "--port", str(port), "--db", str(tmp / "portal.db"),
         "--rate", str(a.rate), "--error-rate", "0.08", "--drop-rate", "0.04", "--expire-rate", "0.04",
         "--throttle-rate", "0.04",
         "--review-after", "1", "--decide-after", "2", "--settle-after", "3"],
        cwd=ROOT, env={**os.environ, "DEALERSYNC_DATA_DIR": str(tmp)}, stderr=subprocess.DEVNULL)
    portal = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        t0 = time.time()
        seed(url, a.claims)
        print(f"# seeded {a.claims:,} claims in {time.time() - t0:.0f} s", file=sys.stderr)
        kills = [float(x) for x in a.kill_at.split(",") if x]
        runs, started = 0, time.time()
        while True:
            runs += 1
            p = subprocess.Popen([sys.executable, __file__, "--worker", url, portal, str(a.rate), str(log)], cwd=ROOT)
            if kills:
                deadline = time.time() + kills.pop(0)
                while p.poll() is None and time.time() < deadline:
                    time.sleep(0.1)
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    print(f"# pusher run {runs} killed (SIGKILL) mid-flight", file=sys.stderr)
                    continue
            p.wait()
            if p.returncode == 0:
                break
        push_wall = time.time() - started
        # statuses: poll until every claim has a final state
        from dealersync.connectors.oem import OemClient, OemSettings
        from dealersync.services import claims
        engine = make_engine(url)
        client = OemClient(OemSettings(url=portal, client_id="dealersync", client_secret="sandbox-secret",
                                       dealer_number="GZ0012"))
        t_poll = time.time()
        while True:
            claims.poll_status(engine, client)
            with engine.begin() as c:
                left = c.execute(sa.text("SELECT count(*) FROM warranty_claim_job WHERE oem_status IS NULL "
                                         "OR oem_status NOT IN ('SETTLED', 'REJECTED', 'RETURNED')")).scalar()
            if left == 0 or time.time() - t_poll > 300:
                break
            time.sleep(2)
        stats = requests.get(f"http://127.0.0.1:{port}/_sandbox/stats").json()
        with engine.begin() as c:
            local = dict(c.execute(sa.text("SELECT local_status, count(*) FROM warranty_claim_job GROUP BY 1")).all())
            final = dict(c.execute(sa.text("SELECT oem_status, count(*) FROM warranty_claim_job GROUP BY 1")).all())
            snaps = c.execute(sa.text("SELECT count(*) FROM claim_status_snapshot")).scalar()
        entries = [json.loads(x) for x in log.read_text().splitlines()]
        sends = [e for e in entries if "send_end" in e]
        send_secs = sum(e["send_end"] - e["send_start"] for e in sends)
        # killed runs: from their send start to the next run's start
        starts = sorted(e["send_start"] for e in entries if "send_start" in e and "send_end" not in e)
        killed_send = 0.0
        for e in entries:
            if "send_end" not in e and not any(s["send_start"] == e["send_start"] for s in sends):
                nxt = [x["prepare_start"] for x in entries if "prepare_start" in x and x["prepare_start"] > e["send_start"]]
                killed_send += (min(nxt) if nxt else e["send_start"]) - e["send_start"]
        del starts
        accepted = stats["distinct_claims"]
        active = send_secs + killed_send
        print(f"\n| measure | value |\n|---|---:|")
        for k, v in [("claims seeded", f"{a.claims:,}"), ("pusher runs (killed + final)", runs),
                     ("claims on the portal", f"{stats['claims']:,}"),
                     ("duplicates on the portal", stats["claims"] - stats["distinct_claims"]),
                     ("local status", ", ".join(f"{k} {v:,}" for k, v in sorted(local.items(), key=str))),
                     ("final OEM status recorded", ", ".join(f"{k} {v:,}" for k, v in sorted(final.items(), key=str))),
                     ("status snapshots", f"{snaps:,}"),
                     ("portal requests", f"{stats['requests']:,}"),
                     ("faults injected: 503 / 401 expired / dropped / 429", f"{stats['errors']} / {stats['expired_tokens']} / "
                                                                            f"{stats['dropped']} / {stats['throttled']}"),
                     ("fault share of requests", f"{(stats['errors'] + stats['expired_tokens'] + stats['dropped'] + stats['throttled']) / max(1, stats['requests']):.1%}"),
                     ("push wall time incl. kills and restarts (s)", f"{push_wall:.0f}"),
                     ("sending time (s)", f"{active:.0f}"),
                     ("portal rate limit (req/s)", f"{a.rate:.0f}"),
                     ("throughput while sending (claims/s)", f"{accepted / active:.1f}"),
                     ("throughput / rate limit", f"{accepted / active / a.rate:.0%}")]:
            print(f"| {k} | {v} |")
    finally:
        portal_proc.terminate()
        portal_proc.wait()
        with admin.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    main()
