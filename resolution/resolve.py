"""One-pass resolution of a batch of records (the ``resolve-file`` mode and the bench), and the
evaluation measures."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import engine
from . import progress as progress_
from .models import DEALER, SHARED_MOBILE_NAMES
from .normalise import derived, normalise_records

FILE_HEADER = ["source", "source_id", "customer_type", "name", "company", "mobile", "phone", "id_number",
               "email", "address", "vin", "plate"]


@dataclass
class Result:
    labels: np.ndarray            # cluster label per input row (position of the cluster's first record)
    scored: engine.Scored
    norm: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def load_records(con, norm: pd.DataFrame, is_new: np.ndarray | None = None, table: str = "rec") -> None:
    """Register normalised records as DuckDB table ``rec`` (rid = position) with the shared-mobile
    flags: a mobile seen with SHARED_MOBILE_NAMES or more different names identifies nobody."""
    frame = derived(norm.reset_index(drop=True))
    frame.insert(0, "rid", np.arange(len(frame), dtype=np.int64))
    frame["is_new"] = True if is_new is None else is_new
    con.register("rec_df", frame)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_base AS SELECT * FROM rec_df")
    con.unregister("rec_df")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE mobile_names AS
        SELECT m, count(DISTINCT name_key) AS names FROM (
            SELECT mobile AS m, name_key, surname_py, name_norm FROM {table}_base WHERE mobile IS NOT NULL
            UNION ALL SELECT mobile2, name_key, surname_py, name_norm FROM {table}_base WHERE mobile2 IS NOT NULL)
        GROUP BY m""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT b.*, coalesce(m1.names, 0) >= {SHARED_MOBILE_NAMES} AS mobile_shared,
               coalesce(m2.names, 0) >= {SHARED_MOBILE_NAMES} AS mobile2_shared,
               coalesce(m1.names, 0) <= 1 AS mobile_own, coalesce(m2.names, 0) <= 1 AS mobile2_own
          FROM {table}_base b LEFT JOIN mobile_names m1 ON m1.m = b.mobile LEFT JOIN mobile_names m2 ON m2.m = b.mobile2""")
    con.execute(f"DROP TABLE {table}_base")


def normalise_partitioned(frame: pd.DataFrame, mapper=None, partition_rows: int = 200_000,
                          progress=progress_.NO_PROGRESS) -> pd.DataFrame:
    """Normalise in partitions. ``mapper(fn, parts) -> results`` runs them (in order) wherever the caller
    likes: a Prefect task runner (threads, or a Dask cluster at dealer-group scale); default: here, one
    partition after the other, reporting ``progress`` as each ends."""
    progress.start("normalise", len(frame))
    if len(frame) <= partition_rows:
        out = normalise_records(frame)
        progress.advance("normalise", len(frame))
        return out
    parts = [frame.iloc[i:i + partition_rows] for i in range(0, len(frame), partition_rows)]
    if mapper is None:
        done = []
        for p in parts:
            done.append(normalise_records(p))
            progress.advance("normalise", len(p))
        return pd.concat(done)
    out = pd.concat(mapper(normalise_records, parts))
    progress.advance("normalise", len(frame))
    return out


def resolve_frame(df: pd.DataFrame, model=DEALER, threads: int | None = None, normalised: bool = False,
                  progress=None, partition_rows: int = 250_000) -> Result:
    """Resolve a batch in one pass. ``progress``: a callback taking ``progress.ProgressEvent`` (records
    normalised, pairs scored, pairs clustered: counts, rate, ETA; no personal data), or a
    ``progress.Progress``."""
    t = {}
    if progress is None or isinstance(progress, progress_.Progress):
        prog = progress_.of(progress)
    else:   # a callback: the three stages of a batch are the whole run
        prog = progress_.Progress(progress, stages=("normalise", "score", "cluster"))
    t0 = time.perf_counter()
    if normalised:
        norm = df
        prog.finish("normalise", len(df))
    else:
        norm = normalise_partitioned(df, None, partition_rows, prog)
        prog.finish("normalise", len(norm))
    t["normalise"] = time.perf_counter() - t0
    con = engine.connect(threads)
    t0 = time.perf_counter()
    load_records(con, norm)
    t["load"] = time.perf_counter() - t0
    prog.start("score")
    scored = engine.score(con, model, on_candidates=lambda n: prog.set_total("score", n))
    t.update({k: v for k, v in scored.timings.items() if k != "candidates"})
    prog.finish("score", len(scored.pairs))
    t0 = time.perf_counter()
    merges = int((scored.pairs["decision"] == engine.MERGE).sum())
    prog.start("cluster", merges)
    labels = engine.cluster(len(norm), scored.pairs, **identities(norm))
    t["cluster"] = time.perf_counter() - t0
    prog.finish("cluster", merges)
    con.close()
    return Result(labels, scored, norm, t)


def identities(norm: pd.DataFrame) -> dict:
    """The per-record values a cluster may hold only one of (``engine.cluster``'s keywords): the valid
    resident ID (destroyed ones are no identity), the full name (placeholders and blanks are none)
    and the gender of a person; and the identifiers two masters compare (``keys``)."""
    d = derived(norm[[c for c in ("id_valid", "vin", "plate", "email", "mobile") if c in norm]])
    out = {"ids": d["id_valid"].to_numpy(dtype=object, na_value=None)} if "id_valid" in d else {}
    person = (norm["customer_type"] != "ORGANISATION").to_numpy() if "customer_type" in norm else True
    # the keys two masters compare when weak evidence joins them (``engine.join_on_cluster_evidence``)
    out["keys"] = {c: d[c].to_numpy(dtype=object, na_value=None) for c in ("vin", "plate", "email", "id_valid", "mobile")
                   if c in d}
    for key, col in (("names", "name_key"), ("genders", "gender")):   # an organisation's names are contacts
        if col in norm:
            out[key] = np.where(person, norm[col].to_numpy(dtype=object, na_value=None), None)
    return out


def master_ids(labels: np.ndarray, prefix: str = "M") -> np.ndarray:
    """Sequential ids in order of each cluster's first record."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    codes = np.searchsorted(np.unique(labels), labels)
    width = max(7, len(str(len(order))))
    return np.array([f"{prefix}{r:0{width}d}" for r in rank[codes]], dtype=object)


# ------------------------------------------------------------------------------------ evaluation

def _pairs(counts: np.ndarray) -> int:
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


def pairwise_metrics(labels, truth) -> dict:
    """Cluster-level pairwise precision / recall / F1: every pair of records in one predicted cluster
    is a predicted link; every pair sharing a true entity a true one."""
    f = pd.DataFrame({"p": np.asarray(labels), "t": np.asarray(truth)})
    predicted = _pairs(f.groupby("p").size().to_numpy())
    true = _pairs(f.groupby("t").size().to_numpy())
    tp = _pairs(f.groupby(["p", "t"]).size().to_numpy())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted_pairs": predicted, "true_pairs": true,
            "true_positive": tp, "false_pairs": predicted - tp}


def false_merges_by_kind(labels, truth, frame: pd.DataFrame) -> dict[str, int]:
    """Records merged into a cluster whose majority is another entity, by what they have in common
    with that majority: household (same household), fleet contact, salesperson phone, namesake."""
    f = pd.DataFrame({"p": np.asarray(labels), "t": np.asarray(truth)})
    f["household"] = frame["household"].to_numpy() if "household" in frame else f["t"]
    f["kind"] = frame["kind"].to_numpy() if "kind" in frame else "?"
    size = f.groupby(["p", "t"])["t"].transform("size")
    major = f.assign(size=size).sort_values(["p", "size"], ascending=[True, False]).groupby("p").first()
    f["major_t"] = f["p"].map(major["t"])
    f["major_h"] = f["p"].map(major["household"])
    wrong = f[f["t"] != f["major_t"]]
    if wrong.empty:
        return {}
    why = np.where(wrong["household"] == wrong["major_h"], "household",
                   np.where(wrong["kind"] == "fleet", "fleet contact",
                            np.where(wrong["kind"] == "salesperson_phone", "salesperson phone", "other")))
    return pd.Series(why).value_counts().to_dict()


def resolve_increment(existing: pd.DataFrame, existing_labels: np.ndarray, new: pd.DataFrame, params: dict,
                      model=DEALER, threads: int | None = None, normalised: bool = True) -> Result:
    """Score a batch of new records against existing clustered records (and each other), with the
    model's trained parameters; existing clusters are kept and only joined where a new record brings
    identity evidence. Returns labels for existing + new records (positions in that order)."""
    t = {}
    t0 = time.perf_counter()
    new_norm = new if normalised else normalise_records(new)
    t["normalise"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    both = pd.concat([existing, new_norm], ignore_index=True)
    is_new = np.r_[np.zeros(len(existing), dtype=bool), np.ones(len(new_norm), dtype=bool)]
    con = engine.connect(threads)
    load_records(con, both, is_new)
    t["load"] = time.perf_counter() - t0
    scored = engine.score(con, model, params=params, only_new=True)
    t.update({k: v for k, v in scored.timings.items() if k != "candidates"})
    t0 = time.perf_counter()
    start = np.r_[np.asarray(existing_labels, dtype=np.int64), np.arange(len(existing), len(both))]
    out = engine.cluster(len(both), scored.pairs, **identities(both), start=start)
    t["cluster"] = time.perf_counter() - t0
    con.close()
    return Result(out, scored, both, t)
