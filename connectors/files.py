"""Reading DMS / OEM export files: CSV (GB18030 or UTF-8, optionally gzipped) and workbooks
(``.xlsx`` ``.xlsm`` ``.xls`` ``.xlsb`` ``.ods``), told apart by their content, not their name.

Streams: rows come out in chunks, so memory does not grow with file size. Encoding is sniffed
from the bytes, not trusted from the profile (files are mislabelled both ways); a line that does
not decode in the file's encoding is tried in the other one, and cells whose bytes decode in
neither keep a marker (U+FFFD) so the validator can name the row and column. The readers live in
``connectors.readers`` (``text``, ``csvfile``, ``batches``, ``workbook``); this module opens a file,
finds its header row and hands out a ``Table``. Source: ``shared/specs/dms-exports.md`` sections 1, 5.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from dealersync.errors import BadSourceData
from dealersync.schemas.cells import UNDECODABLE  # noqa: F401  (the marker, for callers of this module)

from .hashing import HashingReader
from .readers.batches import Batch, _batched, rows_batch  # noqa: F401
from .readers.csvfile import (MAX_RECORD_LINES, _csv_batches, _csv_rows, _parse_block,  # noqa: F401
                              _slow_rest)
from .readers.text import (_SNIFF_BYTES, DecodeStats, LineTooLong, _check_decodable, raw_blocks,  # noqa: F401
                           sniff_encoding)
from .readers.workbook import (WORKBOOK_KINDS, ReadLimits, cell_to_str, number_text, read_workbook,  # noqa: F401
                               sniff_kind)

EXPORT_SUFFIXES = (".csv", ".csv.gz", ".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
# <Dealer>_<FEED>_<YYYYMMDD>[_<seq>].<ext>; a prefix before the dealer code, cut off by a space,
# "-" or "(", is tolerated ("16-GZ0012_CUSTOMER_20261103.xls", "副本 GZ0012_...")
FILE_NAME_RE = re.compile(
    r"^(?:.*[-\s(])?(?P<dealer>[A-Za-z0-9]+)_(?P<feed>[A-Za-z]+)_(?P<date>\d{8})(?:_(?P<seq>\d+))?"
    r"\.(?P<ext>csv\.gz|csv|xlsx|xlsm|xlsb|xls|ods)$", re.IGNORECASE)


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


@dataclass(frozen=True)
class Source:
    """A file to read, by name and opener: ``name`` for messages and for the format a name claims,
    ``open()`` a fresh binary stream from the start on every call (a local file, an SFTP file, bytes
    in memory). A gzipped CSV is given as its gzip bytes (the reader unpacks it)."""
    name: str
    open: Callable[[], BinaryIO]

    @classmethod
    def local(cls, path: str | Path) -> "Source":
        p = Path(path)
        return cls(p.name, lambda: open(p, "rb"))

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> "Source":
        return cls(name, lambda: io.BytesIO(data))


def file_kind(path: str | Path | Source) -> str:
    """The kind the name claims: a workbook extension, ``csv.gz`` or ``csv`` (the content decides, see
    ``open_table``)."""
    name = (path.name if isinstance(path, (Path, Source)) else Path(path).name).lower()
    for kind in WORKBOOK_KINDS:
        if name.endswith("." + kind):
            return kind
    if name.endswith(".csv.gz") or name.endswith(".gz"):
        return "csv.gz"
    return "csv"


def _open_binary(source: Source, kind: str, hasher: HashingReader | None = None):
    fh = hasher if hasher is not None else source.open()
    return gzip.GzipFile(fileobj=fh, mode="rb") if kind == "csv.gz" else fh


@dataclass
class Table:
    """An opened export: header row found, data rows to stream."""
    source: Source
    kind: str
    encoding: str | None
    header: list[str]
    header_row: int
    title_rows: list[int] = field(default_factory=list)
    stats: DecodeStats = field(default_factory=DecodeStats)
    _rows: Iterator | None = None
    _closer: Callable[[], None] | None = None
    _data_line: int | None = None   # CSV: the first line after the header record
    sheet: str | None = None        # workbooks: the sheet read
    notes: list[str] = field(default_factory=list)   # what the reader chose (sheet, format), for the warnings
    limits: ReadLimits = field(default_factory=ReadLimits)
    _hasher: HashingReader | None = None   # CSV: the full pass's bytes
    _digest: str | None = None             # workbooks: the bytes the workbook was read from
    _size_read: int | None = None

    def digest(self) -> tuple[str, int]:
        """(SHA-256 hex, byte count) of the file's bytes as this reader read them: the full pass of
        ``batches()`` read to its end (the rest is read if the pass stopped early)."""
        if self._digest is not None:
            return self._digest, self._size_read or 0
        if self._hasher is None:
            self._hasher = HashingReader(self.source.open())
        digest = self._hasher.finish()
        self._hasher.close()
        return digest, self._hasher.bytes_read

    @property
    def where(self) -> str:
        """The file, and the sheet of a workbook, for messages."""
        return f"{self.source.name}, sheet {self.sheet!r}" if self.sheet else self.source.name

    @property
    def is_workbook(self) -> bool:
        return self.kind in WORKBOOK_KINDS

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(1-based row number in the file, cells) for every non-blank row after the header."""
        assert self._rows is not None
        try:
            for rownum, cells in self._rows:
                if "".join(cells).strip():
                    yield rownum, cells
        except BadSourceData as e:
            raise self._named(e)

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
        self._hasher = HashingReader(self.source.open())
        fh = _open_binary(self.source, self.kind, self._hasher)
        hasher = self._hasher

        def closer():
            fh.close()
            hasher.close()
        self._closer = closer
        try:
            yield from _csv_batches(fh, self.encoding, self.stats, self.source.name, self._data_line,
                                    len(self.header), rows, self.limits.max_line_bytes)
        except BadSourceData as e:   # the reader knows neither the file's name nor the header
            raise self._named(e)

    def _named(self, e: BadSourceData) -> BadSourceData:
        e.file = e.file or self.where
        index = getattr(e, "column_index", None)
        if index is not None and e.column is None and 0 < index <= len(self.header):
            e.column = self.header[index - 1] or f"column {index}"
        return e

    def close(self):
        if self._closer:
            self._closer()


_NAMES = {"csv": "CSV", "csv.gz": "gzipped CSV", "xlsx": "XLSX", "xlsm": "XLSM", "xls": "legacy Excel 97-2003 (XLS)",
          "xlsb": "XLSB", "ods": "OpenDocument (ODS)"}


def open_table(source: str | Path | Source, header_score, *, max_header_scan: int = 15,
               sheets: list[str] | None = None, limits: ReadLimits | None = None) -> Table:
    """Open ``source`` (a path, or a ``Source``: a name and an opener, e.g. an SFTP file read in
    place) and find its header row: the first of the first rows with the best
    ``header_score(cells)``; rows above it are title rows. The format is the content's (a workbook
    named ``.csv`` is read as the workbook it is, with a note); ``sheets``: sheet names a profile
    gives; ``limits``: size limits (``ReadLimits``). Raises ``BadSourceData`` naming the file (and
    sheet) and the true cause: the format, the encoding, the sheet, a limit."""
    src = source if isinstance(source, Source) else Source.local(source)
    limits = limits or ReadLimits()
    claimed = file_kind(src)
    opener = src.open
    with opener() as fh:
        head = fh.read(8)
    found = sniff_kind(head, opener)
    stats = DecodeStats()
    notes: list[str] = []
    closer = None
    sheet = None
    if found == "zip":
        raise BadSourceData("a zip archive that is no workbook (XLSX, XLSM, XLSB or ODS)", file=src.name,
                            reason="NOT_A_TABLE")
    digest = None
    if found is not None:
        if found != claimed:
            notes.append(f"named .{claimed}, the content is {_NAMES[found]}: read as {_NAMES[found]}")
        with opener() as fh:
            data = fh.read()   # hashed as read: the ledger's SHA-256 is of these very bytes
        digest = hashlib.sha256(data).hexdigest(), len(data)
        wb = read_workbook(lambda: io.BytesIO(data), src.name, found, sheets=sheets, limits=limits)
        kind, rows, closer, sheet, encoding = found, wb.rows, wb.close, wb.sheet, None
        notes += wb.notes
    elif claimed in WORKBOOK_KINDS:
        raise BadSourceData(f"named .{claimed} but not an {claimed.upper()} workbook: the content is neither a zip "
                            "(XLSX, XLSM, XLSB, ODS) nor an OLE container (XLS)", file=src.name, reason="NOT_A_TABLE")
    else:
        kind = "csv.gz" if head.startswith(b"\x1f\x8b") else "csv"
        if kind != claimed:
            notes.append(f"named .{claimed}, the content is {_NAMES[kind]}")
        fh = _open_binary(src, kind)
        try:
            sample = fh.read(_SNIFF_BYTES)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            fh.close()
            raise BadSourceData(f"cannot read file: {e}", file=src.name, reason="NOT_A_TABLE") from None
        if b"\x00" in sample[:65536]:
            fh.close()
            raise BadSourceData("binary content (NUL bytes), and no workbook format known by its content "
                                "(XLSX, XLSM, XLS, XLSB, ODS): not a CSV file", file=src.name, reason="NOT_A_TABLE")
        encoding = sniff_encoding(sample, complete=len(sample) < _SNIFF_BYTES)
        _check_decodable(sample, encoding, src.name)
        fh.close()
        fh = _open_binary(src, kind)
        ends: dict[int, int] = {}
        rows = _csv_rows(fh, encoding, stats, src.name, ends, limits.max_line_bytes)
        closer = fh.close
    where = f"{src.name}, sheet {sheet!r}" if sheet else src.name

    head_rows: list[tuple[int, list[str]]] = []
    try:
        for item in rows:
            if any(c.strip() for c in item[1]):
                head_rows.append(item)
            if len(head_rows) >= max_header_scan:
                break
    except BadSourceData as e:
        if closer:
            closer()
        e.file = e.file or where
        index = getattr(e, "column_index", None)
        if index is not None and head_rows and e.column is None:   # named by the best header row read
            scores = [header_score(cells) for _, cells in head_rows]
            best = max(range(len(head_rows)), key=lambda i: (scores[i], -i))
            if scores[best] > 0 and head_rows[best][0] < (e.row or 0) and 0 < index <= len(head_rows[best][1]):
                e.column = head_rows[best][1][index - 1].strip() or None
        raise
    if not head_rows:
        if closer:
            closer()
        raise BadSourceData("the file is empty" if not sheet else "the sheet is empty", file=where, reason="EMPTY_FILE")
    scores = [header_score(cells) for _, cells in head_rows]
    best = max(range(len(head_rows)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        if closer:
            closer()
        raise BadSourceData("no header row with known column names found in the first rows",
                            file=where, row=head_rows[0][0], reason="NO_HEADER")
    header_row, header = head_rows[best]

    def chained():
        yield from head_rows[best + 1:]
        yield from rows

    table = Table(src, kind, encoding, [c.strip() for c in header], header_row,
                  [r for r, _ in head_rows[:best]], stats, chained(), closer,
                  ends[header_row] + 1 if encoding is not None else None, sheet, notes, limits)
    if digest is not None:
        table._digest, table._size_read = digest
    return table
