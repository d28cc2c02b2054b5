"""Scoring for the store: the source records' normalised columns as a frame, the model's stored
parameters, and the candidate pairs of new and changed records scored on DuckDB."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from dealersync.store import masters as store
from dealersync.store.tables import MATCH_COLUMNS

from . import engine
from .models import DEALER
from .progress import NO_PROGRESS, Progress
from .resolve import load_records


def load_all(conn: Connection) -> pd.DataFrame:
    """Every source record: id, source, source_id, master_id, customer_type and the matching columns."""
    df = pd.DataFrame(store.match_records(conn), columns=store.MATCH_RECORD_COLUMNS)
    df = df.rename(columns={f"m_{c}": c for c in MATCH_COLUMNS})
    df["customer_type"] = df.pop("raw_customer_type")
    for c in MATCH_COLUMNS:
        if c not in ("name_placeholder", "vin_ok"):
            df[c] = df[c].astype("str")
    df["name_placeholder"] = df["name_placeholder"].fillna(True).astype(bool)
    df["vin_ok"] = df["vin_ok"].fillna(False).astype(bool)
    df["customer_type"] = df["customer_type"].fillna("PERSON").astype("str")
    return df


def stored_params(conn: Connection) -> dict | None:
    text = store.model_params(conn, DEALER.version)
    if text is None:
        return None
    p = json.loads(text)
    return {"u": {k: np.array(v) for k, v in p["u"].items()}, "m": {k: np.array(v) for k, v in p["m"].items()},
            "lambda": p["lambda"]}


def save_params(conn: Connection, params: dict, records: int, now: datetime) -> None:
    doc = json.dumps({"u": {k: list(map(float, v)) for k, v in params["u"].items()},
                      "m": {k: list(map(float, v)) for k, v in params["m"].items()}, "lambda": params["lambda"]})
    store.save_model_params(conn, DEALER.version, doc, records=records, at=now)


def score_records(conn: Connection, df: pd.DataFrame, is_new: np.ndarray, *, full: bool, threads: int | None,
                  now: datetime, progress: Progress = NO_PROGRESS) -> engine.Scored:
    """Score the candidate pairs touching a new record (all of them with ``full`` or no stored
    parameters, which are then estimated and stored)."""
    progress.start("score")
    con = engine.connect(threads)
    try:
        load_records(con, df[[c for c in df.columns if c not in ("id", "master_id")]], is_new)
        params = None if full else stored_params(conn)
        scored = engine.score(con, DEALER, params=params, only_new=not full and params is not None,
                              on_candidates=lambda n: progress.set_total("score", n))
    finally:
        con.close()
    if params is None:
        save_params(conn, scored.params, len(df), now)
    progress.finish("score", len(scored.pairs))
    return scored
