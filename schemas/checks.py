"""The normalisers and checks on pandas Series, for the matching code (``resolution``).

Every function here is the one implementation in ``checks_pl`` (polars) behind a pandas front: the
Series goes to polars (Arrow, no copy for ``str`` Series), the result comes back with the same
index. A rule changes in ``rules`` / ``checks_pl`` only, never here (issue #14 item 5).

* ``normalise_<kind>(series)``: raw strings -> canonical strings (NA for blank).
* ``is_<kind>(series)``: bool Series. (The feed models register the polars checks with pandera
  themselves, ``feeds``: they validate polars frames.)
* ``explain(check, value)``: reason code and message for one failing value (``rules.explain``).
"""
from __future__ import annotations

import functools

import pandas as pd
import polars as pl

from . import checks_pl as _pl
from .rules import (BOOL_WORDS, DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, NULL_TOKENS,  # noqa: F401
                    PROVINCES, RID_CHECK as _RID_CHECK, RID_WEIGHTS as _RID_WEIGHTS, explain, rid_check_ok,
                    uscc_check_ok, vin_check_digit, vin_check_ok)


def to_polars(s: pd.Series) -> pl.Series:
    """A pandas string Series as a polars String Series (NA -> null)."""
    if len(s) and s.dtype == object:
        s = s.astype("str")
    try:
        out = pl.from_pandas(s, nan_to_null=True)
    except (TypeError, ValueError):
        out = pl.Series("v", s.astype(object).where(s.notna(), None).tolist(), dtype=pl.String)
    return out.cast(pl.String) if out.dtype != pl.String else out


def to_pandas(r: pl.Series, index) -> pd.Series:
    """A polars result as a pandas Series on ``index``: bool stays bool, strings are ``str``."""
    if r.dtype == pl.Boolean:
        return pd.Series(r.to_numpy(), index=index, dtype=bool)
    if r.dtype == pl.Datetime("us") or r.dtype.is_temporal():
        return pd.Series(r.to_pandas().to_numpy(), index=index)
    return pd.Series(r.to_arrow(), index=index, dtype="str") if len(r) else pd.Series([], index=index, dtype="str")


def _front(fn):
    @functools.wraps(fn)
    def call(s: pd.Series, *args, **kwargs) -> pd.Series:
        return to_pandas(fn(to_polars(s), *args, **kwargs), s.index)
    return call


clean_text = _front(_pl.clean_text)
has_private_use = _front(_pl.has_private_use)
normalise_mobile = _front(_pl.normalise_mobile)
is_cn_mobile = _front(_pl.is_cn_mobile)
is_masked_mobile = _front(_pl.is_masked_mobile)
normalise_phone = _front(_pl.normalise_phone)
is_cn_phone = _front(_pl.is_cn_phone)
normalise_id_number = _front(_pl.normalise_id_number)
resident_id_ok = _front(_pl.resident_id_ok)
uscc_ok = _front(_pl.uscc_ok)
is_id_number = _front(_pl.is_id_number)
normalise_vin = _front(_pl.normalise_vin)
is_vin = _front(_pl.is_vin)
normalise_plate = _front(_pl.normalise_plate)
is_cn_plate = _front(_pl.is_cn_plate)
is_postcode = _front(_pl.is_postcode)
normalise_email = _front(_pl.normalise_email)
is_email = _front(_pl.is_email)
normalise_decimal = _front(_pl.normalise_decimal)
is_decimal = _front(_pl.is_decimal)
normalise_integer = _front(_pl.normalise_integer)
is_integer = _front(_pl.is_integer)
parse_dates = _front(_pl.parse_dates)
normalise_date = _front(_pl.normalise_date)
normalise_datetime = _front(_pl.normalise_datetime)
is_iso_date = _front(_pl.is_iso_date)
is_iso_datetime = _front(_pl.is_iso_datetime)
normalise_enum = _front(_pl.normalise_enum)


def id_number_by_type(id_type: pd.Series, number: pd.Series) -> pd.Series:
    """``checks_pl.id_number_by_type`` on pandas: the bool Series only."""
    ok, _ = _pl.id_number_by_type(to_polars(id_type), to_polars(number))
    return to_pandas(ok, number.index)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("annotations", "functools", "np", "pd", "pl")]
