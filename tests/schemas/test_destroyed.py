"""Destroyed and placeholder identifiers: one recogniser, the same answer in ingestion's checks (both
twins) and in matching's normalisation."""
from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

from dealersync.resolution.normalise import normalise_records
from dealersync.schemas import checks, checks_pl
from dealersync.schemas.destroyed import destroyed

GOOD_ID = "320102200405061629"
CASES = [
    ("id_number", "110105198506151000", True),      # Excel kept 15 digits (and the check digit passes)
    ("id_number", "1.10105198706151E+17", True),
    ("id_number", "1.10105198706151E17", True),
    ("id_number", "111111111111111111", True),
    ("id_number", "123456789012345678", True),
    ("id_number", GOOD_ID, False),
    ("id_number", "42038119920120643X", False),
    ("id_number", "110105850615100", False),        # a first-generation 15-digit ID is not destroyed
    ("mobile", "13800000000", True),
    ("mobile", "11111111111", True),
    ("mobile", "13988888888", True),
    ("mobile", "13800138000", True),
    ("mobile", "13851234567", False),
    ("mobile", "13812345678", False),               # a counting run is also a real number
    ("email", "test@qq.com", True),
    ("email", "123@qq.com", True),
    ("email", "li@example.com", True),
    ("email", "lilan31@gmail.com", False),
    ("vin", "AAAAAAAAAAAAAAAAA", True),
    ("vin", "00000000000000000", True),
    ("vin", "LSVAG2180E2100150", False),
]


@pytest.mark.parametrize("kind,value,expected", CASES, ids=[f"{k}-{v}" for k, v, _ in CASES])
def test_recogniser_table(kind, value, expected):
    assert destroyed([value], kind)[0] == expected
    assert destroyed(pd.Series([value, None], dtype="str"), kind).tolist() == [expected, False]
    assert destroyed(pl.Series([value, None]), kind).tolist() == [expected, False]


def test_ingestion_twins_refuse_destroyed_ids_and_placeholder_mobiles():
    ids = ["110105198506151000", "1.10105198706151E+17", GOOD_ID]
    assert checks.is_id_number(pd.Series(ids, dtype="str")).tolist() == [False, False, True]
    assert checks_pl.is_id_number(pl.Series(ids)).to_list() == [False, False, True]
    mobiles = ["13800000000", "13851234567"]
    assert checks.is_cn_mobile(pd.Series(mobiles, dtype="str")).tolist() == [False, True]
    assert checks_pl.is_cn_mobile(pl.Series(mobiles)).to_list() == [False, True]
    assert checks.explain("id_number", "110105198506151000")[0] == "ID_DESTROYED"
    assert checks.explain("cn_mobile", "+86 138 0000 0000")[0] == "MOBILE_PLACEHOLDER"


def test_the_check_digit_of_a_destroyed_id_passes_by_chance():
    """Why a check digit is not enough: one in eleven zero-filled numbers passes MOD 11-2."""
    s = pd.Series(["110105198506108000"], dtype="str")
    assert checks.resident_id_ok(s).iloc[0] and not checks.is_id_number(s).iloc[0]


def test_matching_takes_no_evidence_from_them():
    df = pd.DataFrame({"source": ["A", "B"], "source_id": ["1", "2"], "name": ["张伟", "张伟"],
                       "mobile": ["13800000000", "13851234567"], "id_number": ["110105198506151000", GOOD_ID],
                       "email": ["test@qq.com", "zw@qq.com"], "vin": ["AAAAAAAAAAAAAAAAA", "LSVAG2180E2100150"]})
    n = normalise_records(df)
    assert n["mobile"].isna().tolist() == [True, False]
    assert n["id_valid"].isna().tolist() == [True, False] and n["id_raw"].isna().tolist() == [True, False]
    assert n["email"].isna().tolist() == [True, False]
    assert n["vin"].isna().tolist() == [True, False]
