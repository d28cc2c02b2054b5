"""A workbook as WPS saves it (stored dimension understating the sheet, a hidden drop-down list sheet
first, numbers at binary precision, typed dates), the legacy ``.xls`` and the ``.ods`` LibreOffice makes
of it, and the CSV of the same data load the same rows (issue #17, "Done when")."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from dealersync.services.ingest import ingest_file
from dealersync.store.db import make_engine, upgrade

from .test_ingest_dirt import balanced, rows

HEADER = ["委托书号", "进厂时间", "VIN码", "牌照号", "客户代码", "送修人姓名", "送修人手机", "进厂公里数", "业务类型",
          "工时金额", "配件金额", "总金额", "状态"]
DATA = [
    ["WT001", datetime(2026, 11, 2, 8, 31, 7), "LFV2A21KXS4100001", "粤BD12345", "K2001", "周明轩", 13712345601, 12034,
     "保养", 121.00000000000001, 358.0, 479.00000000000006, "已结算"],
    ["WT002", datetime(2026, 11, 2, 9, 12, 30), "LFV2A21K1S4100002", "沪A1234领", "K2002", "黄雅琴", "13712345602", 30567,
     "小修", 200.0, 3479.9999999999995, 3679.9999999999995, "已结算"],
    ["WT003", datetime(2026, 11, 2, 10, 5, 9), "LFV2A21K3S4100003", "粤A3K456", "K2003", "王师傅", 13712345603,
     88012, "小修", 57.70000000000001, 0.30000000000000004, 58.00000000000001, "在修"],
]
CSV_DATA = [["WT001", "2026-11-02 08:31:07", "LFV2A21KXS4100001", "粤BD12345", "K2001", "周明轩", "13712345601", "12034",
             "保养", "121", "358", "479", "已结算"],
            ["WT002", "2026-11-02 09:12:30.0", "LFV2A21K1S4100002", "沪A1234领", "K2002", "黄雅琴", "13712345602", "30567",
             "小修", "200", "3480", "3680", "已结算"],
            ["WT003", "2026/11/2 10:05:09", "LFV2A21K3S4100003", "粤A3K456", '="K2003"', "王师傅", "13712345603", "88012",
             "小修", "57.7", "0.3", "58", "在修"]]


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def wps_like_xlsx(path: Path) -> Path:
    """An XLSX as WPS / a streaming writer leaves it: a hidden list sheet first, the stored dimension
    ``A1:C2`` for a sheet of 4 rows x 13 columns, typed dates and numbers."""
    import openpyxl
    wb = openpyxl.Workbook()
    lists = wb.active
    lists.title = "下拉选项"
    for v in ["保养", "小修", "大修"]:
        lists.append([v])
    lists.sheet_state = "hidden"
    ws = wb.create_sheet("维修工单")
    ws.append(HEADER)
    for r in DATA:
        ws.append(r)
    for row in ws.iter_rows(min_row=2, min_col=2, max_col=2):
        row[0].number_format = "yyyy-mm-dd hh:mm:ss"
    wb.active = 1
    tmp = path.with_suffix(".tmp.xlsx")
    wb.save(tmp)
    with zipfile.ZipFile(tmp) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                data, n = re.subn(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:C2"', data)
                assert n == 1
            zout.writestr(item, data)
    tmp.unlink()
    return path


def convert(src: Path, fmt: str, out: Path, profile: Path) -> Path:
    subprocess.run([_soffice(), "--headless", f"-env:UserInstallation=file://{profile}", "--convert-to", fmt,
                    "--outdir", str(out), str(src)], check=True, capture_output=True, timeout=180)
    return out / (src.stem + "." + fmt)


def load(path: Path, tmp: Path) -> list[dict]:
    eng = make_engine(f"sqlite:///{tmp / (path.name + '.db')}")
    upgrade(eng)
    res = balanced(ingest_file(eng, path, profile="dms_b"))
    assert (res.status, res.rows_loaded, res.rows_quarantined, res.value_issues) == ("loaded", 3, 0, 0), res
    got = [{k: v for k, v in r.items() if k not in ("source_file", "ingested_at", "load_id", "id")}
           for r in rows(eng, "dms_repair_order")]
    eng.dispose()
    return got, res


def test_wps_xlsx_legacy_xls_ods_and_csv_load_the_same_rows(tmp_path):
    if _soffice() is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("LibreOffice (soffice) is not installed")
        pytest.skip("LibreOffice (soffice) is not installed")
    src = wps_like_xlsx(tmp_path / "GZ0012_RO_20261102.xlsx")
    out = tmp_path / "out"
    profile = tmp_path / "lo-profile"
    xls = convert(src, "xls", out, profile)
    ods = convert(src, "ods", out, profile)
    with open(tmp_path / "GZ0012_RO_20261102.csv", "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([HEADER, *CSV_DATA])
    expected, _ = load(tmp_path / "GZ0012_RO_20261102.csv", tmp_path)
    assert [r["total_amount"] for r in expected] == [479, 3680, 58]
    for path in (src, xls, ods):
        got, res = load(path, tmp_path)
        assert got == expected, path.suffix
        assert any("hidden sheet(s) '下拉选项' skipped" in w for w in res.file_warnings), (path.suffix, res.file_warnings)
