"""SFTP connector against a real OpenSSH sshd on loopback (started by the fixture)."""
from __future__ import annotations

import hashlib
import os

import pytest

from dealersync.connectors.sftp import RemoteFile, SftpConnector, SftpSettings, safe_name
from dealersync.errors import BadSourceData, ConfigurationError, TransientError
from dealersync.sandbox.sshd import PASSWORD, USER, CuttingProxy, keygen, start_sshd, stop_sshd


@pytest.fixture(scope="module")
def sshd():
    s = start_sshd()
    yield s
    stop_sshd(s)


def conn(sshd, **kw) -> SftpConnector:
    args = dict(host="127.0.0.1", port=sshd.port, user=USER, known_hosts=sshd.known_hosts, key_file=sshd.user_key,
                remote_root=str(sshd.root), connect_timeout=5, auth_timeout=5, read_timeout=10)
    args.update(kw)
    return SftpConnector(SftpSettings(**args))


def test_constructor_does_no_io(tmp_path):
    c = SftpConnector(SftpSettings(host="203.0.113.1", user="x", known_hosts=tmp_path / "none"))
    assert c.settings.host == "203.0.113.1"  # nothing was contacted


def test_check_with_ed25519_rsa_and_password(sshd):
    info = conn(sshd).check()
    assert info["host_key"].startswith("ssh-ed25519") and info["remote_root"] == str(sshd.root)
    assert conn(sshd, key_file=sshd.user_rsa_key).check()["entries"] >= 0
    assert conn(sshd, key_file=None, password=PASSWORD).check()["user"] == USER


def test_unknown_host_key_is_refused_naming_host_and_fingerprint(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    with pytest.raises(ConfigurationError) as e:
        conn(sshd, known_hosts=kh).check()
    assert "127.0.0.1" in str(e.value) and "ssh-ed25519" in str(e.value) and "not in" in str(e.value)


def test_changed_host_key_is_refused(sshd, tmp_path):
    other = keygen(tmp_path / "other_host")
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(open(f'{other}.pub').read().split()[:2])}\n")
    with pytest.raises(ConfigurationError) as e:
        conn(sshd, known_hosts=kh).check()
    assert "does not match known_hosts" in str(e.value) and "offered ssh-ed25519" in str(e.value)


def test_wrong_credentials_are_a_clear_configuration_error(sshd, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(ConfigurationError, match="authentication failed"):
        conn(sshd, key_file=stranger).check()
    with pytest.raises(ConfigurationError, match="authentication failed"):
        conn(sshd, key_file=None, password="wrong").check()


def test_unreachable_is_transient(sshd, tmp_path):
    from dealersync.sandbox.sshd import free_port
    with pytest.raises(TransientError):
        conn(sshd, port=free_port()).check()


def test_list_and_atomic_download(sshd, tmp_path, caplog):
    data = os.urandom(3_000_000)
    sshd.write_remote("outbound/GZ0012/GZ0012_RECALL_20261103.csv", data)
    sshd.write_remote("outbound/GZ0012/notes.txt", b"x")
    sshd.write_remote("outbound/GZ0012/GZ0012_RECALL_..20261104.csv", b"x")   # refused, with a warning
    with conn(sshd).session() as s:
        files = s.list(s.remote("outbound/GZ0012"), ["GZ0012_RECALL_*.csv"])
        assert [f.name for f in files] == ["GZ0012_RECALL_20261103.csv"] and files[0].size == len(data)
        path, sha = s.download(files[0], tmp_path / "inbox")
    assert path.read_bytes() == data and sha == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["GZ0012_RECALL_20261103.csv"]
    assert "GZ0012_RECALL_..20261104.csv" in caplog.text and "refusing" in caplog.text


def test_connection_cut_mid_download_leaves_nothing_and_retry_completes(sshd, tmp_path):
    data = os.urandom(8_000_000)
    sshd.write_remote("outbound/cut/GZ0012_DELIVERY_20261103.csv", data)
    proxy = CuttingProxy(sshd.port, after_bytes=2_000_000, cut=(1,))
    try:
        c = conn(sshd, port=proxy.port)
        # the proxy forwards to the real sshd; known_hosts names the proxy's port too
        c.settings.known_hosts.write_text(c.settings.known_hosts.read_text()
                                          + f"[127.0.0.1]:{proxy.port} {sshd.host_pub}\n")
        remote = RemoteFile("GZ0012_DELIVERY_20261103.csv", f"{sshd.root}/outbound/cut/GZ0012_DELIVERY_20261103.csv",
                            len(data), 0)
        with pytest.raises(TransientError):
            with c.session() as s:
                s.download(remote, tmp_path / "inbox")
        assert list((tmp_path / "inbox").iterdir()) == []          # no partial file, no temp file
        with c.session() as s:                                       # the retry passes through
            path, sha = s.download(remote, tmp_path / "inbox")
        assert path.read_bytes() == data and sha == hashlib.sha256(data).hexdigest()
    finally:
        proxy.close()


def test_permission_denied_is_clear(sshd, tmp_path):
    sshd.write_remote("outbound/locked/GZ0012_RECALL_20261104.csv", b"secret", mode=0o000)
    with conn(sshd).session() as s:
        f = s.list(s.remote("outbound/locked"), ["*.csv"])[0]
        with pytest.raises(ConfigurationError, match="permission denied"):
            s.download(f, tmp_path / "inbox")
    assert not (tmp_path / "inbox" / ".GZ0012_RECALL_20261104.csv.part").exists()


def test_upload_uses_a_temporary_name_then_renames(sshd, tmp_path):
    report = tmp_path / "GZ0012_CSIMONTH_202610.xlsx"
    report.write_bytes(b"PK" + os.urandom(100_000))
    with conn(sshd).session() as s:
        final = s.upload(report, s.remote("inbound/GZ0012"))
        names = s.sftp.listdir(s.remote("inbound/GZ0012"))
    assert final.endswith("/inbound/GZ0012/GZ0012_CSIMONTH_202610.xlsx") and names == ["GZ0012_CSIMONTH_202610.xlsx"]
    assert (sshd.root / "inbound/GZ0012/GZ0012_CSIMONTH_202610.xlsx").read_bytes() == report.read_bytes()


def test_openssh_replaces_a_changed_report_with_one_posix_rename(sshd, tmp_path):
    report = tmp_path / "GZ0012_CSIMONTH_202611.xlsx"
    with conn(sshd).session() as s:
        assert s.has_posix_rename is True     # advertised in OpenSSH's VERSION packet
        report.write_bytes(b"PK old " + os.urandom(10_000))
        s.upload(report, s.remote("inbound/GZ0013"))
        new = b"PK new " + os.urandom(30_000)
        report.write_bytes(new)
        s.upload(report, s.remote("inbound/GZ0013"))
        names = s.sftp.listdir(s.remote("inbound/GZ0013"))
    assert names == ["GZ0012_CSIMONTH_202611.xlsx"]
    assert (sshd.root / "inbound/GZ0013/GZ0012_CSIMONTH_202611.xlsx").read_bytes() == new


def test_a_failed_upload_leaves_no_part_file_on_openssh(sshd, tmp_path):
    report = tmp_path / "GZ0012_CSIMONTH_202612.xlsx"
    report.write_bytes(b"PK " + os.urandom(10_000))
    with conn(sshd).session() as s:
        s.upload(report, s.remote("inbound/GZ0014"))
        # a folder in the report's place: the part file is written, the rename into place fails
        s.sftp.remove(s.remote("inbound/GZ0014/GZ0012_CSIMONTH_202612.xlsx"))
        s.sftp.mkdir(s.remote("inbound/GZ0014/GZ0012_CSIMONTH_202612.xlsx"))
        s.sftp.mkdir(s.remote("inbound/GZ0014/GZ0012_CSIMONTH_202612.xlsx/x"))
        with pytest.raises(TransientError):
            s.upload(report, s.remote("inbound/GZ0014"))
        names = s.sftp.listdir(s.remote("inbound/GZ0014"))
    assert names == ["GZ0012_CSIMONTH_202612.xlsx"]      # the folder, and no .part beside it


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "a/b.csv", "a\\b.csv", "..", "", "x..csv"])
def test_unsafe_remote_names_are_refused(name):
    with pytest.raises(BadSourceData):
        safe_name(name)
