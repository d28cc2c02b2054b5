"""The one XLSX writer and text safety (issue #19 item 2, #16 item 3): typed, text-safe cells read back
by openpyxl and by LibreOffice (a second, independent reader that evaluates formulas), deterministic
bytes, a chart only with two points, and printing: every page carries the whole header (no column cut)."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from dealersync.services.xlsx import Chart, Col, Sheet, text_width, workbook_bytes, write_workbook
from dealersync.textsafe import safe_text, write_csv
from tests.render import page_png, pages, to_csv, to_pdf

PAGES_DIR = Path("/work/wt/reports-pages")
HOSTILE = ['=HYPERLINK("http://evil.example/x","点击")', "+8613812345678", "-2+3", "@SUM(A1:A2)", "\tcmd", "\rcmd",
           "=1+1", "王\x01芳", "A\x00B\x1fC"]


@pytest.mark.parametrize("raw,expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("王芳", "王芳"), ("王\x01芳", "王芳"), ("a=b", "a=b"), ("", ""), ("\x01=1", "'=1"), ("1-2", "1-2"),
    ("\ufffe张", "张"), ("line\nbreak", "line\nbreak"),
])
def test_safe_text_neutralises_formula_leads_and_strips_what_a_sheet_cannot_hold(raw, expected):
    assert safe_text(raw) == expected


def test_cjk_counts_double():
    assert text_width("王芳") == 4 and text_width("ab") == 2 and text_width("１２") == 4 and text_width("王a\nbbbbb") == 5


def _sheet(rows, **kw) -> Sheet:
    return Sheet("客户清单", [Col("客户 Customer"), Col("日期 Date", "date"), Col("金额 Amount", "decimal"),
                          Col("次数 Count", "int")], rows, title="测试", **kw)


def test_cells_are_typed_and_text_stays_text(tmp_path):
    rows = [[h, "2026-11-03", "1,280.50", 3] for h in HOSTILE] + [["郑小雨", date(2026, 11, 4), 12.5, "7"]]
    out = tmp_path / "t.xlsx"
    write_workbook(out, [_sheet(rows)])
    ws = openpyxl.load_workbook(out)["客户清单"]
    head = next(r for r in range(1, 10) if ws.cell(r, 1).value == "客户 Customer")
    got = [ws.cell(head + 1 + i, 1) for i in range(len(rows))]
    assert all(c.data_type == "s" for c in got)
    # (XML turns a stored CR into LF on reading)
    assert [c.value for c in got[:7]] == ["'" + h.replace("\r", "\n") for h in HOSTILE[:7]]
    assert got[7].value == "王芳" and got[8].value == "ABC"
    d, amount, n = (ws.cell(head + 1, j) for j in (2, 3, 4))
    assert isinstance(d.value, datetime) and d.number_format == "yyyy-mm-dd"
    assert amount.value == 1280.5 and amount.number_format == "#,##0.00" and n.value == 3
    assert ws.freeze_panes == f"A{head + 1}"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.print_title_rows == f"${head}:${head}"
    assert "&P" in ws.oddFooter.center.text
    # the second reader evaluates formulas: every hostile text comes out as typed, none computed
    csv_path = to_csv(out, tmp_path)
    cells = [r[0] for r in csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8")))]
    assert "'=1+1" in cells and "2" not in cells and "点击" not in cells and "'-2+3" in cells


def test_same_content_same_bytes_and_a_chart_only_with_two_points():
    trend = [["2026-10", None], ["2026-11", 8.5]]
    def sheets(t):
        return [Sheet("趋势", [Col("月份 Month"), Col("得分 Score", "decimal")], t, chart=Chart("满意度趋势", 0, 1))]
    one = workbook_bytes(sheets(trend))
    assert one == workbook_bytes(sheets(trend))
    assert not any(n.startswith("xl/charts/") for n in zipfile.ZipFile(io.BytesIO(one)).namelist())
    ws = openpyxl.load_workbook(io.BytesIO(one))["趋势"]
    assert any("至少两个数据点" in str(c.value) for row in ws.iter_rows() for c in row if c.value)
    two = workbook_bytes(sheets([["2026-10", 7.9], ["2026-11", 8.5]]))
    assert any(n.startswith("xl/charts/") for n in zipfile.ZipFile(io.BytesIO(two)).namelist())


def test_csv_writer_is_text_safe(tmp_path):
    out = write_csv(tmp_path / "x.csv", ["名称", "值"], [[h, 1] for h in HOSTILE])
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["名称", "值"]
    assert all(r[0][0] not in "=+-@\t\r" for r in rows[1:])
    assert rows[8][0] == "王芳"


def assert_printable(pdf: Path, sheets: list[Sheet], max_pages: int) -> list[str]:
    """Every page shows one sheet's whole header (nothing cut to another page), every sheet prints,
    and the page count stays within ``max_pages``."""
    texts = pages(pdf)
    assert 0 < len(texts) <= max_pages, f"{pdf.name}: {len(texts)} pages"
    heads = [[c.header.split()[0] for c in s.columns] for s in sheets]
    seen = set()
    for i, t in enumerate(texts):
        flat = "".join(t.split())
        full = [k for k, h in enumerate(heads) if all(x in flat for x in h)]
        assert full, f"{pdf.name} page {i + 1}: no complete header: {t[:300]!r}"
        seen.update(full)
    assert seen == set(range(len(sheets))), f"{pdf.name}: sheets never printed whole: {set(range(len(sheets))) - seen}"
    return texts


def many_tasks(n: int) -> list[list]:
    names = ["郑小雨", "欧阳娜娜", "广州市天河区某某汽车服务有限公司", "李明", "=HYPERLINK(\"http://x\",\"点击\")", "王\x01芳"]
    return [[date(2026, 11, 1 + i % 20), "是" if i % 7 == 0 else "", names[i % len(names)], f"138****{i:04d}",
             f"RO2026110{i:04d}", f"保养提醒 LSVAG2180E21{i:05d}：2026-11-{1 + i % 20:02d} 到期（日均约 42 公里）",
             "李明", f"M{i:07d}", f"MR-LSVAG2180E21{i:05d}-RO2026110{i:04d}"] for i in range(n)]


def test_workbooks_print_whole_columns_on_landscape_pages(tmp_path):
    from dealersync.services.followups import FOLLOWUP_COLUMNS
    tasks = Sheet("保养提醒", FOLLOWUP_COLUMNS, many_tasks(90), title="保养提醒 2026-11-05",
                  notes=["90 项，其中 13 项逾期（红色）。"], marked=[i % 7 == 0 for i in range(90)])
    summary = Sheet("汇总", [Col("类型 Type"), Col("任务数 Tasks", "int"), Col("逾期 Overdue", "int")],
                    [["保养提醒", 90, 13], ["合计", 90, 13]], title="跟进任务一览 2026-11-05")
    f = tmp_path / "followups.xlsx"
    write_workbook(f, [summary, tasks])
    (pdf,) = to_pdf([f], tmp_path / "pdf")
    texts = assert_printable(pdf, [summary, tasks], max_pages=1 + 6)
    assert "第 2 页" in "".join(texts[1].split()).replace("第2页", "第 2 页") or "第2页" in "".join(texts[1].split())
    if PAGES_DIR.is_dir():
        page_png(pdf, 2, PAGES_DIR / "followups-page2.png")
