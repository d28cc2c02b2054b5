"""Bytes to text lines for the CSV readers: the encoding sniffed from the bytes (UTF-8, its BOM, or
GB18030, decoded by the 2022 mapping), blocks of whole lines of a bounded length, a line that does
not decode tried in the other encoding, then kept with U+FFFD markers (``schemas.cells.UNDECODABLE``).

Source: ``shared/specs/dms-exports.md`` section 5 (encodings); GB 18030-2022 for the mapping.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Iterator

from dealersync.errors import BadSourceData

from .gb18030 import decode

_SNIFF_BYTES = 1 << 20
_BLOCK_BYTES = 4 << 20
DEFAULT_MAX_LINE_BYTES = 32 << 20


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
        return decode(b, other)
    except UnicodeDecodeError:
        pass
    stats.undecodable_lines += 1
    return decode(b, enc, errors="replace")


def _other(enc: str) -> str:
    return "gb18030" if enc == "utf-8" else "utf-8"


def decode_block(block: bytes, enc: str, stats: DecodeStats) -> str:
    """Decode a block of whole lines: in one call when it decodes cleanly, else line by line, a line
    that does not decode in ``enc`` tried in the other encoding, then with U+FFFD markers."""
    try:
        text = decode(block, enc)
        stats.lines += text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return text
    except UnicodeDecodeError:
        pass
    out = []
    for raw in block.splitlines(keepends=True):
        stats.lines += 1
        try:
            out.append(decode(raw, enc))
        except UnicodeDecodeError:
            stats.fallback_lines += 1
            out.append(_decode_line(raw, enc, _other(enc), stats))
    return "".join(out)


class LineTooLong(BadSourceData):
    """A line longer than the ``max_line_bytes`` setting: the file is refused before it costs memory."""


def raw_blocks(fh, block_bytes: int = _BLOCK_BYTES, first_bytes: int | None = None,
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes]:
    """Blocks of whole lines (cut after a line end) from a binary stream, the UTF-8 BOM removed.
    ``first_bytes``: the first read's size, doubling up to ``block_bytes`` (the first rows come soon).
    Raises ``LineTooLong`` once more than ``max_line_bytes`` bytes come without a line end: memory
    stays within about ``max_line_bytes + block_bytes`` whatever the file holds (issue #15)."""
    parts, held, first, start = [], 0, True, 0
    size = min(first_bytes or block_bytes, block_bytes)
    while True:
        data = fh.read(size)
        size = min(size * 2, block_bytes)
        if data:
            cut = data.rfind(b"\n")
            cut = cut if cut >= 0 else data.rfind(b"\r")
            if cut < 0:
                parts.append(data)
                held += len(data)
                if held > max_line_bytes:
                    raise LineTooLong(f"a line of more than {max_line_bytes:,} bytes starts at byte {start:,}; "
                                      "no real export has one (setting max_line_bytes), the file is refused",
                                      reason="LINE_TOO_LONG")
                continue
            block, parts, held = b"".join(parts + [data[:cut + 1]]), [data[cut + 1:]], len(data) - cut - 1
        else:
            block, parts = b"".join(parts), []
            if not block:
                return
        start += len(block)
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


def decoded_lines(fh, encoding: str, stats: DecodeStats, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
                  ) -> Iterator[str]:
    """Yield text lines (with their line ends) from a binary stream, block by block."""
    return _lines(raw_blocks(fh, max_line_bytes=max_line_bytes), _codec(encoding), stats)


def _check_decodable(sample: bytes, encoding: str, name: str) -> None:
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
                            "UTF-8 nor GB18030", file=name, reason="BAD_ENCODING")
