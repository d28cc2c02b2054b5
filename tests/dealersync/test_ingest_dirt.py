"""One file-level test per item of the spec's "real-world dirt" list (dms-exports.md section 5),
and the rules of section 6. Every test checks rows read = loaded + quarantined."""
from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
import sqlalchemy as sa

from dealersync.services.ingest import ingest_file
from dealersync.store import repository as repo

CUST_A = ["客户编号", "客户名称", "客户类型", "手机", "证件类型", "证件号码", "地址", "生日", "建档日期", "是否同意营销"]
RO_A = ["工单号", "开单时间", "结算时间", "车架号", "车牌号", "客户编号", "进厂里程", "维修类型", "工时费", "材料费", "合计金额", "故障描述"]
VIN1, VIN2 = "1M8GDM9AXKP042788", "LSVAU218XN2183294"


def csv_bytes(header, rows, encoding="gb18030", bom=False):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def cust(cid="C1", name="张伟", mobile="13812345678", idn="11010519491231002X", birthday="1949-12-31",
         consent="是", address="广州市天河区中山大道1号"):
    return [cid, name, "个人", mobile, "身份证", idn, address, birthday, "2024-03-05", consent]


def ro(no="RO1", opened="2024-03-05 10:00:00", vin=VIN1, km="12000", total="1,280.00"):
    return [no, opened, "2024-03-05 16:00:00", vin, "粤A12345", "C1", km, "保养", "280.00", "1000.00", total, "保养"]


def balanced(res):
    assert res.rows_read == res.rows_loaded + res.rows_quarantined, res
    return res


def rows(engine, table, where=""):
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(f"select * from {table} {where} order by source_row")).mappings()]


def issues(engine):
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text("select * from value_issue order by id")).mappings()]


def quarantined(engine):
    with engine.connect() as c:
        return [dict(r) for r in repo.list_quarantine(c)]


# ------------------------------------------------------------------------------ encodings

def test_gb18030_file_labelled_utf8_profile_loads(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust()], "gb18030"))
    res = balanced(ingest_file(sqlite_engine, p, profile="dms_a"))
    assert res.encoding == "gb18030" and res.rows_loaded == 1
    # profile dms_b says UTF-8; headers are dms_a's, so force dms_a but relabel it utf-8 via a custom profile
    assert rows(sqlite_engine, "dms_customer")[0]["name"] == "张伟"


def test_utf8_file_where_profile_says_gb18030(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(name="陳偉")], "utf-8"))
    res = balanced(ingest_file(sqlite_engine, p, profile="dms_a"))
    assert res.encoding == "utf-8"
    assert any("content is utf-8" in w for w in res.file_warnings)
    assert rows(sqlite_engine, "dms_customer")[0]["name"] == "陳偉"


def test_utf8_with_bom(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust()], "utf-8", bom=True))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 1 and res.encoding == "utf-8-sig"
    assert rows(sqlite_engine, "dms_customer")[0]["customer_id"] == "C1"


def test_a_few_undecodable_bytes_name_row_and_column(sqlite_engine, tmp_path):
    data = csv_bytes(CUST_A, [cust("C1"), cust("C2", address="ADDRMARK"), cust("C3")], "gb18030")
    data = data.replace(b"ADDRMARK", "广州".encode("gb18030") + b"\xff")
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", data)
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 3
    enc = [i for i in issues(sqlite_engine) if i["reason_code"] == "ENCODING_ERROR"]
    assert [(i["source_row"], i["column_name"]) for i in enc] == [(3, "address")]
    assert any("neither UTF-8 nor GB18030" in w for w in res.file_warnings)
    assert rows(sqlite_engine, "dms_customer", "where customer_id='C2'")[0]["address"] is None


def test_undecodable_bytes_in_the_key_quarantine_the_row(sqlite_engine, tmp_path):
    data = csv_bytes(CUST_A, [cust("C1"), cust("KEYMARK")], "gb18030").replace(b"KEYMARK", b"C\xff2")
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", data)
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_quarantined == 1
    q = quarantined(sqlite_engine)[0]
    assert (q["row_number"], q["column_name"], q["reason_code"]) == (3, "customer_id", "ENCODING_ERROR")


def test_utf8_line_inside_a_gb18030_file(sqlite_engine, tmp_path):
    good = csv_bytes(CUST_A, [cust("C1", name="张伟")] + [cust(f"X{i}", name="李娜") for i in range(40)], "gb18030")
    utf8_line = csv_bytes(CUST_A, [cust("C3", name="王芳")], "utf-8").split(b"\r\n", 1)[1]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", good + utf8_line)   # far below the header scan
    res = balanced(ingest_file(sqlite_engine, p))
    got = [r["name"] for r in rows(sqlite_engine, "dms_customer")]
    assert got[0] == "张伟" and got[-1] == "王芳" and len(got) == 42
    assert any("1 line(s) were UTF-8" in w for w in res.file_warnings)


def test_unreadable_everywhere_is_rejected(sqlite_engine, tmp_path):
    junk = b"\r\n".join(bytes([0x81, 0x20, 0xff, 0xfe, 0x80] * 8) for _ in range(50))
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", junk)
    res = ingest_file(sqlite_engine, p)
    assert res.status == "rejected" and "encoding" in res.message


def test_not_a_csv_at_all_is_rejected(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", b"\x00\x01\x02binary\x00" * 100)
    res = ingest_file(sqlite_engine, p)
    assert res.status == "rejected" and "not a CSV" in res.message
    p2 = write(tmp_path, "GZ0012_VEHICLE_20261103.xlsx", b"this is no workbook")
    res2 = ingest_file(sqlite_engine, p2)
    assert res2.status == "rejected" and "XLSX" in res2.message
    with sqlite_engine.connect() as c:
        assert [r["status"] for r in repo.ledger(c)] == ["REJECTED", "REJECTED"]


# ------------------------------------------------------------------------------ headers

def test_headers_with_extra_spaces_and_fullwidth_parentheses(sqlite_engine, tmp_path):
    header = ["VIN码", " 发动机号码 ", "牌照号", "排量（L）", "行驶里程"]
    p = write(tmp_path, "GZ0012_VEHICLE_20261103.csv", csv_bytes(header, [[VIN1, "E1", "粤A12345", "1.5T", "1,200"]], "utf-8"))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.profile == "dms_b"
    r = rows(sqlite_engine, "dms_vehicle")[0]
    assert (r["engine_no"], r["displacement"], r["mileage_km"]) == ("E1", "1.5T", 1200)


def test_title_row_above_the_header(sqlite_engine, tmp_path):
    data = "客户档案导出 2026-11-03,,,\r\n".encode("gb18030") + csv_bytes(CUST_A, [cust()], "gb18030")
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", data)
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_read == 1 and any("title row" in w for w in res.file_warnings)
    assert rows(sqlite_engine, "dms_customer")[0]["source_row"] == 3


def test_unknown_extra_column_is_ignored_with_a_warning(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A + ["备注X"], [cust() + ["n/a"]]))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 1 and any("备注X" in w for w in res.file_warnings)


def test_missing_required_column_rejects_the_whole_file(sqlite_engine, tmp_path):
    header = [h for h in CUST_A if h != "客户名称"]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(header, [cust()[:1] + cust()[2:]]))
    res = ingest_file(sqlite_engine, p)
    assert res.status == "rejected"
    assert "GZ0012_CUSTOMER_20261103.csv" in res.message and "row 1" in res.message and "客户名称" in res.message
    assert rows(sqlite_engine, "dms_customer") == []


def test_duplicated_header_names_first_wins(sqlite_engine, tmp_path):
    header = CUST_A + ["手机"]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(header, [cust() + ["13900000000"]]))
    res = balanced(ingest_file(sqlite_engine, p))
    assert any("duplicated header" in w for w in res.file_warnings)
    assert rows(sqlite_engine, "dms_customer")[0]["mobile"] == "13812345678"


# ------------------------------------------------------------------------------ values

def test_fullwidth_digits_apostrophes_and_phone_formats(sqlite_engine, tmp_path):
    data = [cust("C1", mobile="１３８１２３４５６７８"), cust("C2", mobile="'13912345678"),
            cust("C3", mobile="+86 137-1234-5678"), cust("C4", mobile="8613612345678"), cust("C5", mobile="135 1234 5678")]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.value_issues == 0
    assert [r["mobile"] for r in rows(sqlite_engine, "dms_customer")] == [
        "13812345678", "13912345678", "13712345678", "13612345678", "13512345678"]


def test_scientific_notation_id_is_rejected_but_the_row_kept(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust(idn="4.4010619900101E+17")]))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 1 and res.value_issues == 1
    i = issues(sqlite_engine)[0]
    assert (i["column_name"], i["reason_code"], i["raw_value"]) == ("id_number", "ID_SCI_NOTATION", "4.4010619900101E+17")
    assert rows(sqlite_engine, "dms_customer")[0]["id_number"] is None


def test_null_tokens_are_blank_not_issues(sqlite_engine, tmp_path):
    data = [cust("C1", mobile="NULL", idn="无", birthday="-", consent="")]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.value_issues == 0
    r = rows(sqlite_engine, "dms_customer")[0]
    assert (r["mobile"], r["id_number"], r["birthday"], r["marketing_consent"]) == (None, None, None, None)


def test_invalid_optional_values_blank_with_value_issue(sqlite_engine, tmp_path):
    data = [cust("C1", mobile="1381234567", idn="110105194912310021", birthday="2024-02-30")]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 1
    got = {(i["column_name"], i["reason_code"]) for i in issues(sqlite_engine)}
    assert got == {("mobile", "BAD_MOBILE"), ("id_number", "ID_CHECK_DIGIT"), ("birthday", "IMPOSSIBLE_DATE")}


def test_trailing_totals_row_is_quarantined(sqlite_engine, tmp_path):
    data = [ro("RO1"), ro("RO2", vin=VIN2), ["合计", "", "", "", "", "", "", "", "560.00", "2000.00", "2,560.00", ""]]
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (3, 2, 1)
    assert quarantined(sqlite_engine)[0]["reason_code"] == "TOTALS_ROW"


def test_every_date_form_and_thousands_separators(sqlite_engine, tmp_path):
    data = [ro("RO1", opened="2024/3/5"), ro("RO2", opened="20240305", vin=VIN2),
            ro("RO3", opened="2024-03-05 14:22:00", km="13000"), ro("RO4", opened="45356", vin=VIN2, km="13000")]
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_quarantined == 0
    got = rows(sqlite_engine, "dms_repair_order")
    assert [str(r["opened_at"])[:16] for r in got] == ["2024-03-05 00:00", "2024-03-05 00:00", "2024-03-05 14:22",
                                                       "2024-03-05 00:00"]
    assert float(got[0]["total_amount"]) == 1280.0


def test_impossible_required_date_and_bad_vin_quarantine(sqlite_engine, tmp_path):
    data = [ro("RO1", opened="2024-02-30"), ro("RO2", vin="1M8GDM9A1KP042788"), ro("RO3", vin=VIN2)]
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert (res.rows_loaded, res.rows_quarantined) == (1, 2)
    q = {(x["row_number"], x["column_name"], x["reason_code"]) for x in quarantined(sqlite_engine)}
    assert q == {(2, "opened_at", "IMPOSSIBLE_DATE"), (3, "vin", "VIN_CHECK_DIGIT")}


def test_quarantine_keeps_the_raw_row(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, [ro("RO1", vin="BADVIN")]))
    balanced(ingest_file(sqlite_engine, p))
    with sqlite_engine.connect() as c:
        raw = json.loads(c.execute(sa.text("select raw_row from quarantine")).scalar_one())
    assert raw["车架号"] == "BADVIN" and raw["工单号"] == "RO1"


def test_duplicated_rows_inside_a_file_last_wins(sqlite_engine, tmp_path):
    data = [cust("C1", name="张伟"), cust("C2"), cust("C1", name="张伟伟"), cust("C1", name="张伟")]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert (res.rows_read, res.rows_loaded, res.rows_superseded) == (4, 4, 2)
    got = rows(sqlite_engine, "dms_customer")
    assert [(r["customer_id"], r["source_row"]) for r in got] == [("C2", 3), ("C1", 5)]
    sup = [i for i in issues(sqlite_engine) if i["reason_code"] == "SUPERSEDED"]
    assert sorted(i["source_row"] for i in sup) == [2, 4]


def test_same_customer_under_two_ids_both_loaded(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, [cust("C1"), cust("C9", name="張偉")]))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 2 and len(rows(sqlite_engine, "dms_customer")) == 2


def test_mileage_going_backwards_is_flagged_not_dropped(sqlite_engine, tmp_path):
    data = [ro("RO1", opened="2024-01-05 10:00:00", km="12000"), ro("RO2", opened="2024-03-05 10:00:00", km="9000"),
            ro("RO3", opened="2024-05-05 10:00:00", km="15000")]
    p = write(tmp_path, "GZ0012_RO_20261103.csv", csv_bytes(RO_A, data))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 3
    w = [i for i in issues(sqlite_engine) if i["reason_code"] == "MILEAGE_BACKWARDS"]
    assert [(i["source_row"], i["severity"]) for i in w] == [(3, "WARNING")]
    # and against what is already in the store, from a later file
    p2 = write(tmp_path, "GZ0012_RO_20261104.csv", csv_bytes(RO_A, [ro("RO4", opened="2024-06-01 10:00:00", km="14000")]))
    balanced(ingest_file(sqlite_engine, p2))
    assert len([i for i in issues(sqlite_engine) if i["reason_code"] == "MILEAGE_BACKWARDS"]) == 2


def test_wrong_field_count_quarantines_the_row(sqlite_engine, tmp_path):
    data = csv_bytes(CUST_A, [cust("C1")]) + "C2,李娜,个人\r\n".encode("gb18030")
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", data)
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_quarantined == 1 and quarantined(sqlite_engine)[0]["reason_code"] == "FIELD_COUNT"


def test_quoted_newline_keeps_row_numbers_right(sqlite_engine, tmp_path):
    data = [cust("C1", address="广州市\n天河区"), cust("C2")]
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", csv_bytes(CUST_A, data))
    balanced(ingest_file(sqlite_engine, p))
    got = rows(sqlite_engine, "dms_customer")
    assert [(r["customer_id"], r["source_row"]) for r in got] == [("C1", 2), ("C2", 4)]
    assert got[0]["address"] == "广州市 天河区"


def test_gzipped_csv(sqlite_engine, tmp_path):
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv.gz", gzip.compress(csv_bytes(CUST_A, [cust(), cust("C2")])))
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.rows_loaded == 2


def test_xlsx_with_title_row_serial_dates_and_numbers(sqlite_engine, tmp_path):
    import datetime as dt

    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["客户档案 2026-11-03"])
    ws.append(["客户代码", "客户姓名", "移动电话", "证件号", "出生日期", "创建时间", "营销许可"])
    ws.append(["C1", "张伟", 13812345678, "11010519491231002X", 18263, dt.datetime(2024, 3, 5), "Y"])
    ws.append(["C2", "李娜", "138 1234 5679", 440106199001011234.0, "19900101", "20240305", "N"])
    p = tmp_path / "GZ0012_CUSTOMER_20261103.xlsx"
    wb.save(p)
    res = balanced(ingest_file(sqlite_engine, p))
    assert res.profile == "dms_b" and res.rows_loaded == 2
    got = rows(sqlite_engine, "dms_customer")
    assert [(r["source_row"], r["mobile"], str(r["birthday"]), r["marketing_consent"]) for r in got] == [
        (3, "13812345678", "1949-12-31", True), (4, "13812345679", "1990-01-01", False)]
    assert [i["reason_code"] for i in issues(sqlite_engine)] == ["ID_SCI_NOTATION"]


def test_sample_exports_all_balance(sqlite_engine, tmp_path):
    from dealersync.services.sample import generate
    for profile in ("dms_a", "dms_b"):
        out = generate(tmp_path / profile, rows=150, seed=3, profile=profile, dealer="GZ0012" if profile == "dms_a" else "SZ0001")
        for feed, path in out.items():
            if feed == "truth":
                continue
            res = balanced(ingest_file(sqlite_engine, path))
            assert res.status == "loaded" and res.feed == feed and res.rows_loaded > 0, res


@pytest.mark.parametrize("tail_rows,tail_text", [(300, "x" * 20), (50, "y" * 100_000)])
def test_unclosed_quote_rejects_the_file_naming_the_line(sqlite_engine, tmp_path, tail_rows, tail_text):
    """A stray opening quote would swallow every later row into one value: reject, name the line."""
    body = csv_bytes(CUST_A, [cust("C1"), cust("C2")])
    broken = 'C3,"张伟,个人,13812345678,身份证,,广州,,,\r\n'.encode("gb18030")
    tail = b"".join(f"C{i},{tail_text},个人,,,,,,,\r\n".encode("gb18030") for i in range(4, 4 + tail_rows))
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", body + broken + tail)
    res = ingest_file(sqlite_engine, p)
    assert res.status == "rejected" and (res.rows_read, res.rows_loaded) == (0, 0)
    assert "line 4" in res.message and "never closed" in res.message and p.name in res.message
    assert rows(sqlite_engine, "dms_customer") == []
    with sqlite_engine.connect() as c:
        assert [r["status"] for r in repo.ledger(c)] == ["REJECTED"]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
@pytest.mark.parametrize("tail", [b"\r\n", b""])
def test_an_unclosed_quote_in_the_last_row_rejects_the_file(sqlite_engine, tmp_path, encoding, tail):
    """Was: the last row quarantined as a wrong field count and the rest loaded."""
    body = csv_bytes(CUST_A, [cust("C1"), cust("C2")], encoding)
    broken = 'C3,"张伟,个人,13812345678,身份证,,广州,,,'.encode(encoding) + tail
    p = write(tmp_path, "GZ0012_CUSTOMER_20261103.csv", body + broken)
    res = ingest_file(sqlite_engine, p)
    assert res.status == "rejected" and (res.rows_read, res.rows_loaded, res.rows_quarantined) == (0, 0, 0)
    assert "line 4" in res.message and "客户名称" in res.message and p.name in res.message
    assert rows(sqlite_engine, "dms_customer") == [] and quarantined(sqlite_engine) == []
