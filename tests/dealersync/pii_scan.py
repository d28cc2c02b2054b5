"""A PII scanner for test outputs, independent of ``dealersync.privacy``: the exact values a test planted,
and generic patterns (a CN mobile, an 18-character resident ID with a valid GB 11643 check digit checked
by python-stdnum, an e-mail address)."""
from __future__ import annotations

import gzip
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from stdnum.cn import ric

MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
RIC = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def find_pii(text: str, planted: tuple[str, ...] = ()) -> list[str]:
    """Every planted value, mobile, valid resident ID and e-mail found in clear in ``text``."""
    hits = [p for p in planted if p and p in text]
    hits += MOBILE.findall(text)
    hits += [x for x in RIC.findall(text) if ric.is_valid(x)]
    hits += EMAIL.findall(text)
    return hits


MAX_PART = 256 * 1024 * 1024   # unpacked bytes read from one zip member or gzip file


def _xml_text(data: bytes) -> str:
    """Every text node and attribute value of an XML part, one per line (two cells never run together
    into one number)."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return data.decode("utf-8", "replace")
    out = []
    for el in root.iter():
        out += [v for v in el.attrib.values()]
        out += [t for t in (el.text, el.tail) if t and t.strip()]
    return "\n".join(out)


def file_text(path: str | Path) -> str:
    """The text a person or a program could read out of ``path``: inside a zip container (XLSX, its shared
    strings, sheets, comments, charts and document properties; any zip) every XML part's text, a gzip file
    unpacked; else the bytes as UTF-8. A mobile in an XLSX is compressed and never shows in the raw bytes."""
    path = Path(path)
    head = path.open("rb").read(4)
    if head == b"PK\x03\x04":
        parts = []
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                with z.open(info) as f:
                    data = f.read(MAX_PART)
                if info.filename.endswith((".xml", ".rels", ".vml")):
                    parts.append(_xml_text(data))
                else:
                    parts.append(data.decode("utf-8", "replace"))
        return "\n".join(parts)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path) as f:
            return f.read(MAX_PART).decode("utf-8", "replace")
    return path.read_bytes().decode("utf-8", "replace")


def find_pii_in_file(path: str | Path, planted: tuple[str, ...] = ()) -> list[str]:
    return find_pii(file_text(path), planted)
