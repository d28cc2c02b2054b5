"""The one implementation of every normaliser and check, on polars Series (string in, string or bool
out, null for blank).

* ``normalise_<kind>(s)`` turns raw strings into the canonical form (``13812345678``,
  ``010-62345678转8001``, ``2024-03-05``, ``LFV2A21K6A4123458``...). A value it cannot make sense of
  is left as it is, so that the check rejects it and the message can quote it.
* ``is_<kind>(s)`` / ``*_ok(s)`` is the check: a bool Series, never raising, False for null.

The rules (patterns, tables, check digits, reason codes) are in ``rules``; ``checks`` is the pandas
front for the matching code; ``feeds`` registers ``CHECKS`` with pandera for the (polars) feed
models. Polars runs the string kernels in Rust, which is what a million-row export needs. Sources: see ``rules``.
"""
from __future__ import annotations

import unicodedata

import numpy as np
import polars as pl
from pyarrow import ChunkedArray as pa_ChunkedArray

from dealersync.schemas.cells import value_bytes

from . import rules as ck
from .destroyed import destroyed

def _where(s: pl.Series, mask: pl.Series, values: pl.Series) -> pl.Series:
    """``s`` with ``values`` where ``mask``."""
    return pl.select(pl.when(mask).then(values).otherwise(s)).to_series().alias(s.name)


def clean_text(s: pl.Series) -> pl.Series:
    """NFKC (full-width digits, letters, parentheses to half-width) where needed, trim, Excel's
    ``="..."`` text-forcing and leading apostrophe removed, runs of white space collapsed, null
    tokens (``NULL``, ``无``, ``-``) to null. Every column of every feed goes through it, keys too."""
    odd = s.str.contains(ck.ODD).fill_null(False)
    if odd.any():
        idx = odd.arg_true()
        part = s.gather(idx)
        wide = part.str.contains(ck.NEEDS_NFKC).fill_null(False)
        if wide.any():
            w = wide.arg_true()
            part = part.scatter(w, [unicodedata.normalize("NFKC", v) for v in part.gather(w).to_list()])
        part = part.str.replace_all(ck.WHITESPACE, " ").str.strip_chars(" ")
        part = part.str.replace(ck.EXCEL_TEXT, "${1}").str.strip_chars(" ")
        part = part.str.replace(r"^'+", "").str.strip_chars(" ")
        s = s.scatter(idx, part)
    return _where(s, s.is_in(ck.NULL_TOKENS), pl.lit(None, pl.String))


def has_private_use(s: pl.Series) -> pl.Series:
    """Values holding a private-use character (U+E000-U+F8FF, planes 15-16): in a name, a rare
    character the source system could not encode (GB18030-2005 era), to be reported."""
    return s.str.contains(ck.PRIVATE_USE).fill_null(False)


def has_control(s: pl.Series) -> pl.Series:
    """Values holding a C0 control character or DEL (PIPL-era exports pasted from chat tools carry them)."""
    return s.str.contains(ck.CONTROL).fill_null(False)


def normalise_mobile(s: pl.Series) -> pl.Series:
    d = s.str.replace_all(ck.MOBILE_SEPARATORS, "")
    return d.str.replace(ck.MOBILE_PREFIX, "${1}")


def is_cn_mobile(s: pl.Series) -> pl.Series:
    """11-digit CN mobile, not a placeholder such as ``13800000000`` (``destroyed.destroyed``)."""
    return s.str.contains(ck.MOBILE_RE).fill_null(False) & ~pl.Series(destroyed(s, "mobile"))


def is_masked_mobile(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.MASKED_MOBILE_RE).fill_null(False)


def normalise_phone(s: pl.Series) -> pl.Series:
    """Landlines to ``AREA-LOCAL`` with the real area code (3 digits for 010 and 020-029, 4
    otherwise) and the extension as ``转EXT`` (written ``转``, ``ext``, ``x``, ``分机``, ``#`` or as a last
    dash group after a full local number): ``(010)62345678`` / ``010 6234 5678`` -> ``010-62345678``,
    ``010-62345678-8001`` -> ``010-62345678转8001``, ``0755-8888-1234`` -> ``0755-88881234``; 400 / 800
    numbers to ``400-123-4567``; mobiles as mobiles. A value it cannot read is left as it is."""
    todo = s.is_not_null() & ~is_cn_phone(s)   # canonical values (most of a column) stay as they are
    if not todo.any():
        return s
    idx = todo.arg_true()
    return s.scatter(idx, _normalise_phone(s.gather(idx)))


def _normalise_phone(s: pl.Series) -> pl.Series:
    ext = s.str.extract(ck.PHONE_EXTENSION, 2)
    d = _where(s, ext.is_not_null(), s.str.extract(ck.PHONE_EXTENSION, 1))
    d = d.str.replace_all(ck.PHONE_SEPARATORS, "")
    country = d.str.contains(r"^(?:\+86|0086)").fill_null(False)
    if country.any():   # +86 10 6234 5678: the trunk 0 comes back
        bare = d.str.replace(ck.PHONE_COUNTRY, "").str.strip_chars("-")
        bare = _where(bare, ~bare.str.contains(ck.MOBILE_RE).fill_null(False), pl.lit("0") + bare)
        d = _where(d, country, bare)
    d = d.str.replace(ck.PHONE_SPLIT_LOCAL, "${1}-${2}${3}")
    out = pl.Series(s.name, [None] * len(s), dtype=pl.String)
    for pattern, area in ((ck.PHONE_AREA3, True), (ck.PHONE_AREA4, True), (ck.PHONE_LOCAL, False)):
        hit = d.str.contains(pattern).fill_null(False) & out.is_null()
        if not hit.any():
            continue
        m = d.str.extract_groups(pattern)
        fields = m.struct.fields
        local = (m.struct.field(fields[0]) + "-" + m.struct.field(fields[1])) if area else m.struct.field(fields[0])
        dash_ext = m.struct.field(fields[-1])
        # two extensions (a dash group and 转...) are one too many: left as written, the check refuses it
        two = dash_ext.is_not_null() & ext.is_not_null()
        e = pl.select(pl.coalesce(dash_ext, ext)).to_series()
        val = _where(local, e.is_not_null(), local + "转" + e)
        out = _where(out, hit & ~two, val)
        out = _where(out, hit & two, s)
    # the digits alone, dashes anywhere (``0106-2345678``, an old wrong split): the table decides
    digits = d.str.replace_all("-", "", literal=True)
    for pattern in (ck.PHONE_DIGITS3, ck.PHONE_DIGITS4):
        hit = digits.str.contains(pattern).fill_null(False) & out.is_null()
        if hit.any():
            val = digits.str.replace(pattern, "${1}-${2}")
            out = _where(out, hit, _where(val, ext.is_not_null(), val + "转" + ext))
    service = d.str.contains(ck.PHONE_SERVICE).fill_null(False) & out.is_null()
    if service.any():
        sv = d.str.replace(ck.PHONE_SERVICE, "${1}-${2}-${3}")
        out = _where(out, service, _where(sv, ext.is_not_null(), sv + "转" + ext))
    mobile = normalise_mobile(_where(d, ext.is_not_null(), s))
    out = _where(out, is_cn_mobile(mobile), mobile)
    return pl.select(pl.coalesce(out, s)).to_series().alias(s.name)


def is_cn_phone(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.PHONE_RE).fill_null(False)


def _fixed(s: pl.Series, pattern: str | None, width: int, check) -> pl.Series:
    """Values matching ``pattern`` (``width`` ASCII characters; None: any ``width`` bytes, the check
    reads the form itself) go through the numpy ``check`` as a (n, width) byte matrix, taken from the
    Arrow buffer as it is, with the matching values; others fail."""
    fmt = (s.str.contains(pattern) if pattern else s.str.len_bytes() == width).fill_null(False)
    out = np.zeros(len(s), dtype=bool)
    if fmt.any():
        idx = fmt.arg_true()
        part = s.gather(idx)
        a = part.to_arrow(compat_level=pl.CompatLevel.oldest())
        a = a.combine_chunks() if isinstance(a, pa_ChunkedArray) else a
        matrix = value_bytes(a)[1].reshape(-1, width)
        out[idx.to_numpy()] = check(matrix, part)
    return pl.Series(s.name, out)


def normalise_id_number(s: pl.Series) -> pl.Series:
    return s.str.replace_all(" ", "", literal=True).str.to_uppercase()


def _rid(m: np.ndarray, vals: pl.Series) -> np.ndarray:
    ok = ck.rid_check_ok(m)
    births = vals.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    return ok & births.is_not_null().to_numpy() & (births.dt.year().fill_null(0).to_numpy() >= 1900)


def resident_id_ok(s: pl.Series) -> pl.Series:
    return _fixed(s, ck.RID_FORMAT, 18, _rid)


def uscc_ok(s: pl.Series) -> pl.Series:
    return _fixed(s, ck.USCC_FORMAT, 18, lambda m, _: ck.uscc_check_ok(m))


def is_id_number(s: pl.Series) -> pl.Series:
    """Without an ID type: a resident ID or credit code with a valid check character, or another
    document number (passport...). An 18-character number must carry a valid check character; a
    number Excel destroyed (scientific notation, zeros past the 15th digit) is never valid (``destroyed``)."""
    eighteen = s.str.contains(ck.ID18_FORMAT).fill_null(False)
    other = (s.str.contains(ck.ID_OTHER_FORMAT).fill_null(False) & ~eighteen
             & ~s.str.contains(ck.ID_TRUNCATED).fill_null(False))
    return ((eighteen & (resident_id_ok(s) | uscc_ok(s))) | other) & ~pl.Series(destroyed(s, "id_number"))


def _form(pattern: str):
    def check(s: pl.Series) -> pl.Series:
        return s.str.contains(pattern).fill_null(False)
    return check


TYPED_ID_CHECKS = {"resident_id": resident_id_ok, "uscc": uscc_ok, "passport": _form(ck.PASSPORT_FORMAT),
                   "id_other": _form(ck.ID_OTHER_FORMAT)}


def id_number_by_type(id_type: pl.Series, number: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The ID type (证件类型, canonical: ``rules.ID_TYPES``) chooses the check of the number: a resident
    ID is checked as a resident ID only (GB 11643 MOD 11-2), a credit code as a credit code only
    (GB 32100)... Returns (ok, check name); rows without a known type get ``is_id_number`` and the
    check name ``id_number``. Null numbers are ok (the nullable rule's business)."""
    check = id_type.replace_strict(ck.ID_TYPES, default="id_number", return_dtype=pl.String)
    check = check.fill_null("id_number")
    ok = is_id_number(number)
    for name in check.unique().to_list():
        if name == "id_number":
            continue
        rows = (check == name).arg_true()
        part = number.gather(rows)
        ok = ok.scatter(rows, TYPED_ID_CHECKS[name](part) & ~pl.Series(destroyed(part, "id_number")))
    return ok | number.is_null(), check


def normalise_vin(s: pl.Series) -> pl.Series:
    return s.str.replace_all(ck.VIN_SEPARATORS, "").str.to_uppercase()


def is_vin(s: pl.Series) -> pl.Series:
    return _fixed(s, r"^[A-HJ-NPR-Z0-9]{17}$", 17, lambda m, _: ck.vin_check_ok(m))


def normalise_plate(s: pl.Series) -> pl.Series:
    return s.str.replace_all(ck.PLATE_SEPARATORS, "").str.to_uppercase()


def is_cn_plate(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.PLATE_RE).fill_null(False)


def is_postcode(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.POSTCODE_RE).fill_null(False)


def normalise_email(s: pl.Series) -> pl.Series:
    return s.str.replace_all(" ", "", literal=True).str.to_lowercase()


def is_email(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.EMAIL_RE).fill_null(False)


def normalise_decimal(s: pl.Series) -> pl.Series:
    return s.str.replace_all(ck.DECIMAL_NOISE, "")


def is_decimal(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.DECIMAL_RE).fill_null(False)


def normalise_integer(s: pl.Series) -> pl.Series:
    todo = s.is_not_null() & ~s.str.contains(ck.CANONICAL_INTEGER).fill_null(False)
    if not todo.any():   # plain integers: nothing to remove
        return s
    idx = todo.arg_true()
    d = s.gather(idx).str.replace_all(ck.INTEGER_NOISE, "")
    d = d.str.replace(ck.INTEGER_POINT_ZERO, "${1}")
    return s.scatter(idx, d.str.replace(ck.INTEGER_LEADING_ZEROS, "${1}${2}"))


def is_integer(s: pl.Series) -> pl.Series:
    return s.str.contains(ck.INTEGER_RE).fill_null(False)


# --------------------------------------------------------------------------- dates

def parse_dates(s: pl.Series, formats: list[str] | None = None, with_time: bool = False) -> pl.Series:
    """Every date form of the spec (as ``checks.parse_dates``) to Datetime, null where impossible: Excel
    serials, then the formats in turn on what is still unparsed, those this column uses first."""
    fmts = list(formats or []) + ck.DEFAULT_DATETIME_FORMATS + ck.DEFAULT_DATE_FORMATS
    out = pl.Series(s.name, [None] * len(s), dtype=pl.Datetime("us"))
    serial = s.str.contains(ck.EXCEL_SERIAL_RE).fill_null(False)
    if serial.any():
        days = s.filter(serial).cast(pl.Float64, strict=False)
        if not with_time:
            days = days.floor()
        excel = pl.select(pl.lit(ck.EXCEL_EPOCH).cast(pl.Datetime("us"))
                          + pl.duration(microseconds=(days * 86_400_000_000).round(0).cast(pl.Int64))).to_series()
        out = out.scatter(serial.arg_true(), excel)
    todo = s.is_not_null() & ~serial
    if todo.sum() > 2000:   # try the formats this column actually uses first
        sample = s.filter(todo).gather_every(max(1, int(todo.sum()) // 500))
        hits = {f: int(sample.str.strptime(pl.Datetime("us"), f, strict=False, exact=True).is_not_null().sum())
                for f in fmts}
        fmts = [f for f in sorted(fmts, key=lambda f: -hits[f]) if hits[f]] + [f for f in fmts if not hits[f]]
    for fmt in fmts:
        if not todo.any():
            break
        idx = todo.arg_true()
        parsed = s.gather(idx).str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
        hit = parsed.is_not_null()
        if hit.any():
            out = out.scatter(idx.filter(hit), parsed.filter(hit))
            todo = todo.scatter(idx.filter(hit), False)
    return out


def _normalise_temporal(s: pl.Series, formats: list[str] | None, with_time: bool) -> pl.Series:
    """Parse and re-format what is not canonical yet (fractions of a second dropped: ``08:31:07.337``
    -> ``08:31:07``). Values already in the canonical form are left as they are (the check validates
    the calendar), unless the profile has formats of its own."""
    fraction = s.str.contains(ck.SECOND_FRACTION).fill_null(False)
    if fraction.any():
        s = _where(s, fraction, s.str.replace(ck.SECOND_FRACTION, "${1}"))
    canonical = (pl.Series([False] * len(s)) if formats else
                 s.str.contains(ck.ISO_DATETIME if with_time else ck.ISO_DATE).fill_null(False))
    todo = s.is_not_null() & ~canonical
    if not todo.any():
        return s
    idx = todo.arg_true()
    part = s.gather(idx)
    if not formats:   # 2024/03/05 (14:22:00), zero-padded: the dashes are what parsing and formatting give
        slashed = part.str.contains(ck.SLASHED_DATETIME if with_time else ck.SLASHED_DATE).fill_null(False)
        if slashed.any():
            s = s.scatter(idx.filter(slashed), part.filter(slashed).str.replace_all("/", "-", literal=True))
            idx, part = idx.filter(~slashed), part.filter(~slashed)
            if not len(idx):
                return s
    parsed = parse_dates(part, formats, with_time)
    text = parsed.dt.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")
    return s.scatter(idx, _where(part, parsed.is_not_null(), text))


def normalise_date(s: pl.Series, formats: list[str] | None = None) -> pl.Series:
    return _normalise_temporal(s, formats, with_time=False)


def normalise_datetime(s: pl.Series, formats: list[str] | None = None) -> pl.Series:
    return _normalise_temporal(s, formats, with_time=True)


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _calendar(m: np.ndarray, with_time: bool) -> np.ndarray:
    """Rows of the byte matrix ``m`` that read ``YYYY-MM-DD`` (``HH:MM:SS`` after a space, when
    ``with_time``) with a year 1900-2199 and a real date and time (no 30 February; second 60, a leap
    second, passes as the strptime twins let it)."""
    digits = [0, 1, 2, 3, 5, 6, 8, 9] + ([11, 12, 14, 15, 17, 18] if with_time else [])
    d = m[:, digits] - np.uint8(48)                 # a byte below '0' wraps round to above 9
    ok = (d <= 9).all(axis=1) & (m[:, 4] == 45) & (m[:, 7] == 45)
    d = d.astype(np.int32)
    century = d[:, 0] * 10 + d[:, 1]
    year = century * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok &= (century >= 19) & (century <= 21) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= day <= _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    if with_time:
        ok &= (m[:, 10] == 32) & (m[:, 13] == 58) & (m[:, 16] == 58)
        ok &= (d[:, 8] * 10 + d[:, 9] <= 23) & (d[:, 10] * 10 + d[:, 11] <= 59) & (d[:, 12] * 10 + d[:, 13] <= 60)
    return ok


def is_iso_date(s: pl.Series) -> pl.Series:
    return _fixed(s, None, 10, lambda m, _: _calendar(m, False))


def is_iso_datetime(s: pl.Series) -> pl.Series:
    return _fixed(s, None, 19, lambda m, _: _calendar(m, True))


def normalise_enum(s: pl.Series, mapping: dict[str, str]) -> pl.Series:
    if not mapping:
        return s
    upper_map = {str(k).upper(): v for k, v in mapping.items()}
    mapped = s.str.to_uppercase().replace_strict(upper_map, default=None, return_dtype=pl.String)
    return _where(s, mapped.is_not_null(), mapped)


CHECKS = {"cn_mobile": is_cn_mobile, "masked_mobile": is_masked_mobile, "cn_phone": is_cn_phone,
          "id_number": is_id_number, "resident_id": resident_id_ok, "vin": is_vin, "cn_plate": is_cn_plate,
          "postcode": is_postcode, "email": is_email, "decimal": is_decimal, "integer": is_integer,
          "iso_date": is_iso_date, "iso_datetime": is_iso_datetime}
