"""CRM push benchmark: N master customers pushed to the sandbox CRM over loopback HTTP, then a daily
change of 1% of them pushed again. Prints records/s and requests sent for each; the delta push must
send about 1% of the records.

    .venv/bin/python bench/crm.py [--masters 100000] [--change 0.01] [--pg-url URL | --sqlite]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed_masters(engine, n: int) -> None:
    import numpy as np
    from sqlalchemy import insert

    from dealersync.store.tables import master_customer
    rng = np.random.default_rng(1)
    now = datetime.now().replace(microsecond=0)
    surnames, given = list("王李张刘陈杨黄赵吴周"), list("伟芳娜敏静丽强磊军洋")
    rows = [dict(master_id=f"M{i + 1:09d}", seq=i + 1, status="ACTIVE", customer_type="PERSON",
                 name=surnames[i % 10] + given[(i // 10) % 10] + given[(i // 100) % 10],
                 primary_mobile=f"13{int(x):09d}", address=f"广东省广州市天河区中山路{i % 999}号",
                 marketing_consent=bool(i % 3), record_count=1, created_at=now, updated_at=now)
            for i, x in enumerate(rng.integers(0, 10 ** 9, n))]
    with engine.begin() as c:
        for i in range(0, n, 10_000):
            c.execute(insert(master_customer), rows[i:i + 10_000])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--masters", type=int, default=100_000)
    ap.add_argument("--change", type=float, default=0.01)
    a = ap.parse_args()
    from sqlalchemy import select, update

    from dealersync.connectors.crm import CrmClient, CrmSettings
    from dealersync.services import crm_sync
    from dealersync.services.followups import Rules
    from dealersync.sandbox.crm import create_app
    from dealersync.store.db import make_engine, upgrade
    from dealersync.store.tables import master_customer
    from dealersync.sandbox.runner import serving
    with tempfile.TemporaryDirectory() as d:
        engine = make_engine(f"sqlite:///{d}/bench.db")
        upgrade(engine)
        seed_masters(engine, a.masters)
        rows = []
        with serving(create_app(Path(d) / "crm.db", seed_leads=0)) as url:
            client = CrmClient(CrmSettings(url=url + "/crm/v1", token="sandbox-token"))
            for label in ("initial", f"delta {a.change:.0%}", "again (no change)"):
                if label.startswith("delta"):
                    with engine.begin() as c:
                        ids = c.execute(select(master_customer.c.master_id)).scalars().all()
                        step = max(1, int(1 / a.change))
                        c.execute(update(master_customer).where(master_customer.c.master_id.in_(ids[::step]))
                                  .values(address="广州市海珠区新港东路1号"))
                before = client.requests_sent
                t0 = time.perf_counter()
                out = crm_sync.push_contacts(engine, client, date.today(), Rules())
                secs = time.perf_counter() - t0
                rows.append((label, out["considered"], out["sent"], client.requests_sent - before, secs))
    print(f"\n| push | masters considered | records sent | requests | seconds | records sent/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, considered, sent, reqs, secs in rows:
        print(f"| {label} | {considered:,} | {sent:,} | {reqs:,} | {secs:.1f} | {sent / secs if sent else 0:,.0f} |")


if __name__ == "__main__":
    main()
