"""SFTP pull benchmark: 200 files totalling 1 GB over loopback from a real OpenSSH sshd,
dealersync's connector against OpenSSH's own ``sftp`` client in the same run.

    .venv/bin/python bench/sftp.py [--files 200] [--mb 1024]

Needs root (the sshd fixture creates the local user ``dsftp``) and Debian's openssh-server.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mb", type=int, default=1024, help="total size in MB")
    a = ap.parse_args()

    from dealersync.connectors.sftp import SftpConnector, SftpSettings
    from dealersync.services.sftp_jobs import pull
    from dealersync.store.db import make_engine, upgrade
    from dealersync.sandbox.sshd import USER, start_sshd, stop_sshd

    sshd = start_sshd()
    work = Path(tempfile.mkdtemp(prefix="dealersync-sftp-bench-"))
    try:
        size = a.mb * 1024 * 1024 // a.files
        block = os.urandom(size)
        for i in range(a.files):
            sshd.write_remote(f"outbound/GZ0012/GZ0012_RECALL_20261103_{i:03d}.csv", block[i:] + block[:i])
        total = size * a.files
        for p in (sshd.root / "outbound/GZ0012").iterdir():  # warm the page cache for both clients
            p.read_bytes()

        out_ssh = work / "openssh"
        out_ssh.mkdir()
        batch = work / "batch"
        batch.write_text(f"lcd {out_ssh}\ncd {sshd.root}/outbound/GZ0012\nget *\n")
        t0 = time.perf_counter()
        subprocess.run(["sftp", "-q", "-b", str(batch), "-i", str(sshd.user_key), "-P", str(sshd.port),
                        "-o", f"UserKnownHostsFile={sshd.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                        f"{USER}@127.0.0.1"], check=True, capture_output=True)
        t_ssh = time.perf_counter() - t0

        engine = make_engine(f"sqlite:///{work / 'b.db'}")
        upgrade(engine)
        conn = SftpConnector(SftpSettings(host="127.0.0.1", port=sshd.port, user=USER, known_hosts=sshd.known_hosts,
                                          key_file=sshd.user_key, remote_root=str(sshd.root)))
        t0 = time.perf_counter()
        got = pull(engine, conn, dealer="GZ0012", local_dir=work / "dealersync", stable_seconds=0, ingest=False)
        t_ds = time.perf_counter() - t0
        assert len(got) == a.files and sum(r["size"] for r in got) == total
        assert sum(p.stat().st_size for p in out_ssh.iterdir()) == total

        print(f"\n{'client':28s} {'files':>6s} {'MB':>7s} {'seconds':>8s} {'MB/s':>8s} {'vs OpenSSH':>10s}")
        for name, t in [("OpenSSH sftp (get *)", t_ssh), ("dealersync pull (ledger)", t_ds)]:
            print(f"{name:28s} {a.files:6d} {total / 2**20:7.0f} {t:8.1f} {total / 2**20 / t:8.1f} {t_ssh / t:10.2f}")
    finally:
        stop_sshd(sshd)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
