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
import itertools
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dealersync.errors import BadSourceData

from .hashing import HashingReader
from dealersync.schemas.cells import value_bytes

EXPORT_SUFFIXES = (".csv", ".csv.gz", ".xlsx")
FILE_NAME_RE = re.compile(
    r"^(?P<dealer>[A-Za-z0-9]+)_(?P<feed>[A-Za-z]+)_(?P<date>\d{8})(?:_(?P<seq>\d+))?\.(?P<ext>csv\.gz|csv|xlsx)$",
    re.IGNORECASE)
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

def _open_binary(path: Path, kind: str, hasher: HashingReader | None = None):
    if hasher is not None:
        return gzip.GzipFile(fileobj=hasher, mode="rb") if kind == "csv.gz" else hasher
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


def _other(enc: str) -> str:
    return "gb18030" if enc == "utf-8" else "utf-8"


def decode_block(block: bytes, enc: str, stats: DecodeStats) -> str:
    """Decode a block of whole lines: in one call when it decodes cleanly, else line by line, a line
    that does not decode in ``enc`` tried in the other encoding, then with U+FFFD markers."""
    try:
        text = block.decode(enc)
        stats.lines += text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return text
    except UnicodeDecodeError:
        pass
    out = []
    for raw in block.splitlines(keepends=True):
        stats.lines += 1
        try:
            out.append(raw.decode(enc))
        except UnicodeDecodeError:
            stats.fallback_lines += 1
            out.append(_decode_line(raw, enc, _other(enc), stats))
    return "".join(out)


def raw_blocks(fh, block_bytes: int = _BLOCK_BYTES, first_bytes: int | None = None) -> Iterator[bytes]:
    """Blocks of whole lines (cut after a line end) from a binary stream, the UTF-8 BOM removed.
    ``first_bytes``: the first read's size, doubling up to ``block_bytes`` (the first rows come soon)."""
    rest, first = b"", True
    size = min(first_bytes or block_bytes, block_bytes)
    while True:
        data = fh.read(size)
        size = min(size * 2, block_bytes)
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
        yield block
        if not data:
            return


def _codec(encoding: str) -> str:
    """The codec that decodes a file's lines (its BOM is removed with the first block)."""
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _lines(blocks, enc: str, stats: DecodeStats) -> Iterator[str]:
    """Text lines (with their line ends) of blocks of whole lines."""
    for block in blocks:
        yield from io.StringIO(decode_block(block, enc, stats), newline="")


def decoded_lines(fh, encoding: str, stats: DecodeStats) -> Iterator[str]:
    """Yield text lines (with their line ends) from a binary stream, block by block."""
    return _lines(raw_blocks(fh), _codec(encoding), stats)


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
class Batch:
    """Rows of a table as columns. ``rownums``: the 1-based row of each in the file; ``columns``: one
    Arrow string array per header position; ``bad``: position -> (reason, message) for rows whose
    structure is broken (their columns are padded or cut to the header's width)."""
    rownums: np.ndarray
    columns: list
    bad: dict[int, tuple[str, str]] = field(default_factory=dict)
    rows: list[list[str]] | None = None   # the rows as read, when they were read one by one

    def __len__(self) -> int:
        return len(self.rownums)

    def cells(self, pos: int) -> list[str]:
        """Row ``pos`` as read."""
        return self.cells_of([pos])[0]

    def cells_of(self, positions: list[int]) -> list[list[str]]:
        """Rows ``positions`` as read."""
        if self.rows is not None:
            return [self.rows[p] for p in positions]
        return _cells(self.columns, positions)


def _cells(columns: list, positions) -> list[list[str]]:
    """Rows ``positions`` of Arrow string ``columns``, blank for null."""
    if not len(positions):
        return []
    idx = pa.array(positions, type=pa.int64())
    return [[v or "" for v in row] for row in zip(*(c.take(idx).to_pylist() for c in columns))]


TOTALS_WORDS = ("合计", "总计", "小计", "共计")


def is_totals_row(cells: list[str]) -> bool:
    """The trailing ``合计`` row: its first non-blank cell starts with a totals word."""
    if cells and cells[0]:
        return "计" in cells[0] and cells[0].replace(" ", "").startswith(TOTALS_WORDS)
    first = next((c.strip() for c in cells if c and c.strip()), "")
    return first.replace(" ", "").startswith(TOTALS_WORDS)


def rows_batch(recs: list[tuple[int, list[str]]], width: int) -> Batch:
    """A batch from rows read one by one; rows of the wrong width and totals rows marked bad."""
    rownums = np.fromiter((r for r, _ in recs), dtype=np.int64, count=len(recs))
    cells = [c for _, c in recs]
    bad: dict[int, tuple[str, str]] = {}
    for i, c in enumerate(cells):
        if is_totals_row(c):
            bad[i] = ("TOTALS_ROW", "totals row (合计) at the end of the export, not a record")
        elif len(c) != width:
            if len(c) > width and not any(x.strip() for x in c[width:]):
                cells[i] = c[:width]  # trailing empty cells: harmless
            else:
                bad[i] = ("FIELD_COUNT", f"row has {len(c)} fields, the header has {width}")
    # transpose in C: rows of the header's width as they are, others padded / cut (quarantined anyway)
    even = cells if not bad else [c if len(c) == width else (c + [""] * width)[:width] for c in cells]
    columns = list(zip(*even)) if even else [()] * width
    return Batch(rownums, [pa.array(col, type=pa.large_string()) for col in columns], bad, cells)


def _totals(columns: list, first=None) -> dict[int, tuple[str, str]]:
    """Totals rows of a columnar batch (vectorised on the first column; row by row where it is blank).
    ``first``: the first column trimmed, when the caller has it."""
    first = pc.utf8_trim_whitespace(columns[0]) if first is None else first
    ji = np.flatnonzero(pc.fill_null(pc.match_substring(first, "计"), False).to_numpy(zero_copy_only=False))
    hit = pc.match_substring_regex(pc.replace_substring(first.take(pa.array(ji, pa.int64())), " ", ""),
                                   "^(" + "|".join(TOTALS_WORDS) + ")").to_numpy(zero_copy_only=False)
    out = {int(i): ("TOTALS_ROW", "totals row (合计) at the end of the export, not a record") for i in ji[hit]}
    cand = _where_blank(first)   # first cell blank: the first non-blank one decides, if any holds 计
    if len(cand):
        idx = pa.array(cand)
        ji = np.zeros(len(cand), dtype=bool)
        for c in columns[1:]:
            ji |= pc.fill_null(pc.match_substring(c.take(idx), "计"), False).to_numpy(zero_copy_only=False)
        hits = cand[ji]
        for i, cells in zip(hits, _cells(columns, hits)):
            if is_totals_row(cells):
                out[int(i)] = ("TOTALS_ROW", "totals row (合计) at the end of the export, not a record")
    return out


def _where_blank(trimmed) -> np.ndarray:
    return np.flatnonzero(pc.equal(trimmed, "").to_numpy(zero_copy_only=False))


def _blank_rows(columns: list, first) -> np.ndarray:
    """Positions of the rows whose cells are all blank: only rows with a blank first cell are looked at
    further, so a batch of ordinary rows costs one column's check."""
    cand = _where_blank(first)
    if len(cand) == 0:
        return cand
    idx = pa.array(cand)
    blank = np.ones(len(cand), dtype=bool)
    for c in columns[1:]:
        blank &= pc.equal(pc.utf8_trim_whitespace(c.take(idx)), "").to_numpy(zero_copy_only=False)
    return cand[blank]


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
    _data_line: int | None = None   # CSV: the first line after the header record
    _hasher: HashingReader | None = None   # CSV: the full pass's bytes
    _digest: str | None = None             # XLSX: the bytes the workbook was read from
    _size_read: int | None = None

    def digest(self) -> tuple[str, int]:
        """(SHA-256 hex, byte count) of the file's bytes as this reader read them: the full pass of
        ``batches()`` read to its end (the rest is read if the pass stopped early)."""
        if self._digest is not None:
            return self._digest, self._size_read or 0
        if self._hasher is None:
            self._hasher = HashingReader(open(self.path, "rb"))
        digest = self._hasher.finish()
        self._hasher.close()
        return digest, self._hasher.bytes_read

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(1-based row number in the file, cells) for every non-blank row after the header."""
        assert self._rows is not None
        for rownum, cells in self._rows:
            if "".join(cells).strip():
                yield rownum, cells

    def batches(self, rows: int) -> Iterator[Batch]:
        """The non-blank rows after the header, at most ``rows`` per batch. A CSV is parsed block by
        block in C++ (pyarrow) while its blocks are regular; from the first block that is not (a row of
        the wrong width, a bare CR line end, a quote that does not close in the block) to the end of
        the file, rows are read one by one, so row numbers and faults are exactly those of the
        row reader."""
        if self._data_line is None:
            yield from _batched(self.records(), rows, len(self.header))
            return
        if self._closer:
            self._closer()   # the fast reader opens the file again and decodes it all
        self.stats = DecodeStats()
        self._hasher = HashingReader(open(self.path, "rb"))
        fh = _open_binary(self.path, self.kind, self._hasher)
        hasher = self._hasher

        def closer():
            fh.close()
            hasher.close()
        self._closer = closer
        yield from _csv_batches(fh, self.encoding, self.stats, self.path.name, self._data_line,
                                len(self.header), rows)

    def close(self):
        if self._closer:
            self._closer()


def _batched(records, rows: int, width: int) -> Iterator[Batch]:
    buf = []
    for rec in records:
        buf.append(rec)
        if len(buf) >= rows:
            yield rows_batch(buf, width)
            buf = []
    if buf:
        yield rows_batch(buf, width)


_FAST_BLOCK_BYTES = 8 << 20


def _csv_batches(fh, encoding: str, stats: DecodeStats, name: str, data_line: int, width: int,
                 rows: int) -> Iterator[Batch]:
    enc = _codec(encoding)
    blocks = raw_blocks(fh, _FAST_BLOCK_BYTES, first_bytes=1 << 20)
    pending = _Pending(rows)
    line = 1          # file line number of the first line of ``text``
    if enc in _OWN_BYTES_CODECS:
        rest, line = yield from _own_bytes_batches(blocks, enc, stats, data_line, width, pending)
        if rest is None:
            yield from pending.flush()
            return
        blocks = itertools.chain([rest], blocks)   # from here on, decoded first (see below)
    carry = ""
    for block in blocks:
        text = carry + decode_block(block, enc, stats)
        carry = ""
        if line < data_line:   # the header and the lines above it
            if _bare_cr(text.encode("utf-8")):
                return (yield from _slow_rest(text, line, blocks, enc, stats, name, width, rows, data_line))
            rest, line = _from_line(text, line, data_line)
            if rest is None:
                continue
            text = rest
        parsed = _parse_block(text, line, width)
        if parsed is None or (parsed[1] == 0 and len(text) > 4 * _FAST_BLOCK_BYTES):
            yield from pending.flush()
            return (yield from _slow_rest(text, line, blocks, enc, stats, name, width, rows))
        batch, used, lines = parsed
        if used == 0:   # no record ends in this block (a long quoted value): read on
            carry = text
            continue
        carry, line = text[used:], line + lines
        yield from pending.add(batch)
    yield from pending.flush()
    if carry:
        return (yield from _slow_rest(carry, line, iter(()), enc, stats, name, width, rows))


def _from_line(data, line: int, data_line: int):
    """``data`` (text or bytes starting at file line ``line``) from file line ``data_line`` on, and that
    line number; or (None, the line after ``data``) when ``data`` ends before it."""
    newline = "\n" if isinstance(data, str) else b"\n"
    cut = -1
    for _ in range(data_line - line):
        cut = data.find(newline, cut + 1)
        if cut < 0:
            return None, line + data.count(newline)
    return data[cut + 1:], data_line


_OWN_BYTES_CODECS = ("gb18030", "utf-8")


def _own_bytes_batches(blocks, enc: str, stats: DecodeStats, data_line: int, width: int, pending: "_Pending"):
    """The fast path for GB18030 and UTF-8 files: records are found and parsed in the file's own bytes
    (a comma, a quote, CR and LF are never part of a multi-byte character in either encoding), and
    only the columns that hold non-ASCII bytes are decoded, each in one call. Yields batches into
    ``pending``; returns (bytes not yet read, their first line number) when a block needs the decoded
    path (bytes that do not decode, a bare CR, an irregular row), or (None, line) at the end."""
    line, carry = 1, b""
    for block in blocks:
        data = carry + block
        carry = b""
        if line < data_line:   # the header and the lines above it
            if _bare_cr(data):
                return data, line
            rest, after = _from_line(data, line, data_line)
            stats.lines += after - line
            line = after
            if rest is None:
                continue
            data = rest
        parsed = _parse_records(data, line, width, enc)
        if parsed is None or (parsed[1] == 0 and len(data) > 4 * _FAST_BLOCK_BYTES):
            return data, line
        batch, end, lines = parsed
        if end == 0:   # no record ends in this block (a long quoted value): read on
            carry = data
            continue
        stats.lines += lines
        carry, line = data[end:], line + lines
        yield from pending.add(batch)
    return (carry or None), line


def _decode_columns(columns: list, enc: str) -> list | None:
    """Binary columns in ``enc`` as UTF-8 string columns: ASCII ones as they are, the others decoded
    in one call each (values joined by U+001F, then split again). None when a value does not decode
    (the decoded path then applies its fallback rules) or holds U+001F itself."""
    out = []
    for c in columns:
        _, data = value_bytes(c)
        if not len(data) or data.max() < 0x80:   # ASCII: the same bytes are the UTF-8 text
            out.append(pa.Array.from_buffers(pa.large_string(), len(c), c.buffers(), offset=c.offset))
            continue
        if (data == 0x1F).any():
            return None
        joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, len(c)], pa.int64()), c),
                                pa.scalar(b"\x1f", pa.large_binary()))[0].as_py()
        try:
            text = joined.decode(enc)
        except UnicodeDecodeError:
            return None
        out.append(pc.split_pattern(pa.array([text], pa.large_string()), "\x1f")[0].values)
    return out


class _Pending:
    """Block batches gathered into batches of ``rows`` rows: per-chunk costs downstream (validation,
    the COPY round trip) are paid per chunk, not per block. The first batch is a quarter of ``rows``
    and leaves as soon as it is there, so the writer starts early; a full batch leaves only once the
    next block shows the file goes on, and at the end the rows left go as one part and a last part of
    at most a quarter of ``rows``, so the load's final write, which nothing overlaps, is a short one."""

    def __init__(self, rows: int):
        self.rows, self.parts, self.n, self.started = rows, [], 0, False

    def _size(self) -> int:
        return self.rows if self.started else max(self.rows // 4, 1)

    def add(self, batch: Batch) -> Iterator[Batch]:
        if not len(batch):
            return
        while self.n >= self._size():   # more rows follow: these are not the file's last
            yield from self._take(self._size())
        self.parts.append(batch)
        self.n += len(batch)
        if not self.started and self.n >= self._size():   # the first leaves at once: the writer starts
            yield from self._take(self._size())

    def flush(self) -> Iterator[Batch]:
        last = min(self.n, max(self.rows // 4, 1))
        while self.n > last:
            yield from self._take(min(self._size(), self.n - last))
        if self.n:
            yield from self._take(self.n)

    def _take(self, k: int) -> Iterator[Batch]:
        """The first ``k`` rows as one batch (each row is copied once; the parts after stay as they are)."""
        taken, need = [], k
        while need:
            part = self.parts.pop(0)
            if len(part) > need:
                self.parts.insert(0, _slice(part, need, len(part) - need))
                part = _slice(part, 0, need)
            taken.append(part)
            need -= len(part)
        self.n -= k
        self.started = True
        yield _concat(taken)


def _concat(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    bad, offset = {}, 0
    for p in parts:
        bad.update({i + offset: v for i, v in p.bad.items()})
        offset += len(p)
    return Batch(np.concatenate([p.rownums for p in parts]),   # columns as chunked arrays: no copy here
                 [pa.chunked_array([ch for p in parts for ch in _chunks(p.columns[i])])
                  for i in range(len(parts[0].columns))], bad)


def _chunks(column) -> list:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _slow_rest(text: str, line: int, blocks, enc: str, stats: DecodeStats, name: str, width: int, rows: int,
               data_line: int | None = None) -> Iterator[Batch]:
    """From ``text`` (starting at file line ``line``) to the end of the file, row by row."""
    lines = itertools.chain(io.StringIO(text, newline=""), _lines(blocks, enc, stats))
    recs = ((r, c) for r, c in _csv_rows_from(lines, name, line)
            if (data_line is None or r >= data_line) and "".join(c).strip())
    yield from _batched(recs, rows, width)


def _parse_block(text: str, line: int, width: int):
    """Parse the whole records of ``text`` in C++. Returns (batch, characters used, lines used), or
    None when the block is not regular enough to number its rows without reading them one by one."""
    data = text.encode("utf-8")
    parsed = _parse_records(data, line, width)
    if parsed is None:
        return None
    batch, end, lines = parsed
    used = int(np.count_nonzero((np.frombuffer(data, dtype=np.uint8)[:end] & 0xC0) != 0x80))   # characters
    return batch, used, lines


def _parse_records(data: bytes, line: int, width: int, enc: str | None = None):
    """Parse the whole records of ``data`` (UTF-8, or the file's own bytes in ``enc``, decoded column by
    column) in C++. Returns (batch, bytes used, lines used), or None when the block is not regular
    enough to number its rows without reading them one by one."""
    if _bare_cr(data):
        return None   # a bare CR ends a line for the row reader
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    if len(nl) == 0:
        return None
    quotes = np.flatnonzero(arr == 34)
    ends = nl[np.searchsorted(quotes, nl) % 2 == 0]   # line ends after an even number of quotes end a record
    if len(ends) == 0:
        return Batch(np.zeros(0, np.int64), []), 0, 0
    end = int(ends[-1]) + 1
    body = data[:end]
    # line number of each record's first line; empty lines are no records
    line_of_end = np.searchsorted(nl, ends)             # index of each record's last line
    first_line = np.concatenate(([0], line_of_end[:-1] + 1))
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts + 1
    empty = (length == 1) | ((length == 2) & (arr[np.maximum(ends - 1, 0)] == 13))
    if (line_of_end - first_line + 1).max() > MAX_RECORD_LINES:
        return None   # the row reader takes such a record for an unclosed quote
    invalid = []
    kind = pa.large_string() if enc is None else pa.large_binary()
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(width)], use_threads=False,
                                           block_size=len(body) + 1),   # one chunk: no copy to combine
            parse_options=pacsv.ParseOptions(  # a row of the wrong width: ArrowInvalid, or noted (UTF-8 only)
                newlines_in_values=True, ignore_empty_lines=True,
                invalid_row_handler=(lambda row: invalid.append(1) or "skip") if enc is None else None),
            convert_options=pacsv.ConvertOptions(column_types={f"c{i}": kind for i in range(width)},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    rownums = (line + first_line[~empty]).astype(np.int64)
    if invalid or table.num_rows != len(rownums):
        return None
    columns = [table.column(i).combine_chunks() for i in range(width)]
    if enc is not None:
        columns = _decode_columns(columns, enc)
        if columns is None:
            return None
    first = pc.utf8_trim_whitespace(columns[0]) if len(rownums) else None
    blank = _blank_rows(columns, first) if len(rownums) else []
    if len(blank):   # rows of blank cells only are no records either
        keep = np.ones(len(rownums), dtype=bool)
        keep[blank] = False
        mask = pa.array(keep)
        columns = [c.filter(mask) for c in columns]
        rownums, first = rownums[keep], first.filter(mask)
    batch = Batch(rownums, columns, _totals(columns, first) if len(rownums) else {})
    return batch, end, int(line_of_end[-1]) + 1


def _bare_cr(data: bytes) -> bool:
    """A CR not followed by LF (the row reader ends a line there)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    cr = np.flatnonzero(arr == 13)
    return bool(len(cr)) and bool(cr[-1] == len(arr) - 1 or (arr[cr + 1] != 10).any())


def _slice(batch: Batch, start: int, rows: int) -> Batch:
    if start == 0 and len(batch) <= rows:
        return batch
    stop = start + rows
    return Batch(batch.rownums[start:stop], [c.slice(start, rows) for c in batch.columns],
                 {i - start: v for i, v in batch.bad.items() if start <= i < stop})


MAX_RECORD_LINES = 200   # a record spanning more physical lines is an unclosed quote, not an address


def _csv_rows(fh, encoding: str, stats: DecodeStats, name: str, ends: dict | None = None
              ) -> Iterator[tuple[int, list[str]]]:
    return _csv_rows_from(decoded_lines(fh, encoding, stats), name, 1, ends)


def _csv_rows_from(lines, name: str, first: int, ends: dict | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, cells) for each record of ``lines``, which start at line ``first``;
    ``ends``: filled with record start -> the line it ends on."""
    reader = csv.reader(lines)
    start = first
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise _unclosed_quote(name, start, str(e)) from None
        end = first - 1 + reader.line_num
        if end - start + 1 > MAX_RECORD_LINES:
            raise _unclosed_quote(name, start, f"one record runs over lines {start}-{end}")
        if ends is not None:
            ends[start] = end
        yield start, cells
        start = end + 1


def _unclosed_quote(name: str, line: int, detail: str) -> BadSourceData:
    return BadSourceData(f"a quoted value opened at line {line} is never closed ({detail}); the rows after it "
                         "cannot be told apart, so the file is rejected", file=name, row=line, reason="UNCLOSED_QUOTE")


def _xlsx_rows(path: Path, data: bytes | None = None) -> tuple[Iterator[tuple[int, list[str]]], Callable[[], None]]:
    import openpyxl
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data) if data is not None else path, read_only=True, data_only=True)
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
        data = path.read_bytes()   # hashed as read: the ledger's SHA-256 is of these very bytes
        xdigest, xsize = hashlib.sha256(data).hexdigest(), len(data)
        rows, closer = _xlsx_rows(path, data)
        del data
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
        ends: dict[int, int] = {}
        rows = _csv_rows(fh, encoding, stats, path.name, ends)
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

    table = Table(path, kind, encoding, [c.strip() for c in header], header_row,
                  [r for r, _ in head[:best]], stats, chained(), closer,
                  ends[header_row] + 1 if kind != "xlsx" else None)
    if kind == "xlsx":
        table._digest, table._size_read = xdigest, xsize
    return table


def _check_decodable(sample: bytes, encoding: str, path: Path) -> None:
    """Reject a file whose encoding is unreadable everywhere (most lines in neither encoding)."""
    lines = [ln for ln in sample.split(b"\n")[:2000] if ln.strip()]
    if len(sample) == _SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    if not lines:
        return
    enc = _codec(encoding)
    bad = sum(1 for ln in lines if not (_decodes(ln, enc) or _decodes(ln, "utf-8") or _decodes(ln, "gb18030")))
    if bad > len(lines) / 2:
        raise BadSourceData(f"unreadable encoding: {bad} of the first {len(lines)} lines are neither "
                            "UTF-8 nor GB18030", file=path.name, reason="BAD_ENCODING")
