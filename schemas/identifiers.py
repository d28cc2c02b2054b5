"""Makers of valid identifiers for sample and evaluation data: resident IDs (GB 11643-1999, MOD 11-2
check digit), unified social credit codes (GB 32100-2015, MOD 31), VINs (ISO 3779 / GB 16735 check
digit in position 9). Deterministic for a given random generator."""
from __future__ import annotations

import random
from datetime import date

import numpy as np

from dealersync.schemas.checks import vin_check_digit

REGION_CODES = ["440106", "440104", "440305", "110105", "110108", "310115", "310104", "320102"]
WMIS = ["LFV", "LSV", "LGB", "LVS", "LHG", "LBV", "LVG"]


def resident_id(rng: random.Random, birth: date, male: bool) -> str:
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    body = f"{rng.choice(REGION_CODES)}{birth:%Y%m%d}{seq:03d}"
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w)) % 11]


def uscc(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    w = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    body = "91" + rng.choice(["440101", "440300", "110105"]) + "".join(rng.choice(alphabet[:10] + "MA") for _ in range(9))
    total = sum(alphabet.index(c) * k for c, k in zip(body, w))
    return body + alphabet[(31 - total % 31) % 31]


def make_vin(rng: random.Random) -> str:
    chars = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    v = rng.choice(WMIS) + "".join(rng.choice(chars) for _ in range(5)) + "0" + rng.choice("LMNPRST") + \
        rng.choice("ABCDEFG") + f"{rng.randrange(10 ** 6):06d}"
    return v[:8] + chr(vin_check_digit([v])[0]) + v[9:]


def make_vins(rng: np.random.Generator, n: int) -> np.ndarray:
    """n valid VINs, vectorised (for the benchmark's millions of rows)."""
    chars = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
    wmi = np.array(WMIS)[rng.integers(0, len(WMIS), n)]
    mid = ["".join(r) for r in chars[rng.integers(0, len(chars), (n, 5))]]
    year = np.array(list("LMNPRST"))[rng.integers(0, 7, n)]
    serial = rng.integers(0, 10 ** 7, n)
    vins = [f"{a}{b}0{c}{s:07d}" for a, b, c, s in zip(wmi, mid, year, serial)]
    checks = vin_check_digit(vins)
    return np.array([v[:8] + chr(c) + v[9:] for v, c in zip(vins, checks)], dtype=object)
