"""``dealersync resolve-file IN.csv --out OUT.csv``: one pass over a file, no store."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from dealersync.errors import BadSourceData
from dealersync.textsafe import write_csv

from . import engine
from .resolve import FILE_HEADER, identities, master_ids, resolve_frame


def read_input(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadSourceData(f"not UTF-8 at byte {e.start}", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BadSourceData(f"unreadable CSV: {e}", file=str(path)) from None
    df.columns = [c.strip().lower() for c in df.columns]
    for c in ("source", "source_id"):
        if c not in df.columns:
            raise BadSourceData(f"required column missing (header must start {','.join(FILE_HEADER[:2])})",
                                file=str(path), row=1, column=c)
        blank = df[c].str.strip() == ""
        if blank.any():
            raise BadSourceData("blank value in a required column", file=str(path),
                                row=int(np.flatnonzero(blank.to_numpy())[0]) + 2, column=c)
    for c in FILE_HEADER:
        if c not in df.columns:
            df[c] = ""
    return df[FILE_HEADER].replace("", pd.NA)


def resolve_file(in_path: str | Path, out_path: str | Path, threads: int | None = None, progress=None) -> dict:
    """Resolve a CSV (``FILE_HEADER`` columns) into ``source, source_id, master_id``; ``progress``: a
    callback taking ``progress.ProgressEvent``, as in ``resolve_frame``. Raises BadSourceData naming file, row and column."""
    t0 = time.perf_counter()
    in_path, out_path = Path(in_path), Path(out_path)
    df = read_input(in_path)
    res = resolve_frame(df, threads=threads, progress=progress)
    # the same source record twice in the file is one record: same master
    dup = df.duplicated(["source", "source_id"], keep=False)
    if dup.any():
        first = df[dup].groupby(["source", "source_id"]).cumcount() > 0
        keys = df[dup].reset_index()
        firsts = keys.groupby(["source", "source_id"])["index"].transform("first")
        pairs = [(int(a), int(b)) for a, b in zip(firsts[first.to_numpy()], keys["index"][first.to_numpy()])]
        res.labels = engine.cluster(len(df), res.scored.pairs, **identities(res.norm), force_link=pairs)
    ids = master_ids(res.labels)
    # text-safe (OWASP): a source id such as "=HYPERLINK(...)" is written as text, not a formula
    write_csv(out_path, ["source", "source_id", "master_id"],
              zip(df["source"].tolist(), df["source_id"].tolist(), ids.tolist() if hasattr(ids, "tolist") else ids))
    decisions = res.scored.pairs["decision"].value_counts().to_dict()
    return {"records": len(df), "masters": int(len(np.unique(res.labels))),
            "candidate_pairs": int(len(res.scored.pairs)), "merge_pairs": int(decisions.get("MERGE", 0)),
            "review_pairs": int(decisions.get("REVIEW", 0)), "household_pairs": int(decisions.get("HOUSEHOLD", 0)),
            "seconds": round(time.perf_counter() - t0, 2)}
