"""Work lists in Excel and the quarantine replay (issue #19 item 3; #16 item 2): file, row, column, raw
value masked unless --unmasked, reason in Chinese; a corrected sheet goes back through the same checks
with the original lineage, a masked cell left alone goes back as the original value."""
from __future__ import annotations

import json
import re

import openpyxl
import pytest
from sqlalchemy import select

from dealersync.cli.main import main
from dealersync.services import worklists
from dealersync.services.ingest import ingest_file
from dealersync.services.replay import replay_workbook
from dealersync.services.xlsx import write_workbook
from dealersync.store.tables import FEED_TABLES, ingest_file as ledger, quarantine
from tests.dealersync.test_reports import vin, write_a

RO_A = ["工单号", "开单时间", "结算时间", "交车时间", "车架号", "车牌号", "客户编号", "送修人", "送修人电话", "进厂里程",
        "维修类型", "服务顾问", "工时费", "材料费", "合计金额", "故障描述", "工单状态"]
ID = "11010519491231002X"   # the GB 11643 example number (valid check digit)


def _ro(n, *, opened="2026-11-03 09:00:00", v=None, mobile="13812345678", sender="郑小雨"):
    return [f"RO{n}", opened, "", "", v or vin(30 + n), "粤A12345", "C1", sender, mobile, "12000", "小修", "李明",
            "100", "50", "150", "异响", "在修"]


def _load(engine, tmp_path):
    rows = [_ro(1), _ro(2, opened="2026-13-45 09:00:00", mobile="13912345678"), _ro(3, v=vin(33, good=False)),
            _ro(4, mobile="1381234567", sender="=HYPERLINK(\"http://x\",\"点击\")")]
    res = ingest_file(engine, write_a(tmp_path / "GZ0012_RO_20261103.csv", RO_A, rows))
    assert (res.rows_loaded, res.rows_quarantined, res.value_issues) == (2, 2, 1)
    return res


def test_lists_mask_personal_values_and_give_chinese_reasons(engine, tmp_path):
    _load(engine, tmp_path)
    with engine.connect() as c:
        q = worklists.quarantine_rows(c)
        clear = worklists.quarantine_rows(c, unmasked=True)
        issues = worklists.value_issue_rows(c, warnings=False)
    assert [(r["row_number"], r["column"], r["reason"]) for r in q] == [
        (3, "开单时间 (opened_at)", "日期不存在（如 2 月 30 日）"), (4, "车架号 (vin)", "车架号校验位错误")]
    assert [(r["row_number"], r["column_name"], r["shown_value"], r["reason"]) for r in issues] == [
        (5, "sender_mobile", "138*****67", "手机号码无效")]
    sheets = [worklists.worklist_sheet("隔离行", "隔离行清单", q, "隔离行"), *worklists.correction_sheets(q)]
    out = tmp_path / "q.xlsx"
    write_workbook(out, sheets)
    wb = openpyxl.load_workbook(out)
    text = " ".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)
    assert "13912345678" not in text and "139****5678" in text and "郑**" in text     # masked where personal
    assert "修正-repair_orders" in wb.sheetnames and "日期不存在" in text
    assert any("13912345678" in json.dumps(r["raw_row"], ensure_ascii=False) for r in clear)


def test_a_corrected_quarantine_sheet_loads_back_with_its_lineage(engine, tmp_path):
    _load(engine, tmp_path)
    with engine.connect() as c:
        q = worklists.quarantine_rows(c)
    out = tmp_path / "fix.xlsx"
    write_workbook(out, worklists.correction_sheets(q))
    wb = openpyxl.load_workbook(out)
    ws = wb["修正-repair_orders"]
    head = next(r for r in range(1, 10) if str(ws.cell(r, 1).value).startswith("编号"))
    headers = [ws.cell(head, j).value for j in range(1, ws.max_column + 1)]
    for r in range(head + 1, ws.max_row + 1):   # the officer fixes the date of row 3; row 4's VIN stays wrong
        if ws.cell(r, 3).value == 3:
            ws.cell(r, headers.index("开单时间") + 1).value = "2026-11-02 09:00:00"
    wb.save(out)
    res = replay_workbook(engine, out)
    assert res["feeds"]["repair_orders"] == {"rows": 2, "loaded": 1, "quarantined": 1}
    ro = FEED_TABLES["repair_orders"]
    with engine.connect() as c:
        row = c.execute(select(ro).where(ro.c.ro_number == "RO2")).mappings().one()
        still = worklists.quarantine_rows(c)
        loads = c.execute(select(ledger.c.file_name, ledger.c.status)).all()
    assert (row["source_file"], row["source_row"], str(row["opened_at"])) == ("GZ0012_RO_20261103.csv", 3, "2026-11-02 09:00:00")
    assert row["sender_mobile"] == "13912345678" and row["sender_name"] == "郑小雨"   # masked cells went back as they were
    assert [(r["source_file"], r["row_number"], r["reason_code"]) for r in still] == [("GZ0012_RO_20261103.csv", 4, "VIN_CHECK_DIGIT")]
    assert ("fix.xlsx", "LOADED") in loads
    assert replay_workbook(engine, out)["status"] == "skipped"   # the same workbook again: nothing


def test_cli_lists_masked_unless_unmasked(engine, tmp_path, monkeypatch, capsys):
    url = engine.url.render_as_string(hide_password=False)
    if not url.startswith("sqlite"):
        return   # the CLI reads one store: the SQLite run covers it
    monkeypatch.setenv("DEALERSYNC_DATABASE_URL", url)
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    _load(engine, tmp_path)
    assert main(["value-issues", "list"]) == 0
    masked = capsys.readouterr().out
    assert main(["value-issues", "list", "--unmasked"]) == 0
    clear = capsys.readouterr().out
    assert "138*****67" in masked and "1381234567" not in masked and "1381234567" in clear
    assert main(["value-issues", "list", "--json"]) == 0
    assert "1381234567" not in capsys.readouterr().out
    assert main(["quarantine", "list", "--xlsx", str(tmp_path / "q.xlsx")]) == 0
    assert main(["value-issues", "list", "--xlsx", str(tmp_path / "v.xlsx")]) == 0
    assert main(["claims", "list", "--status", "VALIDATION_FAILED", "--xlsx", str(tmp_path / "c.xlsx")]) == 0
    cells = [str(v) for f in ("q", "v") for ws in openpyxl.load_workbook(tmp_path / f"{f}.xlsx").worksheets
             for row in ws.iter_rows(values_only=True) for v in row if v]
    assert not any(re.fullmatch(r"1[3-9]\d{9}", v) for v in cells)


PII = re.compile(r"1[3-9]\d{9}|\d{17}[\dX]|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}")


def test_personal_data_quoted_in_a_key_or_a_message_is_masked_everywhere(engine, tmp_path, monkeypatch, capsys):
    """Found by a fresh review: a customer number holding an e-mail, a mobile and an ID run together with
    Chinese text (so ``\\b`` never matched the e-mail), and the checks' messages quoting the raw value,
    reached `quarantine list` and `--json` in clear. Every path shows them masked unless --unmasked, and
    the correction sheet's masked cell still goes back as the original on replay."""
    key = f"联系人alice@example.com手机13912345678身份证{ID}" * 2   # too long for a key: quarantined
    rows = [_ro(1, mobile="bob@example.com"), _ro(2)]   # an e-mail in the mobile column: a value issue quoting it
    rows[1][0] = key
    res = ingest_file(engine, write_a(tmp_path / "GZ0012_RO_20261104.csv", RO_A, rows))
    assert (res.rows_quarantined, res.value_issues) == (1, 1)
    with engine.connect() as c:
        listed = worklists.quarantine_rows(c)
        clear = worklists.quarantine_rows(c, unmasked=True)
    assert PII.search(json.dumps(clear, ensure_ascii=False, default=str))          # the test data does hold PII
    shown = [{k: v for k, v in r.items() if k not in ("raw_row", "raw_value")} for r in listed]
    assert not PII.search(json.dumps(shown, ensure_ascii=False, default=str))
    sheets = worklists.correction_sheets(listed)
    assert not PII.search(json.dumps([s.rows for s in sheets], ensure_ascii=False, default=str))

    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DEALERSYNC_DATABASE_URL", str(engine.url.render_as_string(hide_password=False)))
    for argv in (["quarantine", "list"], ["quarantine", "list", "--json"], ["value-issues", "list", "--json"]):
        assert main(argv) == 0
        out = capsys.readouterr()
        assert not PII.search(out.out + out.err), argv


@pytest.mark.parametrize("check,value,code,zh", [
    ("uscc", "91350100M000100Y44", "ID_CHECK_DIGIT", "统一社会信用代码校验位错误"),      # a reviewer saw 身份证号校验位错误
    ("resident_id", "110105199003055828", "ID_CHECK_DIGIT", "身份证号校验位错误"),
    ("id_number", "91350100M000100Y44", "ID_CHECK_DIGIT", "证件号码校验位错误（身份证或统一社会信用代码）"),
    ("resident_id", "11010519900300006x", "ID_BAD_BIRTHDATE", "身份证号中的出生日期不存在"),   # lower-case x
    ("resident_id", "11010519900307211x", "ID_CHECK_DIGIT", "身份证号校验位错误"),
    ("resident_id", "1101051990030721AB", "ID_FORMAT", "证件号码格式错误"),
    ("private_use", "张\ue000", "PRIVATE_USE_CHAR", "含私用区字符"),
])
def test_each_id_reason_reads_right_in_chinese(check, value, code, zh):
    from dealersync.schemas import rules
    got, message = rules.explain(check, value)
    assert got == code, message
    assert worklists.reason_zh(got, message).startswith(zh)
    assert "(18 expected)" not in message or len(value) != 18
