"""``max_workbook_cells`` for ``.ods`` and ``.xlsb``: the sheet's used area is counted from the file's own
cells before python-calamine loads it (for an ODS, before it opens the file: it reads every sheet then),
never from a stored dimension (WPS and streaming writers understate it). Files built here byte by byte:
ODS per OpenDocument 1.2, XLSB per [MS-XLSB] records."""
from __future__ import annotations

import random
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import python_calamine as calamine

from dealersync.connectors.readers.workbook import ReadLimits, read_workbook
from dealersync.errors import BadSourceData


def opener_of(path: Path):
    return lambda: open(path, "rb")


# ------------------------------------------------------------------------------------ ODS

def _ods_cell(v, repeat: int = 1) -> str:
    rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    if v is None:
        return f"<table:table-cell{rep}/>"
    if isinstance(v, str):
        return f'<table:table-cell{rep} office:value-type="string"><text:p>{v}</text:p></table:table-cell>'
    return f'<table:table-cell{rep} office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'


def _ods_row(cells: str, repeat: int = 1) -> str:
    rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{rep}>{cells}</table:table-row>"


def ods(path: Path, sheets: dict[str, str]) -> Path:
    tables = "".join(f'<table:table table:name="{n}">{rows}</table:table>' for n, rows in sheets.items())
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", manifest)
    return path


HEAD = _ods_row(_ods_cell("客户编号") + _ods_cell("客户名称"))


def test_an_ods_repeating_a_value_is_refused_before_calamine_opens_it(tmp_path):
    """200,000 rows x 40 columns of one repeated value: 1 KB of XML, 8 million cells once expanded."""
    path = ods(tmp_path / "GZ0012_CUSTOMER_20261103.ods",
               {"客户": HEAD + _ods_row(_ods_cell(1, repeat=40), repeat=200_000)})
    assert path.stat().st_size < 2_000
    code = ("import resource, sys\n"
            "from dealersync.connectors.readers.workbook import ReadLimits, read_workbook\n"
            "from dealersync.errors import BadSourceData\n"
            "try:\n    read_workbook(lambda: open(sys.argv[1], 'rb'), 'x.ods', 'ods',"
            " limits=ReadLimits(max_workbook_cells=int(sys.argv[2])))\n    print('LOADED')\n"
            "except BadSourceData as e:\n    print(e.reason, e)\n"
            # the child's own peak (VmHWM): ru_maxrss survives exec and reports an xdist worker's peak
            "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path), "50000"], capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("TOO_LARGE") and "200,001 rows x 40 columns" in lines[0], out
    assert "sheet '客户'" in lines[0] and "max_workbook_cells" in lines[0]
    refused_mb = int(lines[-1])
    out = subprocess.run([sys.executable, "-c", code, str(path), "100000000"], capture_output=True, text=True,
                         timeout=300)
    loaded_mb = int(out.stdout.strip().splitlines()[-1])
    assert out.stdout.startswith("LOADED") and loaded_mb > refused_mb + 100, (refused_mb, loaded_mb)


def test_an_ods_over_the_limit_in_another_sheet_is_refused_naming_it(tmp_path):
    path = ods(tmp_path / "GZ0012_CUSTOMER_20261103.ods",
               {"客户": HEAD + _ods_row(_ods_cell("C1") + _ods_cell("张伟")),
                "列表": _ods_row(_ods_cell("x") + _ods_cell(None, repeat=500) + _ods_cell("y"), repeat=200)})
    with pytest.raises(BadSourceData) as e:
        read_workbook(opener_of(path), path.name, "ods", limits=ReadLimits(max_workbook_cells=100_000))
    assert e.value.reason == "TOO_LARGE" and "sheet '列表'" in str(e.value) and "200 rows x 502 columns" in str(e.value)


def test_empty_repeats_after_the_last_value_count_nothing(tmp_path):
    """LibreOffice writes the formatted rest of a sheet as one empty row repeated a million times."""
    path = ods(tmp_path / "GZ0012_CUSTOMER_20261103.ods",
               {"客户": HEAD + _ods_row(_ods_cell("C1") + _ods_cell("张伟") + _ods_cell(None, repeat=1022))
                + _ods_row(_ods_cell(None, repeat=1024), repeat=1_048_574)})
    book = read_workbook(opener_of(path), path.name, "ods", limits=ReadLimits(max_workbook_cells=1000))
    assert list(book.rows) == [(1, ["客户编号", "客户名称"]), (2, ["C1", "张伟"])]


# ------------------------------------------------------------------------------------ XLSB

def _rec(typ: int, body: bytes = b"") -> bytes:
    head = bytes([typ]) if typ < 128 else bytes([(typ & 0x7F) | 0x80, typ >> 7])
    n, size = len(body), b""
    while True:
        b, n = n & 0x7F, n >> 7
        size += bytes([b | (0x80 if n else 0)])
        if not n:
            return head + size + body


def _wide(s: str) -> bytes:
    return struct.pack("<I", len(s)) + s.encode("utf-16-le")


_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
         'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{}</Relationships>')
_REL = '<Relationship Id="{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{}" Target="{}"/>'


def xlsb(path: Path, rows, dim=(0, 0, 0, 0), sheet: str = "Sheet1") -> Path:
    """An XLSB whose sheet holds ``rows`` ([(row, [(col, value)])], 0-based), with the stored
    dimension ``dim`` (BrtWsDim: first row, last row, first column, last column) whatever it holds."""
    book = _rec(131) + _rec(143) + _rec(156, struct.pack("<II", 0, 1) + _wide("rId1") + _wide(sheet)) \
        + _rec(144) + _rec(132)
    data = [_rec(129), _rec(148, struct.pack("<IIII", *dim)), _rec(145)]
    for r, cells in rows:
        data.append(_rec(0, struct.pack("<IIHBBI", r, 0, 300, 0, 0, 0)))           # BrtRowHdr
        for c, v in cells:
            data.append(_rec(6, struct.pack("<II", c, 0) + _wide(v)) if isinstance(v, str)   # BrtCellSt
                        else _rec(5, struct.pack("<IId", c, 0, float(v))))                  # BrtCellReal
    data += [_rec(146), _rec(130)]
    types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types '
             'xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Override PartName="/xl/workbook.bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/>'
             '<Override PartName="/xl/worksheets/sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", _RELS.format(_REL.format("rId1", "officeDocument", "xl/workbook.bin")))
        z.writestr("xl/workbook.bin", book)
        z.writestr("xl/_rels/workbook.bin.rels", _RELS.format(_REL.format("rId1", "worksheet", "worksheets/sheet1.bin")))
        z.writestr("xl/worksheets/sheet1.bin", b"".join(data))
    return path


def test_the_xlsb_builder_makes_what_calamine_reads(tmp_path):
    path = xlsb(tmp_path / "a.xlsb", [(0, [(0, "客户编号"), (1, "客户名称")]), (1, [(0, "C1"), (1, 12.5)])])
    book = read_workbook(opener_of(path), path.name, "xlsb")
    assert list(book.rows) == [(1, ["客户编号", "客户名称"]), (2, ["C1", "12.5"])]


def test_an_xlsb_far_cell_is_refused_whatever_its_stored_dimension_says(tmp_path):
    path = xlsb(tmp_path / "GZ0012_CUSTOMER_20261103.xlsb",
                [(0, [(0, "客户编号"), (1, "客户名称")]), (1_000_000, [(15_000, 1)])], dim=(0, 1, 0, 1))
    with pytest.raises(BadSourceData) as e:
        read_workbook(opener_of(path), path.name, "xlsb")
    assert e.value.reason == "TOO_LARGE" and "1,000,001 rows x 15,001 columns" in str(e.value)
    assert "sheet 'Sheet1'" in str(e.value)


def test_a_big_xlsb_with_an_understated_dimension_is_refused_under_a_small_limit(tmp_path):
    rows = [(r, [(c, f"C{r}" if c == 0 else r * c) for c in range(5)]) for r in range(30_000)]
    path = xlsb(tmp_path / "GZ0012_CUSTOMER_20261103.xlsb", rows, dim=(0, 10, 0, 2))
    with pytest.raises(BadSourceData) as e:
        read_workbook(opener_of(path), path.name, "xlsb", limits=ReadLimits(max_workbook_cells=100_000))
    assert e.value.reason == "TOO_LARGE" and "20,001 rows x 5 columns" in str(e.value)   # stopped at the limit
    book = read_workbook(opener_of(path), path.name, "xlsb", limits=ReadLimits(max_workbook_cells=150_000))
    assert sum(1 for _ in book.rows) == 30_000


@pytest.mark.parametrize("seed", range(12))
def test_the_counted_area_bounds_what_calamine_loads(tmp_path, seed):
    """Random sparse sheets: the area counted ahead (from the origin) refuses exactly above the area
    calamine then loads (its used area and the rows and columns before it)."""
    rng = random.Random(seed)
    cells = {(rng.randrange(0, 300), rng.randrange(0, 40)): rng.choice(["a", 1.5]) for _ in range(rng.randrange(1, 30))}
    by_row: dict = {}
    for (r, c), v in sorted(cells.items()):
        by_row.setdefault(r, []).append((c, v))
    rows = sorted(by_row.items())
    path_b = xlsb(tmp_path / "s.xlsb", rows)
    ods_rows, last = "", 0
    for r, cs in rows:
        if r > last:
            ods_rows += _ods_row(_ods_cell(None), repeat=r - last)
        line, col = "", 0
        for c, v in cs:
            line += (_ods_cell(None, repeat=c - col) if c > col else "") + _ods_cell(v)
            col = c + 1
        ods_rows += _ods_row(line)
        last = r + 1
    path_o = ods(tmp_path / "s.ods", {"Sheet1": ods_rows})
    for path, kind in ((path_b, "xlsb"), (path_o, "ods")):
        ws = calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Sheet1")
        area = (ws.start[0] + ws.height) * (ws.start[1] + ws.width)
        assert area == (max(r for r, _ in cells) + 1) * (max(c for _, c in cells) + 1)
        read_workbook(opener_of(path), path.name, kind, limits=ReadLimits(max_workbook_cells=area))
        with pytest.raises(BadSourceData):
            read_workbook(opener_of(path), path.name, kind, limits=ReadLimits(max_workbook_cells=area - 1))
