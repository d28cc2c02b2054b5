"""Parameters that do not depend on the file's size: shipped defaults, blended with an input's own
estimates only when the input is large (issue 18, item 2)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dealersync.resolution import engine, resolve, synth
from dealersync.resolution.models import DEALER

ID = "320102200405061629"
PAIRS = {  # (left, right, decision in any file)
    "same ID, name, mobile": (dict(name="王子晗", mobile="13851234567", id_number=ID, address="江苏省南京市玄武区珠江路88号"),
                              dict(name="王子晗", mobile="13851234567", id_number=ID, address="南京市玄武区珠江路88号"), "MERGE"),
    "no name, mobile and VIN": (dict(name="杜明", mobile="13727633059", vin="LSGXZ4X03TUUR38C7"),
                                dict(mobile="13727633059", vin="LSGXZ4X03TUUR38C7"), "MERGE"),
    "placeholder, mobile only": (dict(name="张杰玉", mobile="15152695226"), dict(name="张小姐", mobile="15152695226"),
                                 "REVIEW"),
}


def decisions(frame: pd.DataFrame, n_pairs: int) -> tuple[list[str], dict]:
    res = resolve.resolve_frame(frame)
    p = res.scored.pairs.set_index(["l", "r"])
    return [p.loc[(2 * i, 2 * i + 1), "decision"] if (2 * i, 2 * i + 1) in p.index else "NONE"
            for i in range(n_pairs)], res.scored.params


def frame_of(pairs, background: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = [{"source": "T", "source_id": f"{i}-{j}", **rec} for i, (l, r, _) in enumerate(pairs) for j, rec in
            enumerate((l, r))]
    df = pd.DataFrame(rows)
    return df if background is None else pd.concat([df, background], ignore_index=True)


def test_a_pair_is_decided_alike_in_a_file_of_two_rows_and_in_a_large_one():
    pairs = list(PAIRS.values())
    expected = [d for _, _, d in pairs]
    for i, (left, right, d) in enumerate(pairs):   # each pair alone: a file of two rows
        got, params = decisions(frame_of([(left, right, d)]), 1)
        assert got == [d], list(PAIRS)[i]
        assert params["blend"] == 0.0              # the shipped defaults, nothing from two rows
    bg = synth.generate(DEALER.min_estimate_records + 2000, seed=3).drop(columns=["truth", "household", "kind"])
    got, params = decisions(frame_of(pairs, bg), len(pairs))
    assert got == expected
    assert 0 < params["blend"] < 1                 # the large file's own estimates count, blended


def test_defaults_are_shipped_with_the_model_version_and_blend_toward_them():
    d = DEALER.defaults()
    assert d is not None and set(d["u"]) == {c.name for c in DEALER.comparisons}
    for c in DEALER.comparisons:
        assert len(d["u"][c.name]) == len(d["m"][c.name]) == len(c.levels) + 1
    assert d["tf"]["name_norm"]["张伟"] > d["tf"]["name_norm"]["王桂英"] > 0
    small = engine.blend(DEALER, None, 2)
    assert all(np.allclose(small["m"][k], d["m"][k]) for k in d["m"])
    far = {"u": {k: np.ones_like(v) / len(v) for k, v in d["u"].items()},
           "m": {k: np.ones_like(v) / len(v) for k, v in d["m"].items()}, "lambda": 0.5}
    big = engine.blend(DEALER, far, 10 * DEALER.prior_records)
    mid = engine.blend(DEALER, far, DEALER.prior_records)
    k = "mobile"
    assert abs(mid["m"][k][0] - (far["m"][k][0] + d["m"][k][0]) / 2) < 1e-6
    assert abs(big["m"][k][0] - far["m"][k][0]) < abs(mid["m"][k][0] - far["m"][k][0])
