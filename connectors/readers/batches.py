"""Rows as Arrow columns (``Batch``): built from rows read one by one or parsed in C++, trailing
totals rows (``合计``) and blank rows found vectorised, batches cut and joined to the chunk size."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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


def _batched(records, rows: int, width: int) -> Iterator[Batch]:
    buf = []
    for rec in records:
        buf.append(rec)
        if len(buf) >= rows:
            yield rows_batch(buf, width)
            buf = []
    if buf:
        yield rows_batch(buf, width)


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

def _slice(batch: Batch, start: int, rows: int) -> Batch:
    if start == 0 and len(batch) <= rows:
        return batch
    stop = start + rows
    return Batch(batch.rownums[start:stop], [c.slice(start, rows) for c in batch.columns],
                 {i - start: v for i, v in batch.bad.items() if start <= i < stop})
