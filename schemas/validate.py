"""Normalise and validate one chunk of a feed: every row comes out loaded or quarantined.

``validate_chunk`` is pure (no I/O): raw cells in, a clean frame plus quarantine and value-issue
records out. Rules of ``dms-exports.md`` section 6:

* a required value (key, required date, the VIN where the feed needs one) missing or invalid:
  the row is quarantined with a reason code and is not loaded;
* an optional value invalid: loaded as blank, recorded as a value issue (column, raw value, reason);
* structural row faults (wrong number of fields, the trailing totals row ``合计``) quarantine the row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from connectors.files import UNDECODABLE

from . import checks as ck
from .feeds import FeedDef
from .profiles import Profile

@dataclass
class ChunkResult:
    frame: pd.DataFrame                # canonical columns (strings, None for blank) + source_row
    quarantine: list[dict] = field(default_factory=list)
    issues: list[dict] = field(default_factory=list)


def normalise_frame(raw: pd.DataFrame, feed: FeedDef, profile: Profile) -> pd.DataFrame:
    """Clean and normalise every canonical column by its kind (vectorised)."""
    out = {}
    for col, meta in feed.columns.items():
        s = ck.clean_text(raw[col]) if col in raw else pd.Series(pd.NA, index=raw.index, dtype="str")
        kind = meta["kind"]
        if kind in ("mobile", "masked_mobile"):
            s = ck.normalise_mobile(s)
        elif kind == "phone":
            s = ck.normalise_phone(s)
        elif kind == "id_number":
            s = ck.normalise_id_number(s)
        elif kind == "vin":
            s = ck.normalise_vin(s)
        elif kind == "plate":
            s = ck.normalise_plate(s)
        elif kind == "email":
            s = ck.normalise_email(s)
        elif kind == "decimal":
            s = ck.normalise_decimal(s)
        elif kind == "integer":
            s = ck.normalise_integer(s)
        elif kind == "date":
            s = ck.normalise_date(s, profile.date_formats)
        elif kind == "datetime":
            s = ck.normalise_datetime(s, profile.date_formats)
        if kind in ("enum", "bool"):
            mapping = {**(meta.get("mapping") or {}), **profile.values.get(col, {})}
            s = ck.normalise_enum(s, mapping)
        out[col] = s
    return pd.DataFrame(out, index=raw.index)


def _failures(norm: pd.DataFrame, feed: FeedDef) -> pd.DataFrame:
    """(index, column, check) of every failing cell, by lazy pandera validation."""
    try:
        feed.model.validate(norm, lazy=True)
        return pd.DataFrame(columns=["index", "column", "check"])
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
    fc = fc[fc["index"].notna() & fc["column"].notna()]
    checks = fc["check"].astype(str).str.replace(r"\(.*$", "", regex=True)
    checks = checks.where(~fc["check"].astype(str).str.startswith("isin"), fc["check"].astype(str))
    return pd.DataFrame({"index": fc["index"].astype(int).to_numpy(), "column": fc["column"].to_numpy(),
                         "check": checks.to_numpy()})


def validate_chunk(raw: pd.DataFrame, rownums: np.ndarray, feed: FeedDef, profile: Profile, *,
                   source_file: str, header: list[str], raw_cells: Callable[[int], list[str]],
                   bad_structure: dict[int, tuple[str, str]] | None = None, undecodable: bool = True) -> ChunkResult:
    """``raw``: canonical columns of raw strings, positional index 0..n-1; ``rownums``: the file
    row of each; ``raw_cells(pos)``: the row as read (for the quarantine record); ``bad_structure``:
    position -> (reason, message) for rows already known to be broken; ``undecodable``: False when the
    file has shown no bytes in neither encoding so far (no cell can hold the marker)."""
    bad_structure = dict(bad_structure or {})
    norm = normalise_frame(raw, feed, profile)
    fails = _failures(norm, feed)

    # cells with bytes in neither UTF-8 nor GB18030 are invalid whatever their check says
    enc_rows = []
    for col in (raw.columns if undecodable else []):
        hit = raw[col].str.contains(UNDECODABLE, regex=False, na=False)
        if hit.any():
            enc_rows.append(pd.DataFrame({"index": np.flatnonzero(hit.to_numpy()), "column": col,
                                          "check": "encoding"}))
    if enc_rows:
        fails = pd.concat([fails, *enc_rows], ignore_index=True).drop_duplicates(["index", "column"], keep="last")

    quarantine: list[dict] = []
    issues: list[dict] = []
    q_pos: set[int] = set()

    def raw_row(pos: int) -> str:
        cells = raw_cells(pos)
        return json.dumps({(h or f"col{i + 1}"): (cells[i] if i < len(cells) else None)
                           for i, h in enumerate(header)} | (
            {f"extra{j + 1}": c for j, c in enumerate(cells[len(header):])} if len(cells) > len(header) else {}),
            ensure_ascii=False)

    for pos, (reason, message) in sorted(bad_structure.items()):
        q_pos.add(pos)
        quarantine.append(dict(source_file=source_file, row_number=int(rownums[pos]), column_name=None,
                               raw_value=None, reason_code=reason, message=message, raw_row=raw_row(pos)))

    if len(fails):
        raw_np = {c: raw[c].to_numpy(dtype=object, na_value=None) for c in set(fails["column"]) if c in raw}
        required = set(feed.required)
        fails = fails[~fails["index"].isin(q_pos)]
        req = fails[fails["column"].isin(required)].sort_values("index", kind="stable")
        # one quarantine record per row: the first failing required column names it, the message all
        r_pos, r_col, r_chk = (req[c].to_numpy() for c in ("index", "column", "check"))
        bounds = np.flatnonzero(np.r_[True, r_pos[1:] != r_pos[:-1], True]) if len(r_pos) else np.zeros(1, int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            pos = int(r_pos[a])
            explained = [(c, v, *ck.explain(chk, v)) for c, chk, v in
                         ((r_col[i], r_chk[i], raw_np[r_col[i]][pos] if r_col[i] in raw_np else None)
                          for i in range(a, b))]
            col, value, reason, _ = explained[0]
            message = "; ".join(f"{c}: {m}" for c, _, _, m in explained)
            quarantine.append(dict(source_file=source_file, row_number=int(rownums[pos]), column_name=col,
                                   raw_value=_s(value), reason_code=reason, message=message, raw_row=raw_row(pos)))
            q_pos.add(pos)
        opt = fails[~fails["column"].isin(required) & ~fails["index"].isin(q_pos)]
        for pos, col, chk in zip(opt["index"], opt["column"], opt["check"]):
            value = raw_np[col][int(pos)]
            reason, message = ck.explain(chk, value)
            issues.append(dict(source_file=source_file, source_row=int(rownums[int(pos)]), column_name=col,
                               raw_value=_s(value), reason_code=reason, message=message, severity="ISSUE"))
        if len(opt):
            for col, grp in opt.groupby("column"):
                norm.loc[grp["index"].to_numpy(), col] = None

    keep = np.ones(len(norm), dtype=bool)
    if q_pos:
        keep[list(q_pos)] = False
    frame = norm[keep].copy()
    for col, meta in feed.columns.items():
        if meta["kind"] == "bool":
            frame[col] = frame[col].map({"Y": "1", "N": "0"})
    frame["source_row"] = rownums[keep]
    return ChunkResult(frame, quarantine, issues)


def _s(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return str(v)
