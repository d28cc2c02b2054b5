"""Uploads to a plain SFTP v3 server (paramiko's ``SFTPServer`` on loopback, ``sandbox/sftp_v3.py``):
no ``posix-rename@openssh.com``, a RENAME that cannot overwrite. The previous report is removed only
once the new one is in place, a failed rename puts it back, no ``.part`` is ever left (issue #17 item 8).
The same uploads against OpenSSH are in ``test_sftp.py``."""
from __future__ import annotations

import os

import pytest

from dealersync.connectors.sftp import SftpConnector, SftpSettings
from dealersync.errors import TransientError
from dealersync.sandbox.sftp_v3 import start_sftp_v3
from dealersync.services import sftp_jobs
from dealersync.store import repository as repo

NAME = "GZ0012_CSIMONTH_202610.xlsx"


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "remote"
    root.mkdir()
    s = start_sftp_v3(root)
    yield s
    s.close()


def connector(server) -> SftpConnector:
    return SftpConnector(SftpSettings(host="127.0.0.1", port=server.port, user=server.user, password=server.password,
                                      known_hosts=server.known_hosts, remote_root="/", connect_timeout=5,
                                      auth_timeout=5, read_timeout=10))


def report(tmp_path, data: bytes):
    p = tmp_path / "out" / NAME
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return p


def listing(server) -> list[str]:
    return sorted(os.listdir(server.root / "inbound" / "GZ0012"))


def test_the_server_offers_no_posix_rename_and_its_rename_does_not_overwrite(server):
    (server.root / "a").write_bytes(b"a")
    (server.root / "b").write_bytes(b"b")
    with connector(server).session() as s:
        assert s.has_posix_rename is False
        with pytest.raises(OSError):
            s.sftp.posix_rename("/a", "/b")
        with pytest.raises(OSError):
            s.sftp.rename("/a", "/b")
    assert (server.root / "b").read_bytes() == b"b"


def test_first_upload_is_one_rename_of_the_part_file(server, tmp_path):
    new = os.urandom(200_000)
    with connector(server).session() as s:
        final = s.upload(report(tmp_path, new), s.remote("inbound/GZ0012"))
    assert final == f"/inbound/GZ0012/{NAME}" and listing(server) == [NAME]
    assert (server.root / "inbound/GZ0012" / NAME).read_bytes() == new
    assert server.renames == [(f"/inbound/GZ0012/.{NAME}.part", final)]


def test_a_changed_report_replaces_the_old_one_only_once_it_is_in_place(server, tmp_path):
    old, new = b"PK old " + os.urandom(50_000), b"PK new " + os.urandom(80_000)
    with connector(server).session() as s:
        s.upload(report(tmp_path, old), s.remote("inbound/GZ0012"))
        server.renames.clear()
        final = s.upload(report(tmp_path, new), s.remote("inbound/GZ0012"))
    assert listing(server) == [NAME] and (server.root / "inbound/GZ0012" / NAME).read_bytes() == new
    (aside_from, aside), (part, into) = server.renames
    assert aside_from == final and os.path.basename(aside).startswith(f".{NAME}.old-")
    assert part == f"/inbound/GZ0012/.{NAME}.part" and into == final


def test_a_failed_rename_puts_the_old_report_back_and_leaves_no_part(server, tmp_path):
    old, new = b"PK old " + os.urandom(50_000), b"PK new " + os.urandom(80_000)
    with connector(server).session() as s:
        s.upload(report(tmp_path, old), s.remote("inbound/GZ0012"))
        server.fail_renames_to.add(NAME)          # the .part -> report rename is refused once
        with pytest.raises(TransientError, match="previous file, if any, is unchanged") as e:
            s.upload(report(tmp_path, new), s.remote("inbound/GZ0012"))
    assert NAME in str(e.value)
    assert listing(server) == [NAME] and (server.root / "inbound/GZ0012" / NAME).read_bytes() == old
    final, part = f"/inbound/GZ0012/{NAME}", f"/inbound/GZ0012/.{NAME}.part"
    (a, aside), (b, c), (d, e) = server.renames[-3:]   # aside, the refused one, back
    assert (a, b, c, d, e) == (final, part, final, aside, final)


def test_push_replaces_a_changed_report_on_a_v3_server(server, tmp_path, sqlite_engine):
    c = connector(server)
    first = sftp_jobs.push(sqlite_engine, c, [report(tmp_path, b"PK one")], dealer="GZ0012")
    again = sftp_jobs.push(sqlite_engine, c, [report(tmp_path, b"PK one")], dealer="GZ0012")
    second = sftp_jobs.push(sqlite_engine, c, [report(tmp_path, b"PK two, longer")], dealer="GZ0012")
    assert [r["status"] for r in first + again + second] == ["uploaded", "skipped", "uploaded"]
    assert listing(server) == [NAME] and (server.root / "inbound/GZ0012" / NAME).read_bytes() == b"PK two, longer"
    with sqlite_engine.connect() as conn:
        assert len(repo.transfers(conn, "PUSH")) == 2
