"""The CSV reader: records found and parsed block by block in C++ (pyarrow) in the file's own bytes
while the blocks are regular, row by row (Python's csv module) from the first irregular block on,
with the same row numbers and faults either way."""
from __future__ import annotations

import csv
import io
import itertools
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dealersync.errors import BadSourceData
from dealersync.schemas.cells import value_bytes

from .batches import Batch, _batched, _blank_rows, _Pending, _totals
from .gb18030 import decode
from .text import DEFAULT_MAX_LINE_BYTES, DecodeStats, _codec, _lines, decode_block, decoded_lines, raw_blocks

csv.field_size_limit(1 << 22)   # 4 MB: no real cell is larger; an unclosed quote hits it


_FAST_BLOCK_BYTES = 8 << 20


def _csv_batches(fh, encoding: str, stats: DecodeStats, name: str, data_line: int, width: int,
                 rows: int, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Batch]:
    enc = _codec(encoding)
    blocks = raw_blocks(fh, _FAST_BLOCK_BYTES, first_bytes=1 << 20, max_line_bytes=max_line_bytes)
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
            text = decode(joined, enc)
        except UnicodeDecodeError:
            return None
        out.append(pc.split_pattern(pa.array([text], pa.large_string()), "\x1f")[0].values)
    return out


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

MAX_RECORD_LINES = 200   # a record spanning more physical lines is an unclosed quote, not an address


def _csv_rows(fh, encoding: str, stats: DecodeStats, name: str, ends: dict | None = None,
              max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, list[str]]]:
    return _csv_rows_from(decoded_lines(fh, encoding, stats, max_line_bytes), name, 1, ends)


def _csv_rows_from(lines, name: str, first: int, ends: dict | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, cells) for each record of ``lines``, which start at line ``first``;
    ``ends``: filled with record start -> the line it ends on. A quote that never closes (the reader
    meets the end of the file inside it, or the record runs over ``MAX_RECORD_LINES`` lines or past the
    field size limit) rejects the file: every later line would be swallowed into one value."""
    source = _RecordLines(lines)
    reader = csv.reader(source)
    start = first
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise _unclosed_quote(name, start, source.text(), str(e)) from None
        end = first - 1 + reader.line_num
        if source.exhausted:   # the reader asked for a line past the end: it was inside a quote
            raise _unclosed_quote(name, start, source.text(), "the file ends inside it")
        if end - start + 1 > MAX_RECORD_LINES:
            raise _unclosed_quote(name, start, source.text(), f"one record runs over lines {start}-{end}")
        if ends is not None:
            ends[start] = end
        source.clear()
        yield start, cells
        start = end + 1


class _RecordLines:
    """The lines handed to ``csv.reader``, keeping those of the record being read (up to
    ``_KEPT_CHARS``) to find where an unclosed quote opened; ``exhausted`` once the source has ended."""

    _KEPT_CHARS = 1 << 20

    def __init__(self, lines):
        self._lines = iter(lines)
        self._kept: list[str] = []
        self._size = 0
        self.exhausted = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        if self._size < self._KEPT_CHARS:
            self._kept.append(line)
            self._size += len(line)
        return line

    def clear(self) -> None:
        self._kept.clear()
        self._size = 0

    def text(self) -> str:
        return "".join(self._kept)


def quote_opening(record: str) -> tuple[int, int] | None:
    """(line offset from the record's first line, 1-based column) where the culprit quote of ``record``
    (raw CSV text, read as ``csv.reader`` reads it: a quote opens a value only as its first character;
    ``""`` inside a quoted value is a quote) opened: the quote still open at its end, else the quoted
    value over the most lines; None when no quoted value runs over a line end."""
    column, line, i, n = 1, 0, 0, len(record)
    opened: tuple[int, int] | None = None
    longest, longest_lines = None, 0
    at_start = True
    while i < n:
        ch = record[i]
        if ch == "\n" or (ch == "\r" and record[i + 1:i + 2] != "\n"):
            line += 1
        if opened is not None:   # inside a quoted value
            if ch == '"':
                if i + 1 < n and record[i + 1] == '"':
                    i += 1
                else:
                    if line - opened[0] > longest_lines:
                        longest, longest_lines = opened, line - opened[0]
                    opened = None
        elif ch == '"' and at_start:
            opened = (line, column)
        elif ch == ",":
            column += 1
            at_start = True
            i += 1
            continue
        at_start = False
        i += 1
    return opened if opened is not None else longest


def _unclosed_quote(name: str, line: int, record: str, detail: str) -> BadSourceData:
    """The file rejected for a quote that never closes, naming the line it opened on and its column
    (``column_index``, 1-based; the table names it by its header)."""
    where = quote_opening(record)
    if where is not None:
        line += where[0]
    e = BadSourceData(f"a quoted value opened at line {line}"
                      + (f", column {where[1]}," if where is not None else "")
                      + f" is never closed ({detail}); the rows after it cannot be told apart, so the file is "
                      "rejected", file=name, row=line, reason="UNCLOSED_QUOTE")
    e.column_index = where[1] if where is not None else None
    return e
