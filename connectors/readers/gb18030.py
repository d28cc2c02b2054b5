"""GB18030 decoded by the 2022 mapping (GB 18030-2022), on top of Python's 2005-era codec.

Python's ``gb18030`` codec maps 24 two-byte codes to private-use characters (PUA) that GB 18030-2022
maps to standard characters: the 10 vertical punctuation forms (``A6D9``-``A6F3`` -> U+FE10-U+FE19),
8 CJK ideographs (``FE59``... -> U+9FB4-U+9FBB) and, as this product reads names, the 6 ideographs
outside the BMP (``FE51`` -> U+20087 𠂇, ``FE52`` -> U+20089, ``FE53`` -> U+200CC, ``FE6C`` -> U+215D7,
``FE76`` -> U+2298F, ``FE91`` -> U+241FE). A decoded text is translated by this table afterwards:
those PUA code points come from no other GB18030 bytes. Text decoded from UTF-8 is never touched
(a PUA character written in UTF-8 is what the writer meant, and is reported by the name check).
"""
from __future__ import annotations

import re

import numpy as np

# two-byte code -> (Python's PUA code point, the GB 18030-2022 character)
_CODES = {
    "A6D9": 0xFE10, "A6DA": 0xFE12, "A6DB": 0xFE11, "A6DC": 0xFE13, "A6DD": 0xFE14, "A6DE": 0xFE15,
    "A6DF": 0xFE16, "A6EC": 0xFE17, "A6ED": 0xFE18, "A6F3": 0xFE19,
    "FE59": 0x9FB4, "FE61": 0x9FB5, "FE66": 0x9FB6, "FE67": 0x9FB7, "FE6D": 0x9FB8, "FE7E": 0x9FB9,
    "FE90": 0x9FBA, "FEA0": 0x9FBB,
    "FE51": 0x20087, "FE52": 0x20089, "FE53": 0x200CC, "FE6C": 0x215D7, "FE76": 0x2298F, "FE91": 0x241FE,
}
TABLE_2022 = {ord(bytes.fromhex(code).decode("gb18030")): char for code, char in _CODES.items()}
_PUA_2005 = re.compile("[" + "".join(chr(c) for c in sorted(TABLE_2022)) + "]")


def fix_2022(text: str) -> str:
    """``text`` decoded by Python's gb18030 codec, with the 2022 mapping's characters (see above)."""
    return text.translate(TABLE_2022) if _PUA_2005.search(text) else text


def may_hold_changed_codes(data: bytes) -> bool:
    """Whether ``data`` holds one of the 24 two-byte codes (a vectorised byte scan, about a third of
    the decode's cost; a pair that straddles two characters is a harmless false alarm)."""
    a = np.frombuffer(data, np.uint8)
    idx = np.flatnonzero((a[:-1] == 0xFE) | (a[:-1] == 0xA6))
    if not len(idx):
        return False
    lead, trail = a[idx], a[idx + 1]
    fe = (lead == 0xFE) & (trail >= 0x51) & (trail <= 0xA0)
    a6 = (lead == 0xA6) & (((trail >= 0xD9) & (trail <= 0xDF)) | (trail == 0xEC) | (trail == 0xED) | (trail == 0xF3))
    return bool((fe | a6).any())


def decode(data: bytes, encoding: str, errors: str = "strict") -> str:
    """``data.decode(encoding)``, by the GB 18030-2022 mapping when the encoding is GB18030 (or GBK,
    whose bytes GB18030 decodes the same)."""
    text = data.decode(encoding, errors)
    if encoding.lower().replace("-", "") in ("gb18030", "gbk", "gb2312") and may_hold_changed_codes(data):
        return text.translate(TABLE_2022)
    return text
