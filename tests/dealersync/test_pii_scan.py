"""The PII scanner reads inside XLSX files (issue #16 leftover): an XLSX is a zip, so a clear mobile in a
cell never showed in its raw bytes and ``scripts/pii_scan.py`` passed a workbook full of them."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import openpyxl

from tests.dealersync.pii_scan import file_text, find_pii, find_pii_in_file

MOBILE, RID, MAIL = "13812345678", "11010519491231002X", "zhang.san@example.cn"
ROOT = Path(__file__).resolve().parents[2]


def _workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "不满意客户"
    ws.append(["客户 Customer", "手机 Mobile", "编号 No."])
    ws.append(["张*", "139****0001", 13800000000 // 10])      # masked, and a number too short to be a mobile
    ws.append(["李四", MOBILE, 1])                              # a clear mobile, as a shared string
    ws["E9"] = 13912345678                                      # and as a number cell
    wb.create_sheet("备注")["A1"] = f"身份证 {RID}，邮箱 {MAIL}"
    wb.save(path)
    return path


def test_a_clear_mobile_in_an_xlsx_is_found(tmp_path):
    f = _workbook(tmp_path / "report.xlsx")
    assert find_pii(f.read_bytes().decode("utf-8", "replace")) == []     # what the scan read before: nothing
    hits = find_pii_in_file(f)
    assert MOBILE in hits and "13912345678" in hits and RID in hits and MAIL in hits
    assert MOBILE in file_text(f).splitlines()             # one value a line: two cells never run together


def test_a_masked_workbook_and_a_gzip_file(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["张*", "138****5678", "110105********002X"])
    wb.save(tmp_path / "masked.xlsx")
    assert find_pii_in_file(tmp_path / "masked.xlsx") == []
    gz = tmp_path / "export.csv.gz"
    gz.write_bytes(gzip.compress(f"name,mobile\n李四,{MOBILE}\n".encode()))
    assert find_pii_in_file(gz) == [MOBILE]


def test_the_demo_scan_script_reads_workbooks_in_the_data_folder(tmp_path):
    spec = importlib.util.spec_from_file_location("pii_scan_script", ROOT / "scripts" / "pii_scan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "data" / "reports").mkdir(parents=True)
    (tmp_path / "data" / "drop").mkdir()
    _workbook(tmp_path / "data" / "reports" / "CSI_MONTHLY_GZ0012_2026-10.xlsx")
    _workbook(tmp_path / "data" / "drop" / "GZ0012_CUSTOMER_20261101.xlsx")   # the drop folder holds PII on purpose
    places = script.data_places(tmp_path)
    assert list(places) == ["data/reports/CSI_MONTHLY_GZ0012_2026-10.xlsx"]
    assert MOBILE in script.find(places["data/reports/CSI_MONTHLY_GZ0012_2026-10.xlsx"])
