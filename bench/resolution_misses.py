"""Where the matcher's recall goes on the independent set: the records left out of their person's
main master, by kind, with what they share with it and how far the pipeline got.

    .venv/bin/python bench/resolution_misses.py [--size 20000] [--seed 1]

For each such record: whether any of its pairs with the main master was a candidate (blocking), the
best decision among them (MERGE refused by a constraint, REVIEW, HOUSEHOLD, NONE), and the identifiers
it shares with the master as a whole (``!x``: both hold an ``x`` and none in common). Tune on seed 1
only (docs/matching-evaluation.md). No personal data is printed: counts only.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _bench():
    """bench/resolution.py (its data sets and measures), loaded by path: its name is the package's."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_resolution", Path(__file__).resolve().parent / "resolution.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

KEYS = ["mobile", "vin", "plate", "email", "id_valid", "address_key"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    bench = _bench()
    from dealersync.resolution import resolve
    from dealersync.resolution.normalise import derived
    df = pd.read_parquet(bench.dataset_faker(a.size, a.seed))
    res = resolve.resolve_frame(df.drop(columns=bench.FAKER_TRUTH))
    lab, truth = res.labels, df["truth"].to_numpy()
    m = resolve.pairwise_metrics(lab, truth)
    print(f"precision {m['precision']:.5f} recall {m['recall']:.4f} false pairs {m['false_pairs']}")
    print("recall by kind:", {k: round(v, 4) for k, v in bench.recall_by_kind(lab, df).items()})
    f = pd.DataFrame({"p": lab, "t": truth})
    size = f.groupby(["t", "p"]).size().rename("n").reset_index().sort_values(["t", "n", "p"],
                                                                            ascending=[True, False, True])
    main_of = f["t"].map(size.drop_duplicates("t").set_index("t")["p"]).to_numpy()
    stray = np.flatnonzero(lab != main_of)
    p = res.scored.pairs
    same = truth[p["l"].to_numpy()] == truth[p["r"].to_numpy()]
    rank = {"MERGE": 3, "REVIEW": 2, "HOUSEHOLD": 1, "NONE": 0}
    best: dict[int, str] = {}
    for l, r, dec in zip(p["l"].to_numpy()[same], p["r"].to_numpy()[same], p["decision"].to_numpy()[same]):
        for x, y in ((l, r), (r, l)):
            if lab[y] == main_of[x] and lab[x] != lab[y] and rank[dec] > rank.get(best.get(x, ""), -1):
                best[x] = dec
    d = derived(res.norm)
    kinds = df["kinds"].fillna("")
    out = collections.Counter()
    for x in stray:
        mates = np.flatnonzero((truth == truth[x]) & (lab == main_of[x]))
        shared = []
        for c in KEYS:
            mine, theirs = d[c].iat[x], set(d[c].iloc[mates].dropna())
            if pd.notna(mine) and theirs:
                shared.append(c if mine in theirs else "!" + c)
        kind = ("no_name" if "no_name" in kinds.iat[x] else "placeholder" if "placeholder" in kinds.iat[x]
                else "named")
        out[(kind, best.get(x, "not a candidate"), "+".join(shared) or "-")] += 1
    print(f"\n{len(stray):,} records outside their person's main master ({len(df):,} records)\n")
    print("| records | kind | best decision with the main master | shared with it |")
    print("|---|---|---|---|")
    for (kind, dec, shared), n in out.most_common(30):
        print(f"| {n} | {kind} | {dec} | {shared} |")


if __name__ == "__main__":
    main()
