"""``dealersync resolve-file``: one row out per row in, precision on generated data, clear errors."""
from __future__ import annotations

import pandas as pd

from dealersync.cli.main import main
from dealersync.resolution import synth
from dealersync.resolution.resolve import pairwise_metrics


def test_resolve_file_one_row_per_input_row_and_precise(tmp_path, capsys):
    df = synth.generate(3000, seed=5)
    src = tmp_path / "in.csv"
    df.drop(columns=["truth", "household", "kind"]).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["resolve-file", str(src), "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype=str)
    assert list(got.columns) == ["source", "source_id", "master_id"]
    assert len(got) == len(df) and (got["source_id"] == df["source_id"]).all()
    m = pairwise_metrics(got["master_id"], df["truth"])
    assert m["precision"] >= 0.998 and m["recall"] >= 0.9
    assert "master records" in capsys.readouterr().err


def test_resolve_file_minimal_columns_and_duplicates(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("source,source_id,name,mobile\nCRM,1,张伟,13812345678\nDMS,9,張偉,+86 138 1234 5678\n"
                   "CRM,1,张伟,13812345678\nCRM,2,李娜,13912345678\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["resolve-file", str(src), "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype=str)
    assert len(got) == 4
    assert got["master_id"][0] == got["master_id"][1] == got["master_id"][2] != got["master_id"][3]


def test_resolve_file_bad_input_names_file_row_and_column(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("source,source_id,name\nCRM,1,张伟\nCRM,,李娜\n", encoding="utf-8")
    assert main(["resolve-file", str(src), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "in.csv" in err and "row 3" in err and "source_id" in err
    assert not (tmp_path / "o.csv").exists()


def test_resolve_file_writes_text_never_a_formula(tmp_path):
    """#16 item 3: an id typed as a formula comes back as text (OWASP: a leading quote)."""
    src = tmp_path / "in.csv"
    src.write_text('source,source_id,name\nCRM,"=HYPERLINK(""http://x"",""点击"")",张伟\nCRM,@SUM(A1),李娜\nCRM,-5,王芳\n',
                   encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["resolve-file", str(src), "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["source_id"].tolist() == ["'=HYPERLINK(\"http://x\",\"点击\")", "'@SUM(A1)", "'-5"]
