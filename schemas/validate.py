"""Normalise and validate one chunk of a feed: every row comes out loaded or quarantined.

``validate_chunk`` is pure (no I/O): raw cells in, a clean frame plus quarantine and value-issue
records out. Rules of ``dms-exports.md`` section 6:

* a required value (key, required date, the VIN where the feed needs one) missing or invalid:
  the row is quarantined with a reason code and is not loaded;
* an optional value invalid: loaded as blank, recorded as a value issue (column, raw value, reason);
* structural row faults (wrong number of fields, the trailing totals row ``合计``) quarantine the row;
* across columns: the ID type (``证件类型``) chooses the check of the ID number (``checks_pl.id_number_by_type``);
* a private-use or a control character in a name is kept and reported (a WARNING value issue,
  ``PRIVATE_USE_CHAR`` or ``CONTROL_CHARACTER``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pandera.polars as pa
import polars as pl

from dealersync.schemas.cells import UNDECODABLE

from . import checks_pl as ckp
from . import rules as ck
from .feeds import FeedDef
from .profiles import Profile

@dataclass
class ChunkResult:
    frame: pl.DataFrame                # canonical columns (strings, null for blank) + source_row
    quarantine: list[dict] = field(default_factory=list)
    issues: list[dict] = field(default_factory=list)


_NORMALISERS = {"mobile": ckp.normalise_mobile, "masked_mobile": ckp.normalise_mobile,
                "phone": ckp.normalise_phone, "id_number": ckp.normalise_id_number, "vin": ckp.normalise_vin,
                "plate": ckp.normalise_plate, "email": ckp.normalise_email, "decimal": ckp.normalise_decimal,
                "integer": ckp.normalise_integer}


def normalise_frame(raw: pl.DataFrame, feed: FeedDef, profile: Profile) -> pl.DataFrame:
    """Clean and normalise every canonical column by its kind (vectorised, polars)."""
    out = []
    for col, meta in feed.columns.items():
        s = ckp.clean_text(raw[col]) if col in raw.columns else pl.Series(col, [None] * raw.height, dtype=pl.String)
        kind = meta["kind"]
        if kind in _NORMALISERS:
            s = _NORMALISERS[kind](s)
        elif kind == "date":
            s = ckp.normalise_date(s, profile.date_formats)
        elif kind == "datetime":
            s = ckp.normalise_datetime(s, profile.date_formats)
        if kind in ("enum", "bool"):
            mapping = {**(meta.get("mapping") or {}), **profile.values.get(col, {})}
            s = ckp.normalise_enum(s, mapping)
        out.append(s.alias(col))
    return pl.DataFrame(out)


def _failures(norm: pl.DataFrame, feed: FeedDef) -> pd.DataFrame:
    """(index, column, check) of every failing cell, by lazy pandera validation, then the rules
    across columns."""
    try:
        feed.model.validate(norm, lazy=True)
        fails = pd.DataFrame({"index": np.zeros(0, np.int64), "column": [], "check": []})
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
        fc = fc.filter(pl.col("index").is_not_null() & pl.col("column").is_not_null())
        check = fc["check"].cast(pl.String)
        check = pl.select(pl.when(check.str.starts_with("isin")).then(check)
                          .otherwise(check.str.replace(r"\(.*$", ""))).to_series()
        fails = pd.DataFrame({"index": fc["index"].cast(pl.Int64).to_numpy(), "column": fc["column"].to_numpy(),
                              "check": check.to_numpy()})
    return _typed_ids(norm, fails)


def _typed_ids(norm: pl.DataFrame, fails: pd.DataFrame) -> pd.DataFrame:
    """Where a row has a known ID type (spec 2.1 ``id_type``), its ``id_number`` is checked by that
    type's rule alone: pandera's untyped verdict on those rows is replaced."""
    if "id_type" not in norm.columns or "id_number" not in norm.columns:
        return fails
    ok, check = ckp.id_number_by_type(norm["id_type"], norm["id_number"])
    typed = (check != "id_number").to_numpy()
    if not typed.any():
        return fails
    on_typed = (fails["column"] == "id_number") & typed[fails["index"].to_numpy()] if len(fails) else []
    bad = np.flatnonzero(typed & ~ok.to_numpy())
    extra = pd.DataFrame({"index": bad.astype(np.int64), "column": "id_number", "check": check.to_numpy()[bad]})
    return pd.concat([fails[~np.asarray(on_typed, dtype=bool)] if len(fails) else fails, extra], ignore_index=True)


def _name_characters(norm: pl.DataFrame, feed: FeedDef, rownums: np.ndarray, source_file: str) -> list[dict]:
    """WARNING value issues for names holding a private-use character or a control character (kept as
    they are; the writers of ``dealersync.textsafe`` leave control characters out of every sheet)."""
    out = []
    for col in (c for c, m in feed.columns.items() if m.get("person_name") and c in norm.columns):
        for check, hit in (("private_use", ckp.has_private_use(norm[col])), ("control", ckp.has_control(norm[col]))):
            for pos in hit.arg_true().to_list():
                value = norm[col][pos]
                reason, message = ck.explain(check, value)
                out.append(dict(source_file=source_file, source_row=int(rownums[pos]), column_name=col,
                                raw_value=value, reason_code=reason, message=message, severity="WARNING"))
    return out


def validate_chunk(raw: pl.DataFrame, rownums: np.ndarray, feed: FeedDef, profile: Profile, *,
                   source_file: str, header: list[str], raw_cells: Callable[[list[int]], list[list[str]]],
                   bad_structure: dict[int, tuple[str, str]] | None = None, undecodable: bool = True) -> ChunkResult:
    """``raw``: canonical columns of raw strings (polars), rows 0..n-1; ``rownums``: the file
    row of each; ``raw_cells(positions)``: those rows as read (for the quarantine records); ``bad_structure``:
    position -> (reason, message) for rows already known to be broken; ``undecodable``: False when the
    file has shown no bytes in neither encoding so far (no cell can hold the marker)."""
    bad_structure = dict(bad_structure or {})
    norm = normalise_frame(raw, feed, profile)
    fails = _failures(norm, feed)

    # cells with bytes in neither UTF-8 nor GB18030 are invalid whatever their check says
    enc_rows = []
    for col in (raw.columns if undecodable else []):
        hit = raw[col].str.contains(UNDECODABLE, literal=True).fill_null(False)
        if hit.any():
            enc_rows.append(pd.DataFrame({"index": hit.arg_true().to_numpy().astype(np.int64), "column": col,
                                          "check": "encoding"}))
    if enc_rows:
        fails = pd.concat([fails, *enc_rows], ignore_index=True).drop_duplicates(["index", "column"], keep="last")

    quarantine: list[dict] = []
    issues: list[dict] = []
    q_pos: set[int] = set()
    q_at: list[int] = []   # the position of each quarantine record's row, for its raw row

    def raw_row(cells: list[str]) -> str:
        return json.dumps({(h or f"col{i + 1}"): (cells[i] if i < len(cells) else None)
                           for i, h in enumerate(header)} | (
            {f"extra{j + 1}": c for j, c in enumerate(cells[len(header):])} if len(cells) > len(header) else {}),
            ensure_ascii=False)

    for pos, (reason, message) in sorted(bad_structure.items()):
        q_pos.add(pos)
        quarantine.append(dict(source_file=source_file, row_number=int(rownums[pos]), column_name=None,
                               raw_value=None, reason_code=reason, message=message))
        q_at.append(pos)

    if len(fails):
        # the raw value of each failing cell, looked up by (position, column)
        raw_at: dict[str, dict[int, str | None]] = {}
        for c, grp in fails.groupby("column"):
            if c in raw.columns:
                pos = np.unique(grp["index"].to_numpy())
                raw_at[c] = dict(zip(pos.tolist(), raw[c].gather(pos).to_list()))
        required = set(feed.required)
        fails = fails[~fails["index"].isin(q_pos)]
        req = fails[fails["column"].isin(required)].sort_values("index", kind="stable")
        # one quarantine record per row: the first failing required column names it, the message all
        r_pos, r_col, r_chk = (req[c].to_numpy() for c in ("index", "column", "check"))
        bounds = np.flatnonzero(np.r_[True, r_pos[1:] != r_pos[:-1], True]) if len(r_pos) else np.zeros(1, int)
        for a, b in zip(bounds[:-1], bounds[1:]):
            pos = int(r_pos[a])
            explained = [(c, v, *ck.explain(chk, v)) for c, chk, v in
                         ((r_col[i], r_chk[i], raw_at[r_col[i]][pos] if r_col[i] in raw_at else None)
                          for i in range(a, b))]
            col, value, reason, _ = explained[0]
            message = "; ".join(f"{c}: {m}" for c, _, _, m in explained)
            quarantine.append(dict(source_file=source_file, row_number=int(rownums[pos]), column_name=col,
                                   raw_value=_s(value), reason_code=reason, message=message))
            q_at.append(pos)
            q_pos.add(pos)
        opt = fails[~fails["column"].isin(required) & ~fails["index"].isin(q_pos)]
        for pos, col, chk in zip(opt["index"], opt["column"], opt["check"]):
            value = raw_at[col][int(pos)]
            reason, message = ck.explain(chk, value)
            issues.append(dict(source_file=source_file, source_row=int(rownums[int(pos)]), column_name=col,
                               raw_value=_s(value), reason_code=reason, message=message, severity="ISSUE"))
        if len(opt):
            norm = norm.with_columns(norm[col].scatter(grp["index"].to_numpy(), None)
                                     for col, grp in opt.groupby("column"))

    for q, cells in zip(quarantine, raw_cells(q_at)):   # the rows as read, fetched together
        q["raw_row"] = raw_row(cells)

    keep = np.ones(norm.height, dtype=bool)
    if q_pos:
        keep[list(q_pos)] = False
    if not keep.all():
        norm = norm.filter(pl.Series(keep))
    bools = [c for c, m in feed.columns.items() if m["kind"] == "bool"]
    if bools:
        norm = norm.with_columns(pl.col(c).replace_strict({"Y": "1", "N": "0"}, default=None) for c in bools)
    issues += _name_characters(norm, feed, rownums[keep], source_file)
    frame = norm.with_columns(pl.Series("source_row", rownums[keep], dtype=pl.Int64))
    return ChunkResult(frame, quarantine, issues)


def _s(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return str(v)
