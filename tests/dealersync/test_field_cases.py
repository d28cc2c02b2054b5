"""The field cases of ``shared/cases/files/`` (issue #17), each loaded as ``shared/cases/README.md`` says,
on SQLite and PostgreSQL; and the kind each stands for, beyond the one file (the ID type chooses the
check, a private-use character in a name is reported, a workbook named .csv is read)."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dealersync.schemas import rules
from dealersync.services.ingest import ingest_file

from .test_ingest_dirt import CUST_A, balanced, csv_bytes, cust, issues, rows, write

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases" / "files"
if not CASES.is_dir():
    CASES = Path("/work/shared/cases/files")


def case(name: str, tmp_path: Path, as_name: str | None = None) -> Path:
    """A copy of the case file (named ``as_name`` when the case's own name carries no feed)."""
    dst = tmp_path / (as_name or name)
    shutil.copyfile(CASES / name, dst)
    return dst


def test_01b_xlsx_dimension_understated_reads_every_row_and_column(engine, tmp_path):
    p = case("01b-xlsx-dimension-understated.xlsx", tmp_path, "GZ0012_CUSTOMER_20261103.xlsx")
    res = balanced(ingest_file(engine, p, profile="dms_b"))
    assert (res.status, res.rows_read, res.rows_loaded) == ("loaded", 3, 3), res
    got = rows(engine, "dms_customer")
    assert [r["customer_id"] for r in got] == ["K2001", "K2002", "K2003"]
    # the last columns too: the declared dimension stops before them
    assert [(r["email"], r["source_channel"], r["marketing_consent"]) for r in got] == [
        ("mx.zhou@example.com", "展厅", True), (None, "网络", False), (None, "电话", None)]
    assert [r["phone"] for r in got] == ["020-83456701", None, "020-83456703"]


def test_03_xlsx_float_artifacts_are_read_at_15_significant_digits(engine, tmp_path):
    p = case("03-xlsx-float-artifact-amounts.xlsx", tmp_path, "GZ0012_RO_20261102.xlsx")
    res = balanced(ingest_file(engine, p, profile="dms_b"))
    assert (res.rows_loaded, res.value_issues) == (3, 0), res
    got = rows(engine, "dms_repair_order")
    assert [tuple(Decimal(str(r[c])) for c in ("labor_amount", "parts_amount", "total_amount")) for r in got] == [
        (Decimal("121"), Decimal("358"), Decimal("479")), (Decimal("200"), Decimal("3480"), Decimal("3680")),
        (Decimal("57.7"), Decimal("0.3"), Decimal("58"))]


def test_05_timestamps_with_fractional_seconds_load(engine, tmp_path):
    p = case("05-ro-timestamp-fraction.csv", tmp_path, "GZ0012_RO_20261102.csv")
    res = balanced(ingest_file(engine, p, profile="dms_a"))
    assert (res.rows_loaded, res.rows_quarantined, res.value_issues) == (3, 0, 0), res
    got = rows(engine, "dms_repair_order")
    assert [str(r["opened_at"])[:19] for r in got] == [
        "2026-11-02 08:31:07", "2026-11-02 09:12:30", "2026-11-02 10:05:09"]
    assert str(got[0]["closed_at"])[:19] == "2026-11-02 16:05:44" and got[2]["closed_at"] is None


def test_06_landlines_keep_the_real_area_code_and_the_extension(engine, tmp_path):
    p = case("06-landline-extension-formats.csv", tmp_path, "GZ0012_CUSTOMER_20261103.csv")
    res = balanced(ingest_file(engine, p, profile="dms_a"))
    assert (res.rows_loaded, res.value_issues) == (5, 0), res
    assert [r["phone"] for r in rows(engine, "dms_customer")] == [
        "010-62345678转8001", "010-62345678", "0755-88881234", "010-62345678", "020-83456789转216"]


def test_07_excel_equals_quote_is_unwrapped_in_every_column(engine, tmp_path):
    p = case("07-excel-equals-quote-text.csv", tmp_path, "GZ0012_CUSTOMER_20261103.csv")
    res = balanced(ingest_file(engine, p, profile="dms_a"))
    assert (res.rows_loaded, res.value_issues) == (2, 0), res
    first = rows(engine, "dms_customer")[0]
    assert (first["customer_id"], first["mobile"], first["id_number"], first["postcode"]) == (
        "K4001", "13912345678", "110105199003072119", "100007")
    # a later plain K4001 is the same customer, not a second one
    again = write(tmp_path, "GZ0012_CUSTOMER_20261104.csv", (CASES / "07-excel-equals-quote-text.csv").read_bytes()
                  .replace(b'="K4001"', b"K4001"))
    balanced(ingest_file(engine, again, profile="dms_a"))
    with engine.connect() as c:
        assert c.execute(sa.text("select count(distinct customer_id) from dms_customer")).scalar() == 2


def test_09_gb18030_2022_rare_name_characters(engine, tmp_path):
    p = case("09-gb18030-2022-rare-name-chars.csv", tmp_path, "GZ0012_CUSTOMER_20261103.csv")
    res = balanced(ingest_file(engine, p, profile="dms_a"))
    assert res.rows_loaded == 4 and res.encoding == "gb18030", res
    assert [r["name"] for r in rows(engine, "dms_customer")] == ["王\U00020087", "李㛃", "张\U0002003e", "刘䶮"]
    assert not [i for i in issues(engine) if i["reason_code"] == "PRIVATE_USE_CHAR"]


def test_a_private_use_character_left_in_a_name_is_reported_and_kept(engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
              csv_bytes(CUST_A, [cust("C1", name="王\ue000"), cust("C2")], "utf-8"))
    res = balanced(ingest_file(engine, p))
    assert res.rows_loaded == 2
    assert [r["name"] for r in rows(engine, "dms_customer")] == ["王\ue000", "张伟"]
    got = [(i["source_row"], i["column_name"], i["reason_code"], i["severity"]) for i in issues(engine)]
    assert got == [(2, "name", "PRIVATE_USE_CHAR", "WARNING")]


def test_14_new_energy_and_consulate_plates_are_valid(engine, tmp_path):
    p = case("14-nev-and-consulate-plates.csv", tmp_path, "GZ0012_VEHICLE_20261103.csv")
    res = balanced(ingest_file(engine, p, profile="dms_a"))
    assert (res.rows_loaded, res.value_issues) == (6, 0), res
    assert [r["plate"] for r in rows(engine, "dms_vehicle")] == [
        "粤BD12345", "粤BA12345", "沪AG12345", "苏ACK1234", "粤B12345F", "沪A1234领"]


def test_16_legacy_xls_is_read_on_the_first_try(engine, tmp_path):
    p = case("16-GZ0012_CUSTOMER_20261103.xls", tmp_path)
    res = balanced(ingest_file(engine, p))
    assert (res.status, res.feed, res.dealer, res.rows_loaded) == ("loaded", "customers", "GZ0012", 2), res
    assert res.sheet == "客户档案" and res.encoding is None
    assert [(r["customer_id"], r["name"]) for r in rows(engine, "dms_customer")] == [("K8001", "高远"), ("K8002", "罗佳")]


def test_an_xls_named_csv_is_read_as_the_workbook_it_is(sqlite_engine, tmp_path):
    p = case("16-GZ0012_CUSTOMER_20261103.xls", tmp_path, "GZ0012_CUSTOMER_20261103.csv")
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 2
    assert any("legacy Excel 97-2003 (XLS)" in w and "sheet '客户档案'" not in w for w in res.file_warnings)


# ------------------------------------------------------------------------------ the ID type chooses the check

RID_OK = "11010519491231002X"
USCC_OK = "91350100M000100Y43"


def _rid_passing_uscc() -> str:
    """An 18-digit number of resident-ID form whose MOD 11-2 check digit is wrong but which passes the
    credit-code check (1 in 31 do): the case of the README."""
    from stdnum.cn import ric, uscc
    for n in range(10 ** 6):
        body = f"44010619900101{n:03d}"
        for last in "0123456789":
            v = body + last
            if uscc.is_valid(v) and not ric.is_valid(v) and ric.calc_check_digit(v) != last:
                return v
    raise AssertionError("none found")


def test_the_id_types_are_the_specs_enumeration():
    """The canonical ID types are exactly the words of the spec's 证件类型 column (the spec wins)."""
    spec = (Path(__file__).resolve().parents[2] / "docs" / "specs" / "dms-exports.md").read_text("utf-8")
    row = next(line for line in spec.splitlines() if line.startswith("| id_type |"))
    words = [w.strip() for w in row.strip(" |").split("|")[-1].split("/")]
    assert words == ["身份证", "护照", "统一社会信用代码", "其他"]
    assert sorted(rules.ID_TYPE_WORDS[w] for w in words) == sorted(rules.ID_TYPES)


@pytest.mark.parametrize("id_type,number,reason", [
    ("身份证", "RID_PASSING_USCC", "ID_CHECK_DIGIT"),       # accepted by chance before: refused now
    ("身份证", RID_OK, None),
    ("身份证", USCC_OK, "ID_FORMAT"),                      # a credit code is no resident ID
    ("统一社会信用代码", USCC_OK, None),
    ("统一社会信用代码", RID_OK, "ID_CHECK_DIGIT"),
    ("护照", "E12345678", None),
    ("护照", "E12", "ID_FORMAT"),
    ("港澳居民来往内地通行证", "H12345678", None),         # a permit is 其他 in the spec: another document
    ("港澳通行证", "H1234", None),
    ("台胞证", "1234", "ID_FORMAT"),
    ("其他", "AB-12", "ID_FORMAT"),
    ("其他", "身份证号", "ID_FORMAT"),
    ("", "RID_PASSING_USCC", None),                         # no type: either check may pass, as before
])
def test_the_id_type_chooses_the_check(sqlite_engine, tmp_path, id_type, number, reason):
    number = _rid_passing_uscc() if number == "RID_PASSING_USCC" else number
    row = cust("C1", idn=number)
    row[4] = id_type
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [row]))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 1
    got = [(i["column_name"], i["reason_code"]) for i in issues(sqlite_engine)]
    assert got == ([("id_number", reason)] if reason else [])
    assert rows(sqlite_engine, "dms_customer")[0]["id_number"] == (None if reason else number)


def test_a_profile_names_the_sheet_to_read(sqlite_engine, tmp_path):
    import openpyxl

    from dealersync.schemas.profiles import load_profiles
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["客户编号", "客户名称"])          # a visible first sheet with a header-like row
    wb.active.append(["X1", "not this one"])
    ws = wb.create_sheet("客户档案")
    ws.append(["客户编号", "客户名称"])
    ws.append(["C1", "张伟"])
    p = tmp_path / "GZ0012_CUSTOMER_20261103.xlsx"
    wb.save(p)
    toml = tmp_path / "profiles.toml"
    toml.write_text('[dms_x]\nextends = "dms_a"\nsheet = "客户档案"\n', encoding="utf-8")
    res = balanced(ingest_file(sqlite_engine, p, profile="dms_x", profiles=load_profiles([toml])))
    assert (res.sheet, res.rows_loaded) == ("客户档案", 1)
    assert [r["customer_id"] for r in rows(sqlite_engine, "dms_customer")] == ["C1"]


def test_a_control_character_in_a_name_is_reported_and_kept(engine, tmp_path):
    """#16 item 3: ingestion records control characters in names as value issues (a fresh review found
    ``张\x01三`` stored silently)."""
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv",
              csv_bytes(CUST_A, [cust("C1", name="张\x01三"), cust("C2"), cust("C3", name="李\x7f四")], "utf-8"))
    res = balanced(ingest_file(engine, p))
    assert res.rows_loaded == 3
    assert [r["name"] for r in rows(engine, "dms_customer")] == ["张\x01三", "张伟", "李\x7f四"]
    got = [(i["source_row"], i["column_name"], i["reason_code"], i["severity"]) for i in issues(engine)]
    assert got == [(2, "name", "CONTROL_CHARACTER", "WARNING"), (4, "name", "CONTROL_CHARACTER", "WARNING")]
