"""The one XLSX writer and text safety (issue #19 item 2, #16 item 3): typed, text-safe cells read back
by openpyxl and by LibreOffice (a second, independent reader that evaluates formulas), deterministic
bytes, a chart only with two points, and printing: every page carries the whole header (no column cut)."""
from __future__ import annotations

import csv
import json
import os
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import openpyxl.utils
import pytest

from dealersync.services.xlsx import Chart, Col, Sheet, text_width, workbook_bytes, write_workbook
from dealersync.textsafe import safe_text, write_csv
from tests.render import page_png, pages, to_csv, to_pdf

# DEALERSYNC_KEEP_PAGES=DIR keeps page images of the rendered workbooks there, for a person to look at
PAGES_DIR = Path(os.environ.get("DEALERSYNC_KEEP_PAGES", "/nonexistent"))
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


def test_text_wider_than_its_column_wraps_on_a_row_tall_enough():
    """A fixed-width column (内容 Subject, 46) narrower than its text printed one line of it, the rest
    hidden ("到期（日均约 4"): such a cell wraps and its row is as tall as its lines."""
    from dealersync.services.followups import FOLLOWUP_COLUMNS
    rows = many_tasks(12)
    ws = openpyxl.load_workbook(io.BytesIO(workbook_bytes([Sheet("保养提醒", FOLLOWUP_COLUMNS, rows, title="t")])))["保养提醒"]
    j = [c.header for c in FOLLOWUP_COLUMNS].index("内容 Subject") + 1
    width = ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width
    head = next(r for r in range(1, 6) if ws.cell(r, 1).value == "到期日 Due")
    for i, row in enumerate(rows):
        need = -(-text_width(row[j - 1]) // (int(width) - 2))
        assert need >= 2
        cell = ws.cell(head + 1 + i, j)
        assert cell.alignment.wrap_text and ws.row_dimensions[head + 1 + i].height >= 15 * need
        assert ws.cell(head + 1 + i, 1).alignment.horizontal == "center"   # the date no longer runs into 逾期


def _report_sheets() -> dict[str, list[Sheet]]:
    """Each report's sheets, filled the way the services fill them, with realistic volumes."""
    from dealersync.services.reports import complaints, managers, rvweek, salesday
    from dealersync.services.surveys import csi_sheets
    from dealersync.services.worklists import correction_sheets, worklist_sheet
    at = datetime(2026, 11, 3, 10, 30)
    advisors = ["李明", "王静", "陈强", "欧阳娜娜"]
    rv = {"week": "2026-W45", "start": date(2026, 11, 2), "end": date(2026, 11, 8),
          "rows": [{"advisor": a, "due": 30 + i, "calls": 28, "reached": 20 + i, "not_reached": 8 - i, "satisfied": 15,
                    "dissatisfied": 3} for i, a in enumerate(advisors)],
          "totals": {"due": 126, "calls": 112, "reached": 86, "not_reached": 26, "satisfied": 60, "dissatisfied": 12},
          "dissatisfied": [{"survey": f"A{i:09x}", "at": at, "advisor": advisors[i % 4], "name": "郑**",
                            "mobile": "138****5678", "document": f"RO2026110{i:04d}",
                            "problem": "服务顾问 4 分、车辆交付 5 分", "resolution": "处理中"} for i in range(12)]}
    cm = {"month": "2026-11", "rows": [{"category": c, "department": d, "received": 5, "within_24h": 2, "within_48h": 4,
                                        "open": 1} for c in ("维修质量", "服务态度", "等待时间", "价格")
                                       for d in ("售后服务部", "客户服务部")],
          "totals": {"received": 40, "within_24h": 16, "within_48h": 32, "open": 8},
          "items": [{"id": f"A{i:09x}", "opened": at, "category": "维修质量", "department": "售后服务部", "name": "广州市某某物流有限公司",
                     "mobile": "139****0001", "document": "LSVAG2180E2100150", "resolved": at, "hours": 20.5,
                     "resolution": "已解决，用时 20.5 小时", "reaction": "满意度回访总体 9 分"} for i in range(40)]}
    pm = {"month": "2026-11", "no_consent": 74,
          "items": [{"due": date(2026, 11, 1 + i % 28), "overdue": i % 5 == 0, "vin": f"LSVAG2180E21{i:05d}", "plate": "粤A12345",
                     "model": "途观L 330TSI 两驱智享版", "name": "王*", "mobile": "138****5678", "last_visit": date(2026, 5, 1),
                     "last_km": 23456, "per_day": 42, "est_km": 31000, "advisor": "李明"} for i in range(60)]}
    sr = {"period": "2026-W45", "sources": {s: {"new": 10, "O": 1, "H": 2, "A": 3, "B": 2, "C": 2, "won": 2, "defeated": 1}
                                            for s in ("展厅", "电话", "网络", "车展", "其他")},
          "people": {p: {"new": 12, "open": 30, "won": 3, "defeated": 2, "overdue": 4} for p in advisors},
          "overdue": [{"lead": f"L{i:08d}", "name": "李*", "mobile": "137****1234", "level": "H", "model": "帕萨特",
                       "salesperson": "王静", "touched": at, "days": 9} for i in range(16)]}
    sd = {"rows": [{"report_date": "2026-11-05", "dealer_code": "GZ0012", "model": m, **dict.fromkeys(salesday.HEADER[3:], 3)}
                   for m in ("朗逸", "帕萨特", "途观L", "ID.4 CROZZ")], "snapshot": date(2026, 11, 5),
          "totals": dict.fromkeys(salesday.HEADER[3:], 12)}
    csi = {"month": "2026-11", "responses": 102, "overall": 8.41, "owners": 365, "lost_customers": 40, "lost_rate": 0.11,
           "factors": [{"factor": "SERVICE_ADVISOR", "name": "服务顾问", "score": 8.41, "responses": 102}],
           "dissatisfied": [{"survey": "A1", "master_id": "M000000001", "name": None, "company": None,
                             "mobile": "138****5678", "overall": 5.4, "lowest_score": 5.0, "resolution": "处理中"}],
           "trend": [{"month": f"2026-{m:02d}", "score": 8 + m / 20} for m in range(6, 12)]}
    q = [{"id": i, "feed": "repair_orders", "source_file": "GZ0012_RO_20261103.csv", "row_number": 10 + i,
          "column": "车架号 (vin)", "shown_value": "LSVAG2180E2100151", "reason": "车架号校验位错误", "reason_code": "VIN_CHECK_DIGIT",
          "profile": "dms_a", "raw_row": json.dumps({h: "x" * 8 for h in ("工单号", "开单时间", "车架号", "送修人", "送修人电话",
                                                                      "故障描述", "工单状态")}, ensure_ascii=False)}
         for i in range(30)]
    from dealersync.services.master_review import review_sheet
    side = {"master_id": "M000000042", "names": ["周建华", "周先生"], "id_number": "440106198506151238",
            "birth_date": date(1985, 6, 15), "gender": "M", "mobiles": ["13700000020", "13912345678"],
            "vins": ["LSVAG2180E2100150"], "plates": ["粤A12345"], "addresses": ["广州市天河区天河路385号太古汇一座 2801 室"],
            "sources": {"DMS": 1, "SERVICE": 3}, "last_seen": at}
    review = [{"id": 100 + i, "weight": 12.5, "reason": "手机号、车牌相同，但一方没有可用的姓名（空白或“先生/女士”之类的称呼），"
               "仅凭这些标识不足以认定为同一人，故未自动合并。", "a": side, "b": {**side, "master_id": "M000000043"}}
              for i in range(30)]
    return {"review": [review_sheet(review)], "rvweek": rvweek.sheets(rv, "GZ0012"), "complaints": complaints.sheets(cm, "GZ0012"),
            "maintenance": managers.maintenance_sheets(pm, "GZ0012"), "showroom": managers.showroom_sheets(sr, "GZ0012"),
            "salesday": [salesday.sheet(sd, date(2026, 11, 5))], "csi": csi_sheets(csi, "GZ0012"),
            "quarantine": [worklist_sheet("隔离行", "隔离行清单", q, "隔离行"), *correction_sheets(q)]}


def test_every_report_prints_whole_columns(tmp_path):
    reports = _report_sheets()
    files = []
    for name, sheets in reports.items():
        files.append(tmp_path / f"{name}.xlsx")
        write_workbook(files[-1], sheets)
    pdfs = to_pdf(files, tmp_path / "pdf")
    for (name, sheets), pdf in zip(reports.items(), pdfs):
        rows = sum(len(s.rows) for s in sheets)
        assert_printable(pdf, sheets, max_pages=len(sheets) + rows // 20 + 1)
    # the CSI trend chart prints (it sat beside the print area): its axis repeats each month of the table
    trend = "".join(pages(pdfs[list(reports).index("csi")])[-1].split())
    assert all(trend.count(f"2026-{m:02d}") >= 2 for m in range(6, 12)), trend
    if PAGES_DIR.is_dir():
        for name in reports:   # every page of every report, for a person to look at
            for n in range(1, len(pages(pdfs[list(reports).index(name)])) + 1):
                page_png(pdfs[list(reports).index(name)], n, PAGES_DIR / f"{name}-page{n}.png")
