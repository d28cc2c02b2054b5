"""The ``dealersync`` command line, run in-process against a temporary data folder."""
from __future__ import annotations

import json

import pytest

from dealersync.cli.main import main
from tests.dealersync.test_ingest_dirt import CUST_A, csv_bytes, cust, write


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def test_ingest_json_one_object_per_file(tmp_path, capsys):
    a = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(), cust("C2", mobile="1")]))
    b = write(tmp_path, "GZ0012_CUSTOMER_20261104.csv", csv_bytes(CUST_A, [cust("C3")]))
    assert main(["ingest", str(a), str(b), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["file"] for o in out] == [a.name, b.name]
    for key in ("file", "feed", "status", "rows_read", "rows_loaded", "rows_quarantined", "rows_superseded",
                "value_issues"):
        assert key in out[0]
    assert (out[0]["rows_read"], out[0]["value_issues"], out[0]["status"]) == (2, 1, "loaded")
    assert main(["ingest", str(a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "skipped"


def test_missing_column_exits_2_with_one_line_naming_file_row_column(tmp_path, capsys):
    header = [h for h in CUST_A if h != "客户编号"]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(header, [cust()[1:]]))
    assert main(["ingest", str(p)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1
    assert p.name in err[0] and "row 1" in err[0] and "客户编号" in err[0]


def test_unknown_feed_exits_2(tmp_path, capsys):
    p = write(tmp_path, "export.csv", csv_bytes(CUST_A, [cust()]))
    assert main(["ingest", str(p)]) == 2
    assert "give --feed" in capsys.readouterr().err
    assert main(["ingest", str(p)]) == 2                      # reported again, from the ledger
    assert "rejected before" in capsys.readouterr().err
    assert main(["ingest", str(p), "--feed", "customers", "--dealer", "gz0099", "--json"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert (o["feed"], o["dealer"], o["rows_loaded"]) == ("customers", "GZ0099", 1)
    from sqlalchemy import select
    from dealersync.config import get_settings
    from dealersync.store.db import make_engine
    from dealersync.store.tables import ingest_file
    with make_engine(get_settings().effective_database_url).connect() as c:
        assert [r.status for r in c.execute(select(ingest_file.c.status))] == ["LOADED"]  # one ledger row


def test_quarantine_list(tmp_path, capsys):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(), cust(cid="")]))
    main(["ingest", str(p), "--json"])
    capsys.readouterr()
    assert main(["quarantine", "list", "--file", p.name, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["row_number"], r["column_name"], r["reason_code"]) for r in rows] == [(3, "customer_id", "MISSING_REQUIRED")]
    assert main(["quarantine", "list"]) == 0
    assert "MISSING_REQUIRED" in capsys.readouterr().out


def test_sample_is_deterministic_with_ground_truth(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "a"), "--rows", "50", "--seed", "5"]) == 0
    assert main(["sample", "--out", str(tmp_path / "b"), "--rows", "50", "--seed", "5"]) == 0
    a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(a) == 8 and any("_truth_" in n for n in a) and any("_STOCK_" in n for n in a)   # 7 feeds + truth
    for n in a:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    truth = (tmp_path / "a" / next(n for n in a if "_truth_" in n)).read_text(encoding="utf-8").splitlines()
    assert truth[0] == "source,source_id,person_id" and len(truth) > 50
    assert main(["sample", "--out", str(tmp_path / "c"), "--rows", "50", "--profile", "dms_b"]) == 0
    assert any(p.suffix == ".xlsx" for p in (tmp_path / "c").iterdir())


def test_db_upgrade(capsys, data_dir):
    assert main(["db", "upgrade"]) == 0
    assert (data_dir / "dealersync.db").exists()
    assert main(["db", "upgrade"]) == 0


def test_custom_profile_from_a_file_without_code(tmp_path, monkeypatch, capsys):
    (tmp_path / "profiles.toml").write_text('''
[dms_c]
extends = "dms_a"
encoding = "utf-8"
date_formats = ["%d.%m.%Y"]
[dms_c.columns.customers]
customer_id = ["Kunden-Nr", "客户ID"]
name = "Name"
birthday = "Geburtstag"
customer_type = "Typ"
[dms_c.values.customer_type]
"私人客户" = "PERSON"
"Firma" = "ORGANISATION"
''', encoding="utf-8")
    monkeypatch.setenv("DEALERSYNC_PROFILE_FILES", str(tmp_path / "profiles.toml"))
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
              csv_bytes(["客户ID", "Name", "Typ", "Geburtstag", "手机"],
                        [["K1", "张伟", "私人客户", "31.12.1949", "13812345678"], ["K2", "某公司", "Firma", "", ""]], "utf-8"))
    assert main(["ingest", str(p), "--json"]) == 0
    o = json.loads(capsys.readouterr().out)
    assert (o["profile"], o["rows_loaded"], o["value_issues"]) == ("dms_c", 2, 0)
    from sqlalchemy import select
    from dealersync.config import get_settings
    from dealersync.store.db import make_engine
    from dealersync.store.tables import FEED_TABLES
    t = FEED_TABLES["customers"]
    with make_engine(get_settings().effective_database_url).connect() as c:
        got = c.execute(select(t.c.customer_id, t.c.customer_type, t.c.birthday, t.c.mobile).order_by(t.c.load_id, t.c.source_row)).all()
    assert [(r[0], r[1], str(r[2])) for r in got] == [("K1", "PERSON", "1949-12-31"), ("K2", "ORGANISATION", "None")]


def test_bad_profile_file_is_a_clear_configuration_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "p.toml").write_text('[x]\n[x.columns.customers]\nnot_a_column = "A"\n', encoding="utf-8")
    monkeypatch.setenv("DEALERSYNC_PROFILE_FILES", str(tmp_path / "p.toml"))
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust()]))
    assert main(["ingest", str(p)]) == 2
    assert "not_a_column" in capsys.readouterr().err
