"""The one XLSX writer: every workbook the product writes (follow-up list, CSI report, work lists, the
OEM and managers' reports) is described as :class:`Sheet` objects and built by :func:`workbook_bytes`.

What every sheet gets, so a file is ready to forward and to print (issue #19 item 2, #16 item 3):

- Chinese-first sheet names and headers (``客户 Customer``); an optional title and note lines above
  the header, which is frozen and bold with a fill.
- Column widths fitted to content, an East Asian wide or full-width character counting two (Unicode
  UAX #11), between 6 and ``MAX_WIDTH``; longer text wraps.
- Print setup: A4 landscape, fit to one page wide (any number of pages tall), the header rows repeated
  on every page, ``第 N 页 / 共 M 页`` in the footer.
- Typed cells: ``int``/``decimal``/``percent`` columns as numbers, ``date``/``datetime`` as Excel dates
  (ISO strings are converted), everything else as *string* cells through
  :func:`dealersync.textsafe.safe_text` (formula-leading ``= + - @`` tab CR get a ``'``; characters a
  worksheet cannot hold are removed).
- A drop-down (list data validation) on a column declaring ``choices`` (a decision to fill in).
- A line chart only when the series has two or more points, else a sentence saying so.
- Deterministic bytes: fixed document times and zip entry dates, entries in name order.
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.properties import PageSetupProperties

from dealersync.textsafe import safe_text

MAX_WIDTH = 48
FORMATS = {"int": "#,##0", "decimal": "#,##0.00", "percent": "0.0%", "date": "yyyy-mm-dd",
           "datetime": "yyyy-mm-dd hh:mm"}
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_MARK_FILL = PatternFill("solid", fgColor="FFC7CE")
_THIN = Side(style="thin", color="BFBFBF")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_FIXED_TIME = datetime(2000, 1, 1)


@dataclass
class Col:
    """A column: ``header`` (Chinese first), ``kind`` one of text, int, decimal, percent, date, datetime."""
    header: str
    kind: str = "text"
    width: float | None = None    # fixed width in characters; None fits to content
    choices: list[str] | None = None   # a drop-down (list data validation) on the column's cells


@dataclass
class Chart:
    """A line chart of ``value_col`` against ``label_col`` (0-based column indexes of the sheet's rows)."""
    title: str
    label_col: int
    value_col: int
    y_title: str = ""


@dataclass
class Sheet:
    name: str                                   # Chinese first; cut to Excel's 31 characters
    columns: list[Col]
    rows: list[list] = field(default_factory=list)
    title: str | None = None                    # bold line above the header
    notes: list[str] = field(default_factory=list)   # lines under the title (summary in words)
    marked: list[bool] | None = None            # rows to fill red (overdue, dissatisfied)
    chart: Chart | None = None
    empty_text: str = "（无数据）"


def text_width(value) -> int:
    """Display width of a cell's text: East Asian wide/full-width characters count two."""
    s = value if isinstance(value, str) else _display(value)
    return max((sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
                for line in s.split("\n")), default=0)


def _display(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _typed(value, kind: str):
    """The Excel value of one cell: numbers and dates typed, text made safe (``None`` stays empty)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if kind in ("int", "decimal", "percent"):
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return int(value) if kind == "int" else float(value)
        try:
            return int(value) if kind == "int" else float(str(value).replace(",", ""))
        except ValueError:
            return safe_text(str(value))
    if kind in ("date", "datetime"):
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        if isinstance(value, datetime):
            return value if kind == "datetime" else value.date()
        if isinstance(value, date):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("T", " "))
            return parsed.replace(tzinfo=None) if kind == "datetime" else parsed.date()
        except ValueError:
            return safe_text(str(value))
    return safe_text(value if isinstance(value, str) else _display(value))


def _put(ws, row: int, col: int, value, kind: str = "text"):
    cell = ws.cell(row=row, column=col)
    v = _typed(value, kind)
    cell.value = v
    if isinstance(v, str):
        cell.data_type = "s"          # never a formula, whatever the text
    elif v is not None and kind in FORMATS:
        cell.number_format = FORMATS[kind]
    return cell


def _fill_sheet(ws, sheet: Sheet) -> None:
    r = 1
    ncols = max(len(sheet.columns), 1)
    if sheet.title:
        _put(ws, r, 1, sheet.title).font = Font(bold=True, size=14)
        r = _span(ws, r, ncols)
    note_rows = []
    for line in sheet.notes:
        _put(ws, r, 1, line).alignment = Alignment(wrap_text=True, vertical="top")
        note_rows.append((r, line))
        r = _span(ws, r, ncols)
    if sheet.title or sheet.notes:
        r += 1
    head = r
    for j, c in enumerate(sheet.columns, 1):
        cell = _put(ws, head, j, c.header)
        cell.font, cell.fill, cell.border = Font(bold=True), _HEAD_FILL, _BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for i, row in enumerate(sheet.rows):
        for j, c in enumerate(sheet.columns, 1):
            cell = _put(ws, head + 1 + i, j, row[j - 1] if j - 1 < len(row) else None, c.kind)
            cell.border = _BOX
            if c.kind in ("date", "datetime"):   # centred: a right-aligned date ran into the next column's text
                cell.alignment = Alignment(horizontal="center")
            if sheet.marked and sheet.marked[i]:
                cell.fill = _MARK_FILL
    if not sheet.rows:
        _put(ws, head + 1, 1, sheet.empty_text)
    for j, c in enumerate(sheet.columns, 1):
        if c.choices and sheet.rows:
            _choices(ws, c, j, head + 1, head + len(sheet.rows))
    # widths: header and cells, CJK counting two; the title and notes may overflow to the right
    wrapped: list[tuple[int, float]] = []
    for j, c in enumerate(sheet.columns, 1):
        pad = 3 if c.kind == "text" else 5   # numbers and dates render wider than the default font's digits
        w = c.width or min(MAX_WIDTH, max(8, text_width(c.header) + 3,
                                          *(text_width(row[j - 1]) + pad for row in sheet.rows if j - 1 < len(row))))
        ws.column_dimensions[get_column_letter(j)].width = w
        if w >= MAX_WIDTH or any(_lines(row[j - 1], w) > 1 for row in sheet.rows if j - 1 < len(row)):
            wrapped.append((j, w))   # capped, or a fixed width narrower than its text: wrapped, never cut
            for i in range(len(sheet.rows)):
                ws.cell(row=head + 1 + i, column=j).alignment = Alignment(wrap_text=True, vertical="top")
    # a wrapped cell's row is made tall enough for its lines (rows keep one line's height otherwise, and a
    # printed page showed "到期（日均约 4" with the rest of the text hidden)
    for i, row in enumerate(sheet.rows):
        lines = max((_lines(row[j - 1], w) for j, w in wrapped if j - 1 < len(row)), default=1)
        if lines > 1:
            ws.row_dimensions[head + 1 + i].height = 15 * lines
            for j in range(1, ncols + 1):   # the other cells of a tall row read from its top line
                cell = ws.cell(row=head + 1 + i, column=j)
                if not cell.alignment.wrap_text:
                    cell.alignment = Alignment(horizontal=cell.alignment.horizontal, vertical="top")
    total = sum(ws.column_dimensions[get_column_letter(j)].width for j in range(1, ncols + 1))
    for row, line in note_rows:   # a merged cell does not grow by itself: room for the wrapped lines
        ws.row_dimensions[row].height = 15 * max(1, -(-int(text_width(line) * 1.1) // max(int(total), 1)))
    ws.freeze_panes = ws.cell(row=head + 1, column=1)
    ws.print_title_rows = f"{head}:{head}"
    last_row, last_col = head + max(len(sheet.rows), 1), ncols
    if sheet.chart is not None:   # below the table and inside the print area (beside it, it never printed)
        last_row, last_col = _chart(ws, sheet, head, last_row, ncols)
    ws.print_area = f"A1:{get_column_letter(last_col)}{last_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.oddFooter.center.text = "第 &P 页 / 共 &N 页"
    ws.oddHeader.center.text = _header_text(sheet)


def _lines(value, width: float) -> int:
    """Printed lines of ``value`` wrapped in a column ``width`` characters wide (CJK counting two)."""
    if value is None:
        return 1
    text = value if isinstance(value, str) else _display(value)
    room = max(int(width) - 2, 1)
    return sum(max(1, -(-text_width(part) // room)) for part in text.split("\n"))


def _choices(ws, col: Col, j: int, first: int, last: int) -> None:
    """A drop-down of ``col.choices`` on rows first..last of column j (blank allowed; anything else refused)."""
    letter = get_column_letter(j)
    words = ",".join(safe_text(w) for w in col.choices)
    dv = DataValidation(type="list", formula1=f'"{words}"', allow_blank=True, showDropDown=False,
                        showErrorMessage=True, errorTitle="只能从列表中选择", error="请从下拉列表中选择：" + "、".join(col.choices))
    dv.add(f"{letter}{first}:{letter}{last}")
    ws.add_data_validation(dv)


def _span(ws, r: int, ncols: int) -> int:
    """Merge a title or note line across the table's columns (so it prints inside the page width)."""
    if ncols > 1:
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncols)
    return r + 1


def _header_text(sheet: Sheet) -> str:
    return (sheet.title or sheet.name).replace("&", "&&")[:120]


CHART_CM = (15, 7.5)   # width, height
_PX_PER_CM, _ROW_PX, _DEFAULT_COL_PX = 96 / 2.54, 20, 64


def _chart(ws, sheet: Sheet, head: int, last_row: int, ncols: int) -> tuple[int, int]:
    """The chart (or the sentence saying why there is none) two rows below the table, from column A;
    returns the last row and column it covers, for the print area."""
    ch = sheet.chart
    points = [row for row in sheet.rows if row[ch.value_col] is not None]
    below = last_row + 2
    if len(points) < 2:
        _put(ws, below, 1, f"趋势图需要至少两个数据点，目前只有 {len(points)} 个，未绘制。")
        return below, ncols
    lc = LineChart()
    lc.title, lc.y_axis.title = ch.title, ch.y_title
    lc.width, lc.height = CHART_CM
    lc.legend = None    # one series: its name is the axis title
    lc.x_axis.delete = lc.y_axis.delete = False   # openpyxl leaves the axes hidden otherwise
    n = len(sheet.rows)
    lc.add_data(Reference(ws, min_col=ch.value_col + 1, min_row=head, max_row=head + n), titles_from_data=True)
    lc.set_categories(Reference(ws, min_col=ch.label_col + 1, min_row=head + 1, max_row=head + n))
    ws.add_chart(lc, f"A{below}")
    width_px, col = CHART_CM[0] * _PX_PER_CM, 0
    while width_px > 0:
        col += 1
        w = ws.column_dimensions[get_column_letter(col)].width if col <= ncols else None
        width_px -= int(w * 7 + 5) if w else _DEFAULT_COL_PX
    return below + int(CHART_CM[1] * _PX_PER_CM // _ROW_PX) + 1, max(col, ncols)


def workbook_bytes(sheets: list[Sheet], title: str = "") -> bytes:
    """The workbook of ``sheets`` as deterministic XLSX bytes (same content, same bytes)."""
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for s in sheets:
        name = re.sub(r"[\[\]:*?/\\]", "_", safe_text(s.name).lstrip("'"))[:31] or "Sheet"
        while name in used:
            name = name[:28] + f"_{len(used)}"
        used.add(name)
        _fill_sheet(wb.create_sheet(name), s)
    wb.properties.title = safe_text(title) if title else None
    wb.properties.creator = "dealersync"
    wb.properties.created = wb.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)
    return deterministic_zip(buf.getvalue())


def write_workbook(path: str | Path, sheets: list[Sheet], title: str = "") -> bytes:
    """Write :func:`workbook_bytes` to ``path`` atomically (temporary name, then rename); returns the bytes."""
    data = workbook_bytes(sheets, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip (XLSX) with fixed entry timestamps and document times, entries in name order."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>",
                              b'<dcterms:modified xsi:type="dcterms:W3CDTF">2000-01-01T00:00:00Z</dcterms:modified>',
                              body)
            z.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), body,
                       compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
