"""The dealer model's shipped parameters: m and u probabilities, the match prior and the frequencies
of common full names, estimated once on large data and stored next to the code with the model
version (``defaults/<version>.json``), so that the weights of a pair do not depend on the size of the
file it arrives in (issue 18; ``engine.blend`` mixes them with an input's own estimates when the
input is large enough).

    .venv/bin/python bench/resolution.py --train-defaults 200000   # re-estimate, write the JSON

Name frequencies: share of the population holding the full name, from the public name statistics of
the Ministry of Public Security's household-registration reports (2019-2021; e.g. 张伟 about 290,000,
王伟 282,000, 王芳 268,000 of 1.4 billion); names not listed fall back to the level's average ``u``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "defaults"
POPULATION = 1.41e9
# holders of the most common full names (public household-registration statistics, rounded)
COMMON_NAMES = {
    "张伟": 290_000, "王伟": 282_000, "王芳": 268_000, "李伟": 261_000, "李娜": 257_000, "张敏": 243_000,
    "李静": 238_000, "王静": 232_000, "刘伟": 230_000, "王秀英": 228_000, "张丽": 226_000, "李秀英": 219_000,
    "王丽": 216_000, "张静": 216_000, "张秀英": 213_000, "李强": 212_000, "王敏": 211_000, "李敏": 209_000,
    "王磊": 206_000, "刘洋": 206_000, "王艳": 204_000, "王勇": 203_000, "李军": 203_000, "张勇": 202_000,
    "李杰": 200_000, "张杰": 199_000, "张磊": 198_000, "王强": 197_000, "李娟": 197_000, "王军": 196_000,
    "张艳": 196_000, "张涛": 195_000, "王涛": 194_000, "李艳": 192_000, "王超": 191_000, "李明": 190_000,
    "李勇": 189_000, "王娟": 188_000, "刘杰": 185_000, "刘敏": 183_000, "李霞": 181_000, "李丽": 180_000,
    "张军": 179_000, "王杰": 178_000, "张强": 177_000, "王秀兰": 176_000, "王刚": 175_000, "王平": 174_000,
    "刘芳": 172_000, "张燕": 171_000, "刘艳": 170_000, "刘军": 169_000, "李平": 168_000, "王辉": 167_000,
    "王燕": 166_000, "陈静": 165_000, "刘勇": 164_000, "李玲": 163_000, "李桂英": 162_000, "王丹": 161_000,
    "李刚": 160_000, "李丹": 159_000, "李萍": 158_000, "王鹏": 157_000, "刘涛": 156_000, "陈伟": 155_000,
    "张华": 154_000, "刘静": 153_000, "李涛": 152_000, "王桂英": 151_000,
}


@functools.lru_cache(maxsize=None)
def load(version: str) -> dict | None:
    """The shipped parameters of ``version`` as numpy arrays (``u``, ``m``: comparison -> level
    probabilities, the ``else`` level last; ``lambda``; ``tf``: column -> value -> frequency), or None
    when none are shipped for that version."""
    path = HERE / f"{version}.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {"u": {k: np.array(v) for k, v in doc["u"].items()}, "m": {k: np.array(v) for k, v in doc["m"].items()},
            "lambda": float(doc["lambda"]), "tf": doc.get("tf", {}), "estimated_on": doc.get("estimated_on")}
