"""One clock (#14 item 3): every stamp the product writes is the dealer's time (naive Asia/Shanghai),
whatever zone the host runs in, so a purge cut-off (a Shanghai midnight), a stale-claim timeout and a
row's ``ingested_at`` compare on one clock."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest


@pytest.mark.parametrize("tz", ["UTC", "XXX+24", "America/Los_Angeles"])
def test_stamps_are_the_dealers_time_whatever_the_hosts_zone(tmp_path, tz):
    code = ("from dealersync.store.db import make_engine, upgrade\n"
            "from dealersync.store import ledger\n"
            "from dealersync import clock\n"
            "print(ledger.now().isoformat(), clock.now().isoformat(), clock.today().isoformat())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"TZ": tz, "PATH": "/usr/bin:/bin"}, check=True).stdout.split()
    shanghai = datetime.now(timezone(timedelta(hours=8))).replace(tzinfo=None)
    for stamp in out[:2]:
        assert abs(datetime.fromisoformat(stamp) - shanghai) < timedelta(minutes=2), (tz, stamp)
    assert out[2] == datetime.fromisoformat(out[1]).date().isoformat()
