"""Pull and push against a real sshd: stability, ledger, idempotency, faults."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from dealersync.retry import Backoff
from dealersync.services.sftp_jobs import pull, push, stable_files
from dealersync.store import repository as repo
from dealersync.sandbox.sshd import CuttingProxy, start_sshd, stop_sshd
from tests.connectors.test_sftp import conn

RECALL = ("campaign_code,campaign_name,vin,start_date,end_date\r\n"
          "RC1,制动软管召回,1M8GDM9AXKP042788,2026-01-01,2026-12-31\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def sshd():
    s = start_sshd()
    yield s
    stop_sshd(s)


def transfers(engine, direction=None):
    with engine.connect() as c:
        return [dict(r) for r in repo.transfers(c, direction)]


def test_pull_ingests_once(sshd, engine, tmp_path):
    sshd.write_remote("outbound/GZ0012/GZ0012_RECALL_20261103.csv", RECALL)
    sshd.write_remote("outbound/GZ0012/GZ0012_LABOROPS_20261103.csv",
                      b"code,description,standard_hours,valid_from\r\nA0101,oil,0.5,2026-01-01\r\n")
    sshd.write_remote("outbound/GZ0012/README.txt", b"not a drop")
    c = conn(sshd)
    first = pull(engine, c, dealer="GZ0012", local_dir=tmp_path / "in", stable_seconds=0)
    assert sorted(r["file"] for r in first) == ["GZ0012_LABOROPS_20261103.csv", "GZ0012_RECALL_20261103.csv"]
    assert all(r["ingest"]["status"] == "loaded" for r in first)
    assert pull(engine, c, dealer="GZ0012", local_dir=tmp_path / "in", stable_seconds=0) == []
    assert len(transfers(engine, "PULL")) == 2
    with engine.connect() as cx:
        assert cx.execute(sa.text("select count(*) from oem_recall")).scalar_one() == 1
    # the partner's files are left where they are
    assert (sshd.root / "outbound/GZ0012/GZ0012_RECALL_20261103.csv").exists()


def test_a_growing_file_is_not_taken_until_stable(sshd, sqlite_engine, tmp_path):
    p = sshd.write_remote("outbound/GZ0099/GZ0099_RECALL_20261103.csv", RECALL)
    stop = threading.Event()

    def grow():
        i = 0
        while not stop.is_set():
            with open(p, "ab") as f:
                f.write(f"RC{i},x,1M8GDM9AXKP042788,2026-01-01,\r\n".encode())
            i += 1
            time.sleep(0.2)
    t = threading.Thread(target=grow)
    t.start()
    try:
        with conn(sshd).session() as s:
            got = stable_files(s, s.remote("outbound/GZ0099"), ["GZ0099_RECALL_*.csv"], stable_seconds=1.2)
        assert got == []
    finally:
        stop.set()
        t.join()
    with conn(sshd).session() as s:
        got = stable_files(s, s.remote("outbound/GZ0099"), ["GZ0099_RECALL_*.csv"], stable_seconds=1.2)
    assert [f.name for f in got] == ["GZ0099_RECALL_20261103.csv"]
    assert pull(sqlite_engine, conn(sshd), dealer="GZ0099", local_dir=tmp_path, stable_seconds=0.5)[0]["size"] == p.stat().st_size


def test_done_marker_required(sshd, sqlite_engine, tmp_path):
    sshd.write_remote("outbound/GZ0077/GZ0077_RECALL_20261103.csv", RECALL)
    assert pull(sqlite_engine, conn(sshd), dealer="GZ0077", local_dir=tmp_path, stable_seconds=0,
                require_done_marker=True) == []
    sshd.write_remote("outbound/GZ0077/GZ0077_RECALL_20261103.csv.done", b"")
    got = pull(sqlite_engine, conn(sshd), dealer="GZ0077", local_dir=tmp_path, stable_seconds=0, require_done_marker=True)
    assert [r["file"] for r in got] == ["GZ0077_RECALL_20261103.csv"]


def test_full_disk_cleans_up_and_records_nothing(sshd, sqlite_engine, tmp_path):
    sshd.write_remote("outbound/GZ0055/GZ0055_DELIVERY_20261103.csv", os.urandom(2_000_000))
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(small)]).returncode != 0:
        pytest.fail("cannot mount a small tmpfs to fill the disk (the test needs root)")
    try:
        with pytest.raises(OSError):
            pull(sqlite_engine, conn(sshd), dealer="GZ0055", local_dir=small, stable_seconds=0)
        assert list(small.iterdir()) == []
        assert transfers(sqlite_engine) == []
        with sqlite_engine.connect() as c:
            assert repo.ledger(c) == []
    finally:
        subprocess.run(["umount", str(small)])


def test_push_uploads_once_with_receipts(sshd, engine, tmp_path):
    report = tmp_path / "GZ0012_SALESDAY_20261103.csv"
    report.write_text("date,units\r\n2026-11-03,4\r\n", encoding="utf-8")
    c = conn(sshd)
    first = push(engine, c, [report], dealer="GZ0012")
    again = push(engine, c, [report], dealer="GZ0012")
    assert [r["status"] for r in first + again] == ["uploaded", "skipped"]
    assert (sshd.root / "inbound/GZ0012/GZ0012_SALESDAY_20261103.csv").read_bytes() == report.read_bytes()
    report.write_text("date,units\r\n2026-11-03,5\r\n", encoding="utf-8")  # corrected: sent again
    assert push(engine, c, [report], dealer="GZ0012")[0]["status"] == "uploaded"
    assert len(transfers(engine, "PUSH")) == 2
    assert (sshd.root / "inbound/GZ0012/GZ0012_SALESDAY_20261103.csv").read_bytes() == report.read_bytes()


def test_connection_killed_mid_download_retry_completes_once(sshd, sqlite_engine, tmp_path):
    body = RECALL + b"".join(f"RC{i},x,1M8GDM9AXKP042788,2026-01-01,\r\n".encode() for i in range(200_000))
    sshd.write_remote("outbound/GZ0033/GZ0033_RECALL_20261103.csv", body)
    proxy = CuttingProxy(sshd.port, after_bytes=1_500_000, cut=(2,))  # 1: listing, 2: first download
    try:
        c = conn(sshd, port=proxy.port)
        c.settings.known_hosts.write_text(c.settings.known_hosts.read_text()
                                          + f"[127.0.0.1]:{proxy.port} {sshd.host_pub}\n")
        got = pull(sqlite_engine, c, dealer="GZ0033", local_dir=tmp_path / "in", stable_seconds=0)
    finally:
        proxy.close()
    assert proxy.connections == 3
    assert [r["file"] for r in got] == ["GZ0033_RECALL_20261103.csv"]
    assert (tmp_path / "in" / "GZ0033_RECALL_20261103.csv").read_bytes() == body
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["GZ0033_RECALL_20261103.csv"]
    assert len(transfers(sqlite_engine, "PULL")) == 1
    with sqlite_engine.connect() as cx:
        assert [r["status"] for r in repo.ledger(cx)] == ["LOADED"]


def test_dropped_downloads_are_retried_by_the_one_jittered_policy(sshd, sqlite_engine, tmp_path):
    """Two cut downloads: the waits come from ``dealersync.retry`` (jittered within base * 2**n), not a
    loop of its own with fixed 1 s, 2 s waits (issue #14 review)."""
    body = RECALL + b"".join(f"RC{i},x,1M8GDM9AXKP042788,2026-01-01,\r\n".encode() for i in range(200_000))
    sshd.write_remote("outbound/GZ0034/GZ0034_RECALL_20261103.csv", body)
    proxy = CuttingProxy(sshd.port, after_bytes=1_500_000, cut=(2, 3))  # 1: listing, 2 and 3: downloads
    slept = []
    try:
        c = conn(sshd, port=proxy.port)
        c.settings.known_hosts.write_text(c.settings.known_hosts.read_text()
                                          + f"[127.0.0.1]:{proxy.port} {sshd.host_pub}\n")
        got = pull(sqlite_engine, c, dealer="GZ0034", local_dir=tmp_path / "in", stable_seconds=0,
                   retry=Backoff(attempts=3, base=0.05, cap=0.05, deadline=60.0), sleep=slept.append)
    finally:
        proxy.close()
    assert proxy.connections == 4
    assert (tmp_path / "in" / "GZ0034_RECALL_20261103.csv").read_bytes() == body
    assert len(slept) == 2 and all(0 <= w <= 0.05 for w in slept)
    assert len(transfers(sqlite_engine, "PULL")) == 1


def test_cli_sftp_check_pull_push(sshd, tmp_path, monkeypatch, capsys):
    import json

    from dealersync.cli.main import main
    monkeypatch.chdir(tmp_path)
    env = {"DATA_DIR": str(tmp_path / "data"), "SFTP_HOST": "127.0.0.1", "SFTP_PORT": str(sshd.port),
           "SFTP_USER": "dsftp", "SFTP_KEY_FILE": str(sshd.user_key), "SFTP_KNOWN_HOSTS": str(sshd.known_hosts),
           "SFTP_REMOTE_ROOT": str(sshd.root), "SFTP_STABLE_SECONDS": "0", "DEALER_CODE": "GZ0044"}
    for k, v in env.items():
        monkeypatch.setenv(f"DEALERSYNC_{k}", v)
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    assert main(["sftp", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["host_key"].startswith("ssh-ed25519")
    sshd.write_remote("outbound/GZ0044/GZ0044_RECALL_20261103.csv", RECALL)
    assert main(["sftp", "pull", "--json"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(o["file"], o["ingest"]["rows_loaded"]) for o in out] == [("GZ0044_RECALL_20261103.csv", 1)]
    (tmp_path / "data" / "outbox").mkdir(parents=True)
    (tmp_path / "data" / "outbox" / "GZ0044_SALESDAY_20261103.csv").write_text("a\r\n1\r\n")
    assert main(["sftp", "push", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "uploaded"
    bad = tmp_path / "kh"
    bad.write_text("")
    monkeypatch.setenv("DEALERSYNC_SFTP_KNOWN_HOSTS", str(bad))
    assert main(["sftp", "check"]) == 2
    assert "not in" in capsys.readouterr().err


def test_dms_exports_on_sftp_go_through_the_same_ingestion(sshd, tmp_path, monkeypatch):
    from dealersync.config import Settings
    from dealersync.services.sftp_jobs import pull_all
    from dealersync.store.db import make_engine, upgrade
    from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust
    sshd.write_remote("dms/GZ0066/GZ0066_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(), cust(cid="")]))
    sshd.write_remote("dms/GZ0066/GZ0066_RO_20261103.csv", b"not yet complete")  # no .done marker yet
    prof = tmp_path / "p.toml"
    prof.write_text('[dms_x]\nextends = "dms_a"\nrequire_done_marker = true\n', encoding="utf-8")
    sshd.write_remote("dms/GZ0066/GZ0066_CUSTOMER_20261103.csv.done", b"")
    s = Settings(data_dir=tmp_path / "data", dealer_code="GZ0066", sftp_host="127.0.0.1", sftp_port=sshd.port,
                 sftp_user="dsftp", sftp_key_file=sshd.user_key, sftp_known_hosts=sshd.known_hosts,
                 sftp_remote_root=str(sshd.root), sftp_stable_seconds=0, sftp_dms_folder=f"{sshd.root}/dms/GZ0066",
                 profile="dms_x", profile_files=[prof])
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    from dealersync.connectors.sftp import SftpConnector, SftpSettings
    got = pull_all(engine, SftpConnector(SftpSettings.from_settings(s)), s)
    assert [(r["file"], r["ingest"]["rows_loaded"], r["ingest"]["rows_quarantined"]) for r in got] == [
        ("GZ0066_CUSTOMER_20261103.csv", 1, 1)]


def test_a_name_rejection_over_sftp_does_not_block_the_renamed_drop(sshd, engine, tmp_path):
    """Issue #15: a drop rejected for its name (a 7-digit date) was recorded against its content, so
    the partner's correctly named copy was "rejected before" and never loaded."""
    d = "GZ0046" if engine.dialect.name == "sqlite" else "GZ0047"   # the sshd is shared by the module
    sshd.write_remote(f"outbound/{d}/{d}_RECALL_2026113.csv", RECALL)
    c = conn(sshd)
    first = pull(engine, c, dealer=d, local_dir=tmp_path / "in", stable_seconds=0)
    assert [(r["file"], r["ingest"]["status"]) for r in first] == [(f"{d}_RECALL_2026113.csv", "rejected")]
    sshd.write_remote(f"outbound/{d}/{d}_RECALL_20261103.csv", RECALL)   # same bytes, right name
    second = pull(engine, c, dealer=d, local_dir=tmp_path / "in", stable_seconds=0)
    assert [(r["file"], r["ingest"]["status"]) for r in second] == [(f"{d}_RECALL_20261103.csv", "loaded")]
    with engine.connect() as cx:
        assert cx.execute(sa.text("select count(*) from oem_recall")).scalar_one() == 1
        assert sorted(r["status"] for r in repo.ledger(cx)) == ["LOADED", "REJECTED"]


def test_reports_reach_the_inbound_folder_once(sshd, engine, tmp_path):
    """RVWEEK and COMPLAINTMONTH go to /inbound/<dealer>/ only (the portal does not take them); a second
    run of the same period sends nothing, through the report ledger and the transfer ledger."""
    from dealersync.services.reports import periods
    from dealersync.services.reports.run import Target, run_report
    c = conn(sshd)
    target = Target("GZ0012", tmp_path / "reports", None, tmp_path / "outbox",
                    lambda p: push(engine, c, [p], dealer="GZ0012"))
    runs = [run_report(engine, name, period, target) for _ in range(2)
            for name, period in (("rvweek", periods.week("2026-W45")), ("complaints", periods.month("2026-10")))]
    assert [r["upload"]["sent_now"] for r in runs] == [["sftp"], ["sftp"], [], []]
    assert all(r["upload"]["sftp"] == "SENT" and r["upload"]["portal"] == "NO_PORTAL" for r in runs)
    for name in ("GZ0012_RVWEEK_2026W45.xlsx", "GZ0012_COMPLAINTMONTH_202610.xlsx"):
        assert (sshd.root / "inbound/GZ0012" / name).read_bytes() == (tmp_path / "reports" / name).read_bytes()
    assert len(transfers(engine, "PUSH")) == 2
