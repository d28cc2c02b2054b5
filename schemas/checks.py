"""Reusable, vectorised normalisers and checks for Chinese dealer data.

Two halves per value kind:

* ``normalise_<kind>(series)`` turns a raw string column into the canonical string form
  (``13812345678``, ``2024-03-05``, ``LFV2A21K6A4123458``...). A value it cannot make sense of is
  left as it is, so that the check below rejects it and the message can quote it.
* ``is_<kind>(series)`` is the check: a boolean Series, vectorised, registered with pandera so the
  feed models can say ``Field(vin=())``.

``explain(kind, value)`` gives the reason code and a human message for one failing value; it only
runs on failures, so it may be plain Python.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

import numpy as np
import pandas as pd
import pandera.extensions as extensions

from .destroyed import destroyed

NULL_TOKENS = ["", "NULL", "null", "Null", "NONE", "None", "none", "NAN", "NaN", "nan", "N/A", "n/a",
               "NA", "无", "空", "-", "--", "—", "/", "#N/A"]


# --------------------------------------------------------------------------- patterns
# Shared with checks_pl.py (the polars twin): one place for each rule.
_PHONE_RE = r"^(?:0[0-9]{2,3}-[0-9]{7,8}|[0-9]{7,8}|[48]00-?[0-9]{3}-?[0-9]{4}|1[3-9][0-9]{9})(?:转[0-9]{1,6})?$"
_MOBILE_SEPARATORS = r"[ \-().·]"
_MOBILE_PREFIX = r"^(?:\+86|0086|86)(1[0-9]{10})$"
_MASKED_MOBILE_RE = r"^1[3-9][0-9]\*{4}[0-9]{4}$"
_PHONE_EXTENSION = r"(?i) ?(?:ext\.?|x|分机) ?([0-9]+)$"
_PHONE_SEPARATORS = r"[ ()]"
_PHONE_COUNTRY = r"^(?:\+86|0086)-?"
_PHONE_AREA = r"^(0[0-9]{2,3})-?([0-9]{7,8})"
_RID_FORMAT = r"^[0-9]{17}[0-9X]$"
_USCC_FORMAT = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
_ID18_FORMAT = r"^[0-9A-Z]{18}$"
_ID_OTHER_FORMAT = r"^[0-9A-Z]{5,20}$"
_ID_TRUNCATED = r"^[0-9]{13,17}$"
_VIN_SEPARATORS = r"[ \-]"
_PLATE_SEPARATORS = r"[ ·.\-]"
_POSTCODE_RE = r"^[0-9]{6}$"
_EMAIL_RE = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}$"
_DECIMAL_NOISE = r"[,， ¥￥]|元$|^CNY|^RMB"
_DECIMAL_RE = r"^-?[0-9]{1,12}(?:\.[0-9]{1,4})?$"   # what NUMERIC(16, 4) holds
_INTEGER_NOISE = r"[,， ]|(?i:km|公里)$"
_INTEGER_POINT_ZERO = r"^(-?[0-9]+)\.0*$"
_INTEGER_LEADING_ZEROS = r"^(-?)0+([0-9])"
_INTEGER_RE = r"^-?[0-9]{1,12}$"
_ISO_DATE_CHECK = r"^(?:19|20|21)[0-9]{2}-[0-9]{2}-[0-9]{2}$"
_ISO_DATETIME_CHECK = r"^(?:19|20|21)[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"


# --------------------------------------------------------------------------- generic text

# characters NFKC changes in this data: ideographic space, full-width ASCII, enclosed numbers...
_NEEDS_NFKC = "[\u00a0\u2000-\u200b\u2460-\u24ff\u3000\u3250-\u33ff\ufe30-\ufe4f\uff01-\uff5e]"
_WHITESPACE = "[ \t\r\n\f\v\u00a0\u3000]+"
_ODD = _NEEDS_NFKC + "|[\t\r\n\f\v]|  |^'|^ | $"   # what needs more than the null-token check


def clean_text(s: pd.Series) -> pd.Series:
    """NFKC (full-width digits/letters/parentheses to half-width), trim, Excel's leading
    apostrophe removed, runs of white space collapsed, null tokens (NULL, 无, -) to NA.

    Vectorised on pyarrow (RE2) patterns; NFKC runs only on the few values that need it."""
    s = s.astype("str") if s.dtype != "str" else s
    # one scan tells which (costlier) steps this column needs at all
    odd = s.str.contains(_ODD, regex=True, na=False)
    if odd.any():
        part = s[odd]
        wide = part.str.contains(_NEEDS_NFKC, regex=True, na=False)
        if wide.any():
            part = part.copy()
            part[wide] = [unicodedata.normalize("NFKC", v) for v in part[wide]]
        part = part.str.replace(_WHITESPACE, " ", regex=True).str.strip()
        part = part.str.replace("^'+", "", regex=True).str.strip()
        s = s.copy()
        s[odd] = part
    return s.mask(s.isna() | s.isin(NULL_TOKENS))


# --------------------------------------------------------------------------- mobiles, phones

_MOBILE_RE = r"^1[3-9][0-9]{9}$"


def normalise_mobile(s: pd.Series) -> pd.Series:
    """``+86 138-1234-5678``, ``8613812345678``, ``138 1234 5678``, ``0086...`` -> ``13812345678``."""
    d = s.str.replace(_MOBILE_SEPARATORS, "", regex=True)
    d = d.str.replace(_MOBILE_PREFIX, r"\1", regex=True)
    return d


def is_cn_mobile(s: pd.Series) -> pd.Series:
    """11-digit CN mobile, not a placeholder such as ``13800000000`` (``destroyed.destroyed``)."""
    return s.str.fullmatch(_MOBILE_RE, na=False) & ~destroyed(s, "mobile")


def is_masked_mobile(s: pd.Series) -> pd.Series:
    """A mobile as the OEM sends it, masked: ``138****5678``."""
    return s.str.fullmatch(_MASKED_MOBILE_RE, na=False)


def normalise_phone(s: pd.Series) -> pd.Series:
    """Landlines: ``0755 8888 1234转123`` -> ``0755-88881234转123``; mobiles as mobiles."""
    d = s.str.replace(_PHONE_EXTENSION, r"转\1", regex=True)
    d = d.str.replace(_PHONE_SEPARATORS, "", regex=True).str.replace(_PHONE_COUNTRY, "", regex=True)
    d = d.str.replace(_PHONE_AREA, r"\1-\2", regex=True)
    mobile = normalise_mobile(d)
    return mobile.where(is_cn_mobile(mobile), d)


def is_cn_phone(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_PHONE_RE,
                           na=False)


# --------------------------------------------------------------------------- check digits

_RID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_SCI_RE = r"^[+-]?[0-9]+(?:\.[0-9]+)?E[+-]?[0-9]+$"


def _as_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width ASCII strings -> uint8 matrix (n, width)."""
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def rid_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 18) byte matrix ``m`` whose ISO 7064 MOD 11-2 check character is right."""
    return _RID_CHECK[((m[:, :17] - 48).astype(np.int64) @ _RID_WEIGHTS) % 11] == m[:, 17]


def normalise_id_number(s: pd.Series) -> pd.Series:
    return s.str.replace(" ", "", regex=False).str.upper()


def resident_id_ok(s: pd.Series) -> pd.Series:
    """18-character PRC resident ID: format, birth date and ISO 7064 MOD 11-2 check digit."""
    fmt = s.str.fullmatch(_RID_FORMAT, na=False).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if fmt.any():
        vals = s.to_numpy(dtype=object)[fmt]
        ok = rid_check_ok(_as_matrix(vals, 18))
        births = pd.to_datetime(pd.Series([v[6:14] for v in vals]), format="%Y%m%d", errors="coerce")
        ok &= births.notna().to_numpy() & (births.dt.year.to_numpy(na_value=0) >= 1900)
        out[fmt] = ok
    return pd.Series(out, index=s.index)


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_VALUE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(_USCC_ALPHABET):
    _USCC_VALUE[ord(_c)] = _i


def uscc_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 18) byte matrix ``m`` whose GB 32100 MOD 31 check character is right."""
    v = _USCC_VALUE[m]
    return (31 - (v[:, :17] @ _USCC_WEIGHTS) % 31) % 31 == v[:, 17]


def uscc_ok(s: pd.Series) -> pd.Series:
    """Unified social credit code (GB 32100): 18 characters, MOD 31 check character."""
    fmt = s.str.fullmatch(_USCC_FORMAT, na=False).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if fmt.any():
        out[fmt] = uscc_check_ok(_as_matrix(s.to_numpy(dtype=object)[fmt], 18))
    return pd.Series(out, index=s.index)


def is_id_number(s: pd.Series) -> pd.Series:
    """Resident ID or credit code with a valid check character, or another document number
    (passport...). An 18-character number must carry a valid check character; a number Excel
    destroyed (scientific notation, zeros past the 15th digit) is never valid (``destroyed``)."""
    eighteen = s.str.fullmatch(_ID18_FORMAT, na=False)
    other = s.str.fullmatch(_ID_OTHER_FORMAT, na=False) & ~eighteen & ~s.str.fullmatch(_ID_TRUNCATED, na=False)
    return ((eighteen & (resident_id_ok(s) | uscc_ok(s))) | other) & ~destroyed(s, "id_number")


_VIN_VALUE = np.full(256, -1, dtype=np.int64)
for _c, _v in zip("0123456789", range(10)):
    _VIN_VALUE[ord(_c)] = _v
for _c, _v in zip("ABCDEFGHJKLMNPRSTUVWXYZ", [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]):
    _VIN_VALUE[ord(_c)] = _v
_VIN_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)
_VIN_CHECK = np.frombuffer(b"0123456789X", dtype=np.uint8)


def normalise_vin(s: pd.Series) -> pd.Series:
    return s.str.replace(_VIN_SEPARATORS, "", regex=True).str.upper()


def vin_check_digit(vins: list[str] | np.ndarray) -> np.ndarray:
    """Expected position-9 characters (uint8) for 17-character VINs of the VIN alphabet."""
    return _vin_check_of(_as_matrix(np.asarray(vins, dtype=object), 17))


def _vin_check_of(m: np.ndarray) -> np.ndarray:
    return _VIN_CHECK[(_VIN_VALUE[m] @ _VIN_WEIGHTS) % 11]


def vin_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 17) byte matrix ``m`` whose position-9 check digit is right."""
    return _vin_check_of(m) == m[:, 8]


def is_vin(s: pd.Series) -> pd.Series:
    """17 characters without I, O, Q, and the ISO 3779 / GB 16735 check digit at position 9."""
    fmt = s.str.fullmatch(r"^[A-HJ-NPR-Z0-9]{17}$", na=False).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if fmt.any():
        out[fmt] = vin_check_ok(_as_matrix(s.to_numpy(dtype=object)[fmt], 17))
    return pd.Series(out, index=s.index)


# --------------------------------------------------------------------------- plates, postcodes, e-mail

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_RE = (rf"^(?:[{PROVINCES}][A-HJ-NP-Z](?:[A-HJ-NP-Z0-9]{{4}}[A-HJ-NP-Z0-9挂学警港澳]"
             rf"|[DF][A-HJ-NP-Z0-9][0-9]{{4}}|[0-9]{{5}}[DF])|使[0-9]{{6}}|[0-9]{{6}}领)$")


def normalise_plate(s: pd.Series) -> pd.Series:
    return s.str.replace(_PLATE_SEPARATORS, "", regex=True).str.upper()


def is_cn_plate(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_PLATE_RE, na=False)


def is_postcode(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_POSTCODE_RE, na=False)


def normalise_email(s: pd.Series) -> pd.Series:
    return s.str.replace(" ", "", regex=False).str.lower()


def is_email(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_EMAIL_RE, na=False)


# --------------------------------------------------------------------------- numbers

def normalise_decimal(s: pd.Series) -> pd.Series:
    """``1,280.00``, ``￥1,280``, ``1280元`` -> ``1280.00`` / ``1280``."""
    return s.str.replace(_DECIMAL_NOISE, "", regex=True)


def is_decimal(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_DECIMAL_RE, na=False)


def normalise_integer(s: pd.Series) -> pd.Series:
    """``12,345`` / ``12345km`` / ``12345.0`` / ``007`` -> canonical digits (so keys compare equal)."""
    d = s.str.replace(_INTEGER_NOISE, "", regex=True)
    d = d.str.replace(_INTEGER_POINT_ZERO, r"\1", regex=True)
    return d.str.replace(_INTEGER_LEADING_ZEROS, r"\1\2", regex=True)


def is_integer(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_INTEGER_RE, na=False)


# --------------------------------------------------------------------------- dates

DEFAULT_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日"]
DEFAULT_DATETIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M",
                            "%Y-%m-%dT%H:%M:%S", "%Y%m%d %H:%M:%S", "%Y%m%d%H%M%S"]
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_EXCEL_SERIAL_RE = r"^[0-9]{5}(?:\.[0-9]+)?$"  # 10000..99999 days: 1927..2173


def parse_dates(s: pd.Series, formats: list[str] | None = None, with_time: bool = False) -> pd.Series:
    """Parse every date form of the spec into Timestamps (NaT where impossible or unknown):
    ``2024-03-05``, ``2024/3/5``, ``20240305``, ``2024-03-05 14:22:00``, Excel serials ``45356``."""
    fmts = list(formats or []) + DEFAULT_DATETIME_FORMATS + DEFAULT_DATE_FORMATS
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    todo = s.notna()
    serial = todo & s.str.fullmatch(_EXCEL_SERIAL_RE, na=False)
    if serial.any():
        days = pd.to_numeric(s[serial], errors="coerce")
        if not with_time:
            days = np.floor(days)
        out[serial] = _EXCEL_EPOCH + pd.to_timedelta(days, unit="D")
        todo &= ~serial
    if todo.sum() > 2000:  # try the formats this column actually uses first
        sample = s[todo].iloc[:: max(1, int(todo.sum()) // 500)]
        hits = {f: int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum()) for f in fmts}
        fmts = [f for f in sorted(fmts, key=lambda f: -hits[f]) if hits[f]] + [f for f in fmts if not hits[f]]
    for fmt in fmts:
        if not todo.any():
            break
        parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce")
        hit = parsed.notna()
        if hit.any():
            out[hit[hit].index] = parsed[hit]
            todo[hit[hit].index] = False
    return out


_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
# zero-padded 2024/03/05 (14:22:00): parsing and formatting it gives the same text with dashes
_SLASHED_DATE = r"^[0-9]{4}/[0-9]{2}/[0-9]{2}$"
_SLASHED_DATETIME = r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9]$"
_CANONICAL_INTEGER = r"^-?[1-9][0-9]*$|^0$"


def _normalise_temporal(s: pd.Series, formats: list[str] | None, with_time: bool) -> pd.Series:
    """Parse and re-format what is not canonical yet. Values already in the canonical form are
    left as they are (the check validates the calendar), unless the profile has formats of its own."""
    canonical = (pd.Series(False, index=s.index) if formats else
                 s.str.fullmatch(_ISO_DATETIME if with_time else _ISO_DATE, na=False))
    todo = s.notna() & ~canonical
    if not todo.any():
        return s
    part = s[todo]
    parsed = parse_dates(part, formats, with_time=with_time)
    text = parsed.dt.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")
    out = s.copy()
    out[todo] = text.where(parsed.notna(), part).astype("str")
    return out


def normalise_date(s: pd.Series, formats: list[str] | None = None) -> pd.Series:
    return _normalise_temporal(s, formats, with_time=False)


def normalise_datetime(s: pd.Series, formats: list[str] | None = None) -> pd.Series:
    return _normalise_temporal(s, formats, with_time=True)


def is_iso_date(s: pd.Series) -> pd.Series:
    """``YYYY-MM-DD`` and a real calendar date (``2024-02-30`` is not)."""
    fmt = s.str.fullmatch(_ISO_DATE_CHECK, na=False)
    return fmt & pd.to_datetime(s.where(fmt), format="%Y-%m-%d", errors="coerce").notna()


def is_iso_datetime(s: pd.Series) -> pd.Series:
    fmt = s.str.fullmatch(_ISO_DATETIME_CHECK, na=False)
    return fmt & pd.to_datetime(s.where(fmt), format="%Y-%m-%d %H:%M:%S", errors="coerce").notna()


# --------------------------------------------------------------------------- enumerations

BOOL_WORDS = {"是": "Y", "否": "N", "Y": "Y", "N": "N", "YES": "Y", "NO": "N", "1": "Y", "0": "N",
              "TRUE": "Y", "FALSE": "N", "同意": "Y", "不同意": "N", "T": "Y", "F": "N", "√": "Y", "×": "N"}


def normalise_enum(s: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Map raw words to canonical values; words not in the mapping stay as they are."""
    if not mapping:
        return s
    keyed = s.str.upper()
    upper_map = {str(k).upper(): v for k, v in mapping.items()}
    mapped = keyed.map(upper_map)
    return mapped.where(mapped.notna(), s).astype("str")


# --------------------------------------------------------------------------- pandera registration

def _reg(name: str, fn, **kw):
    def check(pandas_obj, *args):
        return fn(pandas_obj)
    check.__name__ = name
    return extensions.register_check_method(**kw)(check)


for _name, _fn in {"cn_mobile": is_cn_mobile, "masked_mobile": is_masked_mobile, "cn_phone": is_cn_phone, "id_number": is_id_number,
                   "resident_id": resident_id_ok, "vin": is_vin, "cn_plate": is_cn_plate,
                   "postcode": is_postcode, "email": is_email, "decimal": is_decimal,
                   "integer": is_integer, "iso_date": is_iso_date, "iso_datetime": is_iso_datetime}.items():
    try:
        _reg(_name, _fn)
    except ValueError:  # already registered (module reloaded)
        pass


# --------------------------------------------------------------------------- explanations

def _explain_id(v: str) -> tuple[str, str]:
    if re.fullmatch(_SCI_RE, v):
        return "ID_SCI_NOTATION", f"{v!r} is a number Excel turned into scientific notation; the ID is lost"
    if destroyed([v.replace(" ", "").upper()], "id_number")[0]:
        return "ID_DESTROYED", "the digits past the 15th are lost (Excel keeps 15) or the ID is a placeholder"
    if re.fullmatch(r"[0-9]{17}[0-9X]", v):
        try:
            datetime.strptime(v[6:14], "%Y%m%d")
        except ValueError:
            return "ID_BAD_BIRTHDATE", f"resident ID carries an impossible birth date {v[6:14]}"
        return "ID_CHECK_DIGIT", "resident ID check digit (ISO 7064 MOD 11-2) does not match"
    if len(v) == 18:
        return "ID_CHECK_DIGIT", "18-character ID or credit code with a wrong check character"
    return "ID_FORMAT", f"not a resident ID, credit code or document number ({len(v)} characters)"


def _mobile_text(v: str) -> str:
    return re.sub(_MOBILE_PREFIX, r"\1", re.sub(_MOBILE_SEPARATORS, "", v))


def _explain_vin(v: str) -> tuple[str, str]:
    if re.fullmatch(_SCI_RE, v):
        return "VIN_FORMAT", f"{v!r} is scientific notation, not a VIN"
    if len(v) != 17:
        return "VIN_LENGTH", f"VIN has {len(v)} characters, 17 expected"
    if re.search(r"[IOQ]", v):
        return "VIN_FORMAT", "VIN contains I, O or Q"
    if not re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", v):
        return "VIN_FORMAT", "VIN contains characters outside A-Z and 0-9"
    expected = chr(vin_check_digit([v])[0])
    return "VIN_CHECK_DIGIT", f"VIN check digit is {v[8]!r}, {expected!r} expected (ISO 3779)"


def _explain_date(v: str) -> tuple[str, str]:
    m = re.fullmatch(r"([0-9]{4})[-/.年]?([0-9]{1,2})[-/.月]?([0-9]{1,2})日?(?:[ T].*)?", v)
    if m:
        try:
            date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return "IMPOSSIBLE_DATE", f"{v!r} is not a calendar date"
    return "BAD_DATE", f"{v!r} is not a date (YYYY-MM-DD, YYYY/M/D, YYYYMMDD, date-time or Excel serial)"


_EXPLAIN = {
    "cn_mobile": lambda v: (("MOBILE_PLACEHOLDER", "a placeholder number (13800000000...), not a customer's")
                            if destroyed([_mobile_text(v)], "mobile")[0] else ("BAD_MOBILE", "not an 11-digit CN mobile number")),
    "cn_phone": lambda v: ("BAD_PHONE", "not a CN phone number"),
    "masked_mobile": lambda v: ("BAD_MASKED_MOBILE", f"{v!r} is not a masked mobile like 138****5678"),
    "id_number": _explain_id,
    "resident_id": _explain_id,
    "vin": _explain_vin,
    "cn_plate": lambda v: ("BAD_PLATE", f"{v!r} is not a CN licence plate"),
    "postcode": lambda v: ("BAD_POSTCODE", f"{v!r} is not a 6-digit postcode"),
    "email": lambda v: ("BAD_EMAIL", f"{v!r} is not an e-mail address"),
    "decimal": lambda v: ("BAD_DECIMAL", f"{v!r} is not a decimal amount (at most 12 digits, 4 decimals)"),
    "integer": lambda v: ("BAD_INTEGER", f"{v!r} is not a whole number"),
    "iso_date": _explain_date,
    "iso_datetime": _explain_date,
    "not_nullable": lambda v: ("MISSING_REQUIRED", "required value is blank"),
    "encoding": lambda v: ("ENCODING_ERROR", "value contains bytes that are neither UTF-8 nor GB18030"),
}


def explain(check: str, value) -> tuple[str, str]:
    """Reason code and message for one failing value of a check."""
    if check.startswith("isin"):
        return "BAD_ENUM", f"{value!r} is not one of the allowed values {check[5:-1]}"
    fn = _EXPLAIN.get(check)
    if fn is None:
        return "INVALID", f"{value!r} fails {check}"
    return fn("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))
