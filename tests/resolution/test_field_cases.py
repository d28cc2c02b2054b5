"""The field cases of ``shared/cases/matching`` through ``dealersync resolve-file``: records cut from
customer data nobody on the team generated, with the right answers (README of the cases)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from dealersync.cli.main import main

CASES = Path(os.environ.get("DEALERSYNC_CASES", "/work/shared/cases")) / "matching"
pytestmark = pytest.mark.skipif(not CASES.is_dir() and os.environ.get("CI") != "true",
                                reason="shared field cases not on this machine")


def resolve(tmp_path, frame: pd.DataFrame) -> pd.Series:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(src, index=False)
    assert main(["resolve-file", str(src), "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (got["source_id"] == frame["source_id"]).all()
    return got["master_id"]


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(CASES / name, dtype=str, keep_default_na=False)


def test_10b_same_person_in_a_file_of_two_rows_is_one_master(tmp_path):
    masters = resolve(tmp_path, read("10b-resolve-same-person-two-rows.csv"))
    assert masters.nunique() == 1


def test_11_ids_excel_destroyed_are_no_evidence_four_masters(tmp_path):
    masters = resolve(tmp_path, read("11-resolve-excel-destroyed-ids.csv"))
    assert masters.nunique() == 4


def wrong_groups(df: pd.DataFrame, masters) -> list[str]:
    """The groups of ``unseen-dealer-groups.csv`` resolved wrongly by ``masters`` (one per row): a
    person (the group, and for households the entity named in ``expected``) in several masters, a
    master holding several people, or a master spanning two groups (``"spans groups"``)."""
    masters = pd.Series(list(masters), index=df.index)
    person = df["group"] + df["expected"].str.extract(r"\((entity \d+)\)")[0].fillna("")
    wrong = []
    for g, grp in pd.DataFrame({"group": df["group"], "person": person, "master": masters}).groupby("group"):
        per_person = grp.groupby("person")["master"].nunique()
        per_master = grp.groupby("master")["person"].nunique()
        if (per_person > 1).any() or (per_master > 1).any():
            wrong.append(g)
    if not (pd.DataFrame({"g": df["group"], "m": masters}).groupby("m")["g"].nunique() == 1).all():
        wrong.append("spans groups")
    return wrong


def test_unseen_dealer_groups_one_master_per_person(tmp_path):
    df = read("unseen-dealer-groups.csv")
    masters = resolve(tmp_path, df.drop(columns=["group", "expected"]))
    assert not wrong_groups(df, masters), f"groups resolved wrongly: {wrong_groups(df, masters)}"
