"""Workbooks (``.xlsx`` ``.xlsm`` ``.xls`` ``.xlsb`` ``.ods``) read from their cells, never their metadata.

* The format is told by the content (an OLE container is a legacy BIFF ``.xls``; a zip holding
  ``xl/workbook.xml`` an XLSX / XLSM, ``xl/workbook.bin`` an XLSB, an OpenDocument ``mimetype`` an
  ODS), not by the file name, so a mislabelled file is read on the first try.
* The cells are read by python-calamine (Rust): the stored sheet dimension that WPS and streaming
  writers understate is not consulted; the sheet is the first *visible* worksheet (a hidden
  drop-down list sheet is skipped), or the one a profile names.
* Numbers are taken at Excel's 15 significant digits (``121.00000000000001`` -> ``121``), dates and
  times from the cell types (a date cell is a date whatever its number format).
* Limits (issue #15, settings ``max_workbook_bytes`` / ``max_workbook_cells``): the decompressed size
  of a zip workbook's parts and the cells of the sheet's used area (XLSX, XLSM: the cell references;
  ODS: the rows and cells repeated, up to the last one holding something; XLSB: the cell records,
  never the stored dimension) are checked before the sheet is loaded (calamine holds the used area densely: one far cell costs rows x columns), so a 500 KB
  file cannot take gigabytes; a workbook over a limit is refused with a message naming it.

Sources: ECMA-376 (OOXML), [MS-XLS] (BIFF8), OASIS OpenDocument 1.2; Excel's 15-digit precision
(Microsoft, "Excel specifications and limits").

Over 400 lines on purpose: one reader for five workbook formats, most of it the byte-level preflight
that counts cells before a sheet is loaded (XLSX, XLSB, ODS); each format's part is a few small functions.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import BinaryIO, Callable, Iterator

import python_calamine as calamine

from dealersync.errors import BadSourceData

WORKBOOK_KINDS = ("xlsx", "xlsm", "xls", "xlsb", "ods")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one file may cost before it is refused (issue #15, "Contain the damage").
    ``max_workbook_bytes``: the decompressed parts of a workbook (or the file, for ``.xls``);
    ``max_workbook_cells``: rows x columns of the sheet's used area; ``max_line_bytes``: one CSV line."""
    max_workbook_bytes: int = 256 << 20
    max_workbook_cells: int = 10_000_000
    max_line_bytes: int = 32 << 20


def sniff_kind(head: bytes, opener: Callable[[], BinaryIO]) -> str | None:
    """The workbook format the content holds (``xls``, ``xlsx``, ``xlsm``, ``xlsb``, ``ods``), ``zip``
    for another zip archive, or None when the content is no workbook (text, gzip...)."""
    if head.startswith(OLE_MAGIC):
        return "xls"
    if not head.startswith(ZIP_MAGIC):
        return None
    try:
        with opener() as fh, zipfile.ZipFile(fh) as z:
            names = set(z.namelist())
            if "xl/workbook.bin" in names:
                return "xlsb"
            if "xl/workbook.xml" in names:
                return "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
            if "mimetype" in names and z.read("mimetype").strip() == _ODS_MIME:
                return "ods"
    except (zipfile.BadZipFile, OSError, EOFError):
        return "zip"
    return "zip"


@dataclass
class Workbook:
    """The chosen sheet of an opened workbook: its rows (1-based row number, cells as text)."""
    kind: str
    sheet: str
    rows: Iterator[tuple[int, list[str]]]
    notes: list[str] = field(default_factory=list)   # for the file's warnings (hidden sheets skipped...)
    close: Callable[[], None] = lambda: None


def read_workbook(opener: Callable[[], BinaryIO], name: str, kind: str, *, sheets: list[str] | None = None,
                  limits: ReadLimits = ReadLimits()) -> Workbook:
    """Open the workbook ``opener()`` gives (``name`` for messages, ``kind`` from ``sniff_kind``) and
    choose its sheet: the first of ``sheets`` (names a profile gives) it holds, else the first
    visible worksheet. Raises ``BadSourceData`` naming the file, the sheet and the cause (damaged,
    password-protected, over a limit, no visible sheet)."""
    label = kind.upper()
    if kind == "xls":
        with opener() as fh:
            fh.seek(0, 2)
            size = fh.tell()
        if size > limits.max_workbook_bytes:
            raise _too_large(name, label, size, limits)
    else:
        _check_zip(opener, name, label, limits)
    if kind == "ods":   # calamine reads every sheet of an ODS when it opens the file
        _check_ods_cells(opener, name, limits)
    fh = opener()
    try:
        wb = calamine.CalamineWorkbook.from_filelike(fh)
    except calamine.PasswordError:
        fh.close()
        raise BadSourceData(f"the {label} workbook is password-protected; save it without a password",
                            file=name, reason="NOT_A_TABLE") from None
    except Exception as e:  # damaged container or XML: calamine names the part
        fh.close()
        raise BadSourceData(f"not a readable {label} workbook ({type(e).__name__}: {e})", file=name,
                            reason="NOT_A_TABLE") from None
    fh.close()
    meta = wb.sheets_metadata
    sheet, notes = _choose_sheet(meta, sheets or [], name, label)
    where = f"{name}, sheet {sheet!r}"
    if kind in ("xlsx", "xlsm"):
        _check_xlsx_cells(opener, sheet, meta, where, limits)
    elif kind == "xlsb":
        _check_xlsb_cells(opener, sheet, where, limits)
    try:
        ws = wb.get_sheet_by_name(sheet)
    except Exception as e:
        raise BadSourceData(f"the sheet cannot be read ({type(e).__name__}: {e})", file=where,
                            reason="NOT_A_TABLE") from None
    cells = ws.height * ws.width
    if cells > limits.max_workbook_cells:   # .xls (its size is bounded by max_workbook_bytes), or a scan's miss
        raise _too_many_cells(where, ws.height, ws.width, limits)
    first_row = ws.start[0] + 1 if ws.start else 1
    first_col = ws.start[1] if ws.start else 0

    def rows() -> Iterator[tuple[int, list[str]]]:
        pad = [""] * first_col
        for i, row in enumerate(ws.iter_rows(), start=first_row):
            yield i, pad + [cell_to_str(v) for v in row]
    return Workbook(kind, sheet, rows(), notes, wb.close)


def _choose_sheet(meta, wanted: list[str], name: str, label: str) -> tuple[str, list[str]]:
    worksheets = [m for m in meta if m.typ == calamine.SheetTypeEnum.WorkSheet]
    by_key = {_sheet_key(m.name): m.name for m in worksheets}
    for w in wanted:
        if _sheet_key(w) in by_key:
            return by_key[_sheet_key(w)], []
    visible = [m for m in worksheets if m.visible == calamine.SheetVisibleEnum.Visible]
    if not visible:
        raise BadSourceData(f"the {label} workbook has no visible worksheet (sheets: "
                            f"{', '.join(repr(m.name) for m in meta) or 'none'})", file=name, reason="NOT_A_TABLE")
    chosen = visible[0].name
    notes = []
    if wanted:
        notes.append(f"sheet {', '.join(map(repr, wanted))} named by the profile is absent; read sheet {chosen!r}")
    hidden = [m.name for m in worksheets if m.visible != calamine.SheetVisibleEnum.Visible]
    if hidden:
        notes.append(f"read sheet {chosen!r}, the first visible one; hidden sheet(s) "
                     f"{', '.join(map(repr, hidden))} skipped")
    elif len(worksheets) > 1:
        notes.append(f"read sheet {chosen!r}, the first of {len(worksheets)}")
    return chosen, notes


def _sheet_key(s: str) -> str:
    return "".join(str(s).split()).casefold()


def _check_zip(opener, name: str, label: str, limits: ReadLimits) -> None:
    """The declared decompressed size of every part, then the real one, streamed in bounded memory:
    a part whose data inflates past its declared size fails its CRC here, before calamine reads it."""
    try:
        with opener() as fh, zipfile.ZipFile(fh) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > limits.max_workbook_bytes:
                raise _too_large(name, label, total, limits)
            for info in z.infolist():
                with z.open(info) as part:
                    while part.read(4 << 20):
                        pass
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:
        raise BadSourceData(f"not a readable {label} workbook (damaged zip container: {e})", file=name,
                            reason="NOT_A_TABLE") from None


_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")
_ROW_NUMBER = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr=\"([0-9]+)\"")
_WIDE_COLUMN = re.compile(rb"\sr=\"([A-Z]{2,3})[0-9]+\"")
_LETTERS = [bytes([c]) for c in range(ord("Z"), ord("A") - 1, -1)]


def _column_number(letters: bytes) -> int:
    n = 0
    for c in letters:
        n = n * 26 + c - 64
    return n


def _check_xlsx_cells(opener, sheet: str, meta, where: str, limits: ReadLimits) -> None:
    """Rows x columns of the sheet's used area, from the cells' own references (``r="XFD1048576"``),
    streamed from the sheet's XML before calamine allocates the area."""
    with opener() as fh, zipfile.ZipFile(fh) as z:
        part = _sheet_part(z, sheet)
        if part is None:
            return
        rows = max_row = max_col = cells = 0
        tail = b""
        with z.open(part) as x:
            while True:
                chunk = x.read(4 << 20)
                if not chunk:
                    break
                data = tail + chunk
                rows += len(_ROW_TAG.findall(chunk))
                cells += chunk.count(b"<c ") + chunk.count(b"<c>")
                for m in _ROW_NUMBER.finditer(data):
                    max_row = max(max_row, int(m[1]))
                for m in _WIDE_COLUMN.finditer(data):
                    max_col = max(max_col, _column_number(m[1]))
                if max_col < 26:
                    for i, letter in enumerate(_LETTERS):   # the widest single-letter column, by a C scan
                        if b' r="' + letter in data:
                            max_col = max(max_col, 26 - i)
                            break
                tail = data[-64:]
                if max(max(rows, max_row) * max(max_col, 1), cells) > limits.max_workbook_cells:
                    raise _too_many_cells(where, max(rows, max_row), max_col, limits)


_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0|"
_OFFICE_NS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0|"


def _check_ods_cells(opener, name: str, limits: ReadLimits) -> None:
    """Rows x columns of the used area of every sheet of an ODS (calamine reads them all when it
    opens the file): up to the last cell holding a value or text, rows and cells repeated by
    ``number-rows-repeated`` / ``number-columns-repeated`` counted as many times, from ``content.xml``
    streamed through expat before calamine expands the repeats. A few bytes saying "this value, a
    million times" are refused here; trailing empty repeats (LibreOffice writes them for formatted
    areas) hold nothing and count nothing."""
    import xml.parsers.expat
    t = dict(depth=0, sheet="", row=0, rows=1, col=0, cols=1, has_cell=False, in_cell=0, max_row=0, max_col=0)

    def start(tag, attrs):
        if tag == _TABLE_NS + "table":
            t["depth"] += 1
            if t["depth"] == 1:
                t.update(sheet=attrs.get(_TABLE_NS + "name", ""), row=0, max_row=0, max_col=0)
            return
        if t["depth"] != 1:
            return
        if t["in_cell"]:
            t["has_cell"] = True           # a paragraph (text:p) or any other content
            t["in_cell"] += 1
        elif tag == _TABLE_NS + "table-row":
            t["rows"] = _repeats(attrs.get(_TABLE_NS + "number-rows-repeated"))
            t["col"] = 0
        elif tag in (_TABLE_NS + "table-cell", _TABLE_NS + "covered-table-cell"):
            t["cols"] = _repeats(attrs.get(_TABLE_NS + "number-columns-repeated"))
            t["has_cell"] = _OFFICE_NS + "value-type" in attrs
            t["in_cell"] = 1

    def end(tag):
        if tag == _TABLE_NS + "table":
            t["depth"] -= 1
            return
        if t["depth"] != 1:
            return
        if t["in_cell"] > 1:
            t["in_cell"] -= 1
        elif t["in_cell"] == 1:
            t["in_cell"] = 0
            if t["has_cell"]:
                t["max_col"] = max(t["max_col"], t["col"] + t["cols"])
                t["max_row"] = max(t["max_row"], t["row"] + t["rows"])
                if t["max_row"] * t["max_col"] > limits.max_workbook_cells:
                    raise _too_many_cells(f"{name}, sheet {t['sheet']!r}", t["max_row"], t["max_col"], limits)
            t["col"] += t["cols"]
        elif tag == _TABLE_NS + "table-row":
            t["row"] += t["rows"]

    p = xml.parsers.expat.ParserCreate(namespace_separator="|")
    p.StartElementHandler, p.EndElementHandler = start, end
    try:
        with opener() as fh, zipfile.ZipFile(fh) as z, z.open("content.xml") as x:
            while chunk := x.read(1 << 20):
                p.Parse(chunk, False)
            p.Parse(b"", True)
    except (KeyError, xml.parsers.expat.ExpatError):
        return   # no content.xml, or damaged XML: calamine says what is wrong


def _repeats(v: str | None) -> int:
    try:
        return max(1, int(v)) if v else 1
    except ValueError:
        return 1


_XLSB_CELLS = frozenset(range(1, 12)) | {62}        # BrtCellBlank ... BrtFmlaError, BrtCellRString: column first
_XLSB_SHORT_CELLS = frozenset(range(12, 19))        # BrtShortBlank ... BrtShortIsst: the next column


def _check_xlsb_cells(opener, sheet: str, where: str, limits: ReadLimits) -> None:
    """Rows x columns of an XLSB sheet's used area from its cell records ([MS-XLSB] 2.4: BrtRowHdr
    gives the row of the cells after it, each cell record its column), walked record by record before
    calamine loads the sheet. The stored dimension (BrtWsDim) is not consulted: WPS and streaming
    writers understate it. Stops as soon as the area passes the limit."""
    import struct
    with opener() as fh, zipfile.ZipFile(fh) as z:
        part = _xlsb_sheet_part(z, sheet)
        if part is None:
            return
        max_row = max_col = 0
        row = col = -1
        buf, pos = b"", 0
        with z.open(part) as x:
            eof = False
            while True:
                if len(buf) - pos < 16 and not eof:   # a header and a cell's first bytes, at least
                    more = x.read(4 << 20)
                    eof = not more
                    buf, pos = buf[pos:] + more, 0
                if pos >= len(buf):
                    break
                start = pos
                typ, size, pos = _xlsb_record_header(buf, pos)
                body = buf[pos:pos + 4] if pos + 4 <= len(buf) else b""
                if typ == 0 and len(body) == 4:                     # BrtRowHdr: rw
                    row, col = struct.unpack_from("<I", body)[0], -1
                elif (typ in _XLSB_CELLS and len(body) == 4) or typ in _XLSB_SHORT_CELLS:
                    col = struct.unpack_from("<I", body)[0] if typ in _XLSB_CELLS else col + 1
                    if row + 1 > max_row or col + 1 > max_col:
                        max_row, max_col = max(max_row, row + 1), max(max_col, col + 1)
                        if max_row * max_col > limits.max_workbook_cells:
                            raise _too_many_cells(where, max_row, max_col, limits)
                if pos + size > len(buf):                           # a long record: skip it in the stream
                    skip = pos + size - len(buf)
                    buf, pos = b"", 0
                    while skip > 0:
                        got = x.read(min(skip, 4 << 20))
                        if not got:
                            return
                        skip -= len(got)
                    continue
                pos += size
                if pos == start:
                    break


def _xlsb_record_header(buf: bytes, pos: int) -> tuple[int, int, int]:
    """The BIFF12 record header at ``pos``: (record type: 1-2 bytes of 7 bits, body size: 1-4 bytes of
    7 bits, the position of the body). A header cut by the end of ``buf`` gives what was there, its
    position at the end."""
    b0 = buf[pos]
    typ, pos = b0 & 0x7F, pos + 1
    if b0 & 0x80 and pos < len(buf):
        typ |= (buf[pos] & 0x7F) << 7
        pos += 1
    size = shift = 0
    for _ in range(4):
        if pos >= len(buf):
            break
        b = buf[pos]
        pos += 1
        size |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return typ, size, pos


def _xlsb_sheet_part(z: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip part of the XLSB worksheet named ``sheet``: its BrtBundleSh record in workbook.bin
    (hsState, iTabID, strRelID, strName) -> the relationship -> the part."""
    import struct
    try:
        wb = z.read("xl/workbook.bin")
        rels = z.read("xl/_rels/workbook.bin.rels").decode("utf-8", "replace")
    except KeyError:
        return None
    rid, pos = None, 0
    while pos < len(wb):
        typ, size, pos = _xlsb_record_header(wb, pos)
        body = wb[pos:pos + size]
        pos += size
        if typ == 156 and len(body) >= 12:                           # BrtBundleSh
            try:
                n = struct.unpack_from("<I", body, 8)[0]
                rel = body[12:12 + 2 * n].decode("utf-16-le")
                m = struct.unpack_from("<I", body, 12 + 2 * n)[0]
                name = body[16 + 2 * n:16 + 2 * n + 2 * m].decode("utf-16-le")
            except (struct.error, UnicodeDecodeError):
                continue
            if name == sheet:
                rid = rel
                break
    for m in re.finditer(r"<(?:\w+:)?Relationship\b([^>]*)>", rels):
        attrs = dict(re.findall(r"([\w:]+)=\"([^\"]*)\"", m[1]))
        if rid is not None and attrs.get("Id") == rid:
            target = attrs.get("Target", "").lstrip("/")
            return target if target.startswith("xl/") else "xl/" + target
    return None


def _sheet_part(z: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip part of the worksheet named ``sheet`` (workbook.xml -> its relationship -> the part)."""
    try:
        wb = z.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except KeyError:
        return None
    rid = None
    for m in re.finditer(r"<(?:\w+:)?sheet\b([^>]*)>", wb):
        attrs = dict(re.findall(r"([\w:]+)=\"([^\"]*)\"", m[1]))
        if _unescape(attrs.get("name", "")) == sheet:
            rid = next((v for k, v in attrs.items() if k.endswith(":id")), None)
    for m in re.finditer(r"<(?:\w+:)?Relationship\b([^>]*)>", rels):
        attrs = dict(re.findall(r"([\w:]+)=\"([^\"]*)\"", m[1]))
        if attrs.get("Id") == rid:
            target = attrs.get("Target", "").lstrip("/")
            return target if target.startswith("xl/") else "xl/" + target
    return None


def _unescape(s: str) -> str:
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def _too_large(name: str, label: str, size: int, limits: ReadLimits) -> BadSourceData:
    return BadSourceData(f"the {label} workbook holds {size:,} bytes once decompressed, over the limit of "
                         f"{limits.max_workbook_bytes:,} (setting max_workbook_bytes); the file is refused",
                         file=name, reason="TOO_LARGE")


def _too_many_cells(where: str, rows: int, cols: int, limits: ReadLimits) -> BadSourceData:
    return BadSourceData(f"the sheet's used area is {rows:,} rows x {cols:,} columns, over the limit of "
                         f"{limits.max_workbook_cells:,} cells (setting max_workbook_cells); the file is refused",
                         file=where, reason="TOO_LARGE")


# ------------------------------------------------------------------------------------ cells

def number_text(v: float) -> str:
    """A number as Excel shows it: 15 significant digits (``121.00000000000001`` -> ``121``,
    ``3479.9999999999995`` -> ``3480``); scientific form where Excel uses it (``4.40106199001011E+17``)."""
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    t = f"{v:.15g}"
    if "e" in t:
        mantissa, exp = t.split("e")
        return f"{mantissa}E{exp[0]}{exp[1:].lstrip('0') or '0'}"
    return "0" if t == "-0" else t


def cell_to_str(v) -> str:
    """A workbook cell as the text a person would have typed: numbers at 15 significant digits,
    dates ``YYYY-MM-DD``, date-times ``YYYY-MM-DD HH:MM:SS`` (to the nearest millisecond, then the
    fraction dropped, as the CSV path does), times ``HH:MM:SS``, booleans ``1`` / ``0``."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, datetime):
        v = _to_millisecond(v)
        return v.strftime("%Y-%m-%d") if v.time() == time(0) else v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, time):
        return v.strftime("%H:%M:%S")
    if isinstance(v, timedelta):
        return number_text(v.total_seconds() / 86400)
    if isinstance(v, float):
        return number_text(v)
    if isinstance(v, int):
        return number_text(float(v)) if abs(v) >= 10 ** 15 else str(v)
    return str(v)


def _to_millisecond(v: datetime) -> datetime:
    if not v.microsecond:
        return v
    ms = round(v.microsecond / 1000)
    return v.replace(microsecond=0) + timedelta(milliseconds=ms)
