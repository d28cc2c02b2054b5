"""Reading DMS / OEM export files: CSV (GB18030 or UTF-8, optionally gzipped) and XLSX.

Streams: rows come out in chunks, so memory does not grow with file size. Encoding is sniffed
from the bytes, not trusted from the profile (files are mislabelled both ways); a line that does
not decode in the file's encoding is tried in the other one, and cells whose bytes decode in
neither keep a marker (U+FFFD) so the validator can name the row and column.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Callable, Iterator

from dealersync.errors import BadSourceData

EXPORT_SUFFIXES = (".csv", ".csv.gz", ".xlsx")
FILE_NAME_RE = re.compile(
    r"^(?P<dealer>[A-Za-z0-9]+)_(?P<feed>[A-Za-z]+)_(?P<date>\d{8})(?:_(?P<seq>\d+))?\.(?P<ext>csv\.gz|csv|xlsx)$",
    re.IGNORECASE)
UNDECODABLE = "\ufffd"
_SNIFF_BYTES = 1 << 20
_BLOCK_BYTES = 4 << 20
csv.field_size_limit(1 << 22)   # 4 MB: no real cell is larger; an unclosed quote hits it


@dataclass
class FileName:
    dealer: str | None
    feed_token: str | None
    business_date: date | None
    seq: int | None


def parse_file_name(name: str) -> FileName:
    """``GZ0012_RO_20261103_2.csv`` -> dealer GZ0012, feed RO, 2026-11-03, seq 2."""
    m = FILE_NAME_RE.match(Path(name).name)
    if not m:
        return FileName(None, None, None, None)
    try:
        d = datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        d = None
    return FileName(m["dealer"].upper(), m["feed"].upper(), d, int(m["seq"]) if m["seq"] else None)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".xlsx"):
        return "xlsx"
    if name.endswith(".csv.gz") or name.endswith(".gz"):
        return "csv.gz"
    return "csv"


# ------------------------------------------------------------------------------------ CSV

def _open_binary(path: Path, kind: str):
    return gzip.open(path, "rb") if kind == "csv.gz" else open(path, "rb")


def sniff_encoding(sample: bytes, complete: bool = False) -> str:
    """UTF-8 (``utf-8-sig`` with a BOM) or GB18030, whichever decodes more of the sample's
    non-ASCII lines; a tie goes to UTF-8 (GBK text is almost never valid UTF-8)."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    lines = sample.split(b"\n")
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut by the sample boundary
    lines = [ln for ln in lines if re.search(rb"[\x80-\xff]", ln)]
    ok_u = sum(_decodes(ln, "utf-8") for ln in lines)
    ok_g = sum(_decodes(ln, "gb18030") for ln in lines)
    return "utf-8" if ok_u >= ok_g else "gb18030"


def _decodes(b: bytes, enc: str) -> bool:
    try:
        b.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


@dataclass
class DecodeStats:
    lines: int = 0
    fallback_lines: int = 0      # decoded with the other encoding
    undecodable_lines: int = 0   # some bytes in neither encoding


def _decode_line(b: bytes, enc: str, other: str, stats: DecodeStats) -> str:
    try:
        return b.decode(other)
    except UnicodeDecodeError:
        pass
    stats.undecodable_lines += 1
    return b.decode(enc, errors="replace")


def decoded_lines(fh, encoding: str, stats: DecodeStats) -> Iterator[str]:
    """Yield text lines (with their line ends) from a binary stream, block by block."""
    enc = "utf-8" if encoding == "utf-8-sig" else encoding
    other = "gb18030" if enc == "utf-8" else "utf-8"
    rest, first = b"", True
    while True:
        data = fh.read(_BLOCK_BYTES)
        if data:
            buf = rest + data
            cut = buf.rfind(b"\n")
            cut = cut if cut >= 0 else buf.rfind(b"\r")
            if cut < 0:
                rest = buf
                continue
            block, rest = buf[:cut + 1], buf[cut + 1:]
        else:
            block, rest = rest, b""
            if not block:
                return
        if first:
            block = block[3:] if block.startswith(b"\xef\xbb\xbf") else block
            first = False
        try:
            lines = list(io.StringIO(block.decode(enc), newline=""))
            stats.lines += len(lines)
            yield from lines
        except UnicodeDecodeError:
            for raw in block.splitlines(keepends=True):
                stats.lines += 1
                try:
                    yield raw.decode(enc)
                except UnicodeDecodeError:
                    stats.fallback_lines += 1
                    yield _decode_line(raw, enc, other, stats)
        if not data:
            return


# ------------------------------------------------------------------------------------ cells

def cell_to_str(v) -> str:
    """An XLSX cell as the text a person would have typed."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d") if v.time() == time(0) else v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v).upper() if "e" in repr(v) else repr(v)
    return str(v)


# ------------------------------------------------------------------------------------ reader

@dataclass
class Table:
    """An opened export: header row found, data rows to stream."""
    path: Path
    kind: str
    encoding: str | None
    header: list[str]
    header_row: int
    title_rows: list[int] = field(default_factory=list)
    stats: DecodeStats = field(default_factory=DecodeStats)
    _rows: Iterator | None = None
    _closer: Callable[[], None] | None = None

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(1-based row number in the file, cells) for every non-blank row after the header."""
        assert self._rows is not None
        for rownum, cells in self._rows:
            if "".join(cells).strip():
                yield rownum, cells

    def close(self):
        if self._closer:
            self._closer()


MAX_RECORD_LINES = 200   # a record spanning more physical lines is an unclosed quote, not an address


def _csv_rows(fh, encoding: str, stats: DecodeStats, name: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(decoded_lines(fh, encoding, stats))
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise _unclosed_quote(name, start, str(e)) from None
        if reader.line_num - start >= MAX_RECORD_LINES:
            raise _unclosed_quote(name, start, f"one record runs over lines {start}-{reader.line_num}")
        yield start, cells
        start = reader.line_num + 1


def _unclosed_quote(name: str, line: int, detail: str) -> BadSourceData:
    return BadSourceData(f"a quoted value opened at line {line} is never closed ({detail}); the rows after it "
                         "cannot be told apart, so the file is rejected", file=name, row=line, reason="UNCLOSED_QUOTE")


def _xlsx_rows(path: Path) -> tuple[Iterator[tuple[int, list[str]]], Callable[[], None]]:
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zip or XML damaged
        raise BadSourceData(f"not a readable XLSX workbook ({type(e).__name__}: {e})", file=path.name,
                            reason="NOT_A_TABLE") from None
    ws = wb.worksheets[0]

    def gen():
        for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield i, [cell_to_str(v) for v in row]
    return gen(), wb.close


def open_table(path: Path, header_score, *, max_header_scan: int = 15) -> Table:
    """Open ``path`` and find its header row: the first of the first rows with the best
    ``header_score(cells)``; rows above it are title rows."""
    path = Path(path)
    kind = file_kind(path)
    stats = DecodeStats()
    closer = None
    if kind == "xlsx":
        if not zipfile.is_zipfile(path):
            raise BadSourceData("not an XLSX workbook (no zip container)", file=path.name, reason="NOT_A_TABLE")
        rows, closer = _xlsx_rows(path)
        encoding = None
    else:
        fh = _open_binary(path, kind)
        try:
            sample = fh.read(_SNIFF_BYTES)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            fh.close()
            raise BadSourceData(f"cannot read file: {e}", file=path.name, reason="NOT_A_TABLE") from None
        if b"\x00" in sample[:65536]:
            fh.close()
            raise BadSourceData("binary content (NUL bytes): not a CSV file", file=path.name, reason="NOT_A_TABLE")
        if sample[:2] == b"PK" and zipfile.is_zipfile(path):
            fh.close()
            raise BadSourceData("this is an XLSX/zip file named .csv", file=path.name, reason="NOT_A_TABLE")
        encoding = sniff_encoding(sample, complete=len(sample) < _SNIFF_BYTES)
        _check_decodable(sample, encoding, path)
        fh.close()
        fh = _open_binary(path, kind)
        rows = _csv_rows(fh, encoding, stats, path.name)
        closer = fh.close

    head: list[tuple[int, list[str]]] = []
    for item in rows:
        if any(c.strip() for c in item[1]):
            head.append(item)
        if len(head) >= max_header_scan:
            break
    if not head:
        if closer:
            closer()
        raise BadSourceData("the file is empty", file=path.name, reason="EMPTY_FILE")
    scores = [header_score(cells) for _, cells in head]
    best = max(range(len(head)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        if closer:
            closer()
        raise BadSourceData("no header row with known column names found in the first rows",
                            file=path.name, row=head[0][0], reason="NO_HEADER")
    header_row, header = head[best]

    def chained():
        yield from head[best + 1:]
        yield from rows

    return Table(path, kind, encoding, [c.strip() for c in header], header_row,
                 [r for r, _ in head[:best]], stats, chained(), closer)


def _check_decodable(sample: bytes, encoding: str, path: Path) -> None:
    """Reject a file whose encoding is unreadable everywhere (most lines in neither encoding)."""
    lines = [ln for ln in sample.split(b"\n")[:2000] if ln.strip()]
    if len(sample) == _SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    if not lines:
        return
    enc = "utf-8" if encoding == "utf-8-sig" else encoding
    bad = sum(1 for ln in lines if not (_decodes(ln, enc) or _decodes(ln, "utf-8") or _decodes(ln, "gb18030")))
    if bad > len(lines) / 2:
        raise BadSourceData(f"unreadable encoding: {bad} of the first {len(lines)} lines are neither "
                            "UTF-8 nor GB18030", file=path.name, reason="BAD_ENCODING")
