"""HTTP client limits benchmark: hostile loopback servers against the CRM client with the default
settings (32 MiB answer limit, 180 s deadline) or the ones given. Prints, per case, the outcome, the
seconds the call took, the peak Python allocation (tracemalloc) and the growth of the process's peak
RSS. Issue #15's figure to beat: a 300 MB body used 1.16 GB.

    .venv/bin/python bench/http_limits.py [--mb 300] [--deadline 5] [--limit-mb 32]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from dealersync.connectors.crm import CrmClient, CrmSettings
    from dealersync.connectors.http import RetryPolicy
    from tests.connectors.hostile import HostileServer, huge, trickle

    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--deadline", type=float, default=5.0)
    ap.add_argument("--limit-mb", type=int, default=32)
    a = ap.parse_args()
    policy = RetryPolicy(attempts=2, base=0.01, deadline=a.deadline, max_body_bytes=a.limit_mb * 1024 * 1024)
    cases = [(f"{a.mb} MB body, no Content-Length", huge(a.mb * 1024 * 1024)),
             (f"{a.mb} MB body, declared", huge(a.mb * 1024 * 1024, declare=True)),
             ("1 byte every 0.5 s", trickle(0.5)),
             ("headers 1 byte every 0.5 s", trickle(0.5, headers_too=True))]
    print(f"{'case':34} {'outcome':18} {'seconds':>8} {'peak MB':>8} {'RSS +MB':>8}")
    for label, route in cases:
        with HostileServer({"GET /contacts": route}) as s:
            client = CrmClient(CrmSettings(url=s.url, token="bench-token"), policy=policy)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            t0 = time.perf_counter()
            try:
                client.check()
                outcome = "answered"
            except Exception as e:  # noqa: BLE001
                outcome = type(e).__name__
            took = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
        print(f"{label:34} {outcome:18} {took:8.2f} {peak / 2**20:8.1f} {rss / 1024:8.1f}")


if __name__ == "__main__":
    main()
