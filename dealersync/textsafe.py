"""Cell text that stays text: what every XLSX and CSV the product writes passes its strings through.

Spreadsheet formula injection (OWASP "CSV Injection"): a cell whose text starts with ``=``, ``+``,
``-``, ``@``, a tab (0x09) or a carriage return (0x0D) may be run as a formula by Excel, WPS or
LibreOffice. OWASP's remedy, applied here: prefix such a text with a single quote ``'`` (the cell
then shows the text as typed, with the quote). XLSX writers also store it as a string cell.

Characters a worksheet cannot hold (XML 1.0 forbids C0 controls other than tab, LF and CR, the
surrogates and U+FFFE/U+FFFF) are removed, so one ``\\x01`` in a customer name no longer fails a
whole day's list; CSV output gets the same treatment so both files show the same text.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_UNHOLDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: str) -> str:
    """``value`` without the characters an XLSX worksheet (XML 1.0) cannot hold."""
    return _UNHOLDABLE.sub("", value)


def safe_text(value: str) -> str:
    """``value`` cleaned and, when it could start a formula, prefixed with ``'`` (OWASP).

    >>> safe_text('=HYPERLINK("http://x","点击")')
    '\\'=HYPERLINK("http://x","点击")'
    >>> safe_text("-") , safe_text("王\\x01芳")
    ("'-", '王芳')
    """
    value = clean_text(value)
    return "'" + value if value.startswith(FORMULA_LEADS) else value


def safe_cell(value):
    """A CSV cell: strings made safe (a CR inside the text becomes LF: Python's csv module quotes only
    the characters of its line terminator), anything else (numbers, dates, None) as it is."""
    return safe_text(value).replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


def csv_bytes(header: list[str], rows: Iterable[Iterable], *, bom: bool = False) -> bytes:
    """The UTF-8 CSV text of :func:`write_csv` as bytes (same cells, same quoting, ``\n`` line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([safe_cell(h) for h in header])
    for r in rows:
        w.writerow(["" if v is None else safe_cell(v) for v in r])
    return ("\ufeff" if bom else "").encode("utf-8") + buf.getvalue().encode("utf-8")


def write_csv(path: str | Path, header: list[str], rows: Iterable[Iterable], *, bom: bool = False) -> Path:
    """Write a UTF-8 CSV (``\\n`` line ends, minimal quoting) atomically, every text cell through
    :func:`safe_text` (header included); ``bom=True`` adds the BOM Excel needs to read UTF-8 Chinese.
    Returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([safe_cell(h) for h in header])
        for r in rows:
            w.writerow(["" if v is None else safe_cell(v) for v in r])
    tmp.replace(path)
    return path
