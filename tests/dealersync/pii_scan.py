"""A PII scanner for test outputs, independent of ``dealersync.privacy``: the exact values a test planted,
and generic patterns (a CN mobile, an 18-character resident ID with a valid GB 11643 check digit checked
by python-stdnum, an e-mail address)."""
from __future__ import annotations

import re

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
