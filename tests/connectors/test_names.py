"""Names and paths (issue #16, item 4): drop folders never follow a symlink out of the folder; local and
remote (SFTP, a real sshd) names with control characters or separators are refused with a message naming
them escaped: no forged log line, no local file with a newline in its name."""
from __future__ import annotations

import logging
import os
import unicodedata

import pytest
from hypothesis import given, strategies as st

from dealersync.cli.main import main
from dealersync.errors import BadSourceData
from dealersync.names import check_name, unsafe_reason
from dealersync.services.ingest import expand_paths, pending_files
from dealersync.store.db import make_engine, upgrade
from tests.connectors.test_sftp import conn, sshd  # noqa: F401  (fixture)
from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust

FORGED = "GZ0012_RECALL_20261103.csv\n2026-11-30 04:00:00 ERROR dealersync: forged line x.csv"


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_remote_name_with_a_newline_is_refused_and_never_written(sshd, tmp_path, caplog):  # noqa: F811
    sshd.write_remote("outbound/NL/" + FORGED, b"a,b\n")
    sshd.write_remote("outbound/NL/GZ0012_RECALL_20261104.csv", b"a,b\n")
    with caplog.at_level(logging.WARNING):
        with conn(sshd).session() as s:
            files = s.list(s.remote("outbound/NL"), ["GZ0012_RECALL_*.csv"])
            assert [f.name for f in files] == ["GZ0012_RECALL_20261104.csv"]
            for f in files:
                s.download(f, tmp_path / "inbox")
    assert [p.name for p in (tmp_path / "inbox").iterdir()] == ["GZ0012_RECALL_20261104.csv"]
    refused = [m for m in _messages(caplog) if "refusing" in m]
    assert refused and all("\n" not in m for m in _messages(caplog))
    assert "\\n2026-11-30 04:00:00 ERROR" in refused[0]              # named, escaped


@given(st.text(min_size=1, max_size=30))
def test_any_name_with_a_control_character_or_separator_is_refused(name):
    bad = any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for c in name) \
        or "/" in name or "\\" in name or ".." in name or name in (".", "..")
    assert (unsafe_reason(name) is not None) == bad
    if bad:
        with pytest.raises(BadSourceData) as e:
            check_name(name)
        assert not any(unicodedata.category(c) == "Cc" for c in str(e.value))


@given(st.text(alphabet=st.sampled_from("abcXYZ019_-.客户导出 "), min_size=1, max_size=30))
def test_ordinary_names_pass(name):
    if ".." not in name and name.strip(".") != "":
        assert check_name(name) == name


@pytest.fixture
def drop(tmp_path):
    d = tmp_path / "drop"
    d.mkdir()
    other = tmp_path / "other_dealer"
    other.mkdir()
    good = d / "GZ0012_CUSTOMER_20261103.csv"
    good.write_bytes(csv_bytes(CUST_A, [cust()]))
    (other / "SH0099_CUSTOMER_20261103.csv").write_bytes(csv_bytes(CUST_A, [cust("C9")]))
    os.symlink(other / "SH0099_CUSTOMER_20261103.csv", d / "GZ0012_CUSTOMER_20261104.csv")   # another folder's export
    os.symlink("/etc/passwd", d / "GZ0012_CUSTOMER_20261105.csv")
    os.symlink(good, d / "GZ0012_CUSTOMER_20261106.csv")                                      # inside: fine
    (d / "GZ0012_CUSTOMER_20261107\nforged.csv").write_bytes(csv_bytes(CUST_A, [cust("C7")]))
    return d


def test_drop_folder_symlinks_out_and_control_characters_are_refused(drop, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        got = [p.name for p in expand_paths([drop])]
    assert got == ["GZ0012_CUSTOMER_20261103.csv", "GZ0012_CUSTOMER_20261106.csv"]
    msgs = _messages(caplog)
    assert sum("symbolic link leading out" in m for m in msgs) == 2
    assert any("refusing" in m and "20261107\\nforged" in m for m in msgs)
    assert all("\n" not in m for m in msgs)
    eng = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(eng)
    assert [p.name for p in pending_files(eng, [drop], stable_seconds=0)] == got
    eng.dispose()


def test_cli_ingest_of_a_drop_folder_never_opens_what_a_symlink_points_out_to(drop, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    main(["ingest", str(drop), "--json"])
    out, err = capsys.readouterr()
    assert "20261104" not in out and "20261105" not in out and "passwd" not in out
    assert main(["ingest", str(drop / "GZ0012_CUSTOMER_20261107\nforged.csv")]) == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "\nforged" not in err


def test_a_symlink_named_directly_is_refused_when_it_leads_out_of_its_folder(drop, tmp_path, monkeypatch, capsys):
    """Found by a fresh review: ``dealersync ingest drop/LINK.csv`` loaded another folder's export."""
    with pytest.raises(BadSourceData, match="symbolic link leading out"):
        expand_paths([drop / "GZ0012_CUSTOMER_20261104.csv"])
    assert [p.name for p in expand_paths([drop / "GZ0012_CUSTOMER_20261106.csv"])] == ["GZ0012_CUSTOMER_20261106.csv"]
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    assert main(["ingest", str(drop / "GZ0012_CUSTOMER_20261105.csv")]) == 2      # the link to /etc/passwd
    assert "symbolic link leading out" in capsys.readouterr().err
