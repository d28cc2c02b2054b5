"""Identifiers that look valid but carry no identity: one recogniser for ingestion and matching.

``destroyed(values, kind)`` tells, per value, whether a *normalised* identifier was destroyed on its
way to us or typed as a placeholder, so that it is neither accepted as evidence of who a customer is
(matching) nor loaded as a good value (ingestion; the row keeps loading, the value is blanked and
recorded as a value issue). Kinds and what counts:

* ``id_number`` (upper-case, no spaces): a number Excel turned into scientific notation
  (``1.10105198706151E+17``); an 18-digit number whose digits past the 15th are zeros
  (``110105198506151000``: Excel keeps 15 significant digits, IEEE 754 / ECMA-376 18.17.4.1, and
  about one in eleven such numbers passes the MOD 11-2 check of GB 11643 by chance); one character
  repeated (``111111111111111111``); the counting run ``123456789012345678``.
* ``mobile`` (11 digits): one digit repeated (``11111111111``); a real prefix followed by eight equal
  digits (``13800000000``, ``13888888888``); the operators' service numbers typed in a contact
  field (``13800138000``). A counting run such as ``13812345678`` is left alone: it is also a real,
  assigned number.
* ``email`` (lower-case): a local part that is a placeholder word (``test@``, ``none@``, ``123@``) or
  a domain that is (``@test.com``, ``@example.com``).
* ``vin`` (upper-case, 17 characters): one character repeated, or ``12345678901234567``.

Input: a pandas Series, a polars Series or any sequence of str / None; output: a numpy bool array of
the same length (None and blank are not destroyed: they are simply missing). Vectorised on pyarrow's
RE2 kernels.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PATTERNS = {
    "id_number": [
        r"^[+-]?[0-9]+(?:\.[0-9]+)?E[+-]?[0-9]+$",          # scientific notation
        r"^[0-9]{15}000$",                                   # digits past the 15th lost
        r"^(0{15,18}|1{15,18}|2{15,18}|3{15,18}|4{15,18}|5{15,18}|6{15,18}|7{15,18}|8{15,18}|9{15,18}|X{15,18})$",
        r"^123456789012345678$|^12345678901234567X?$",
    ],
    "mobile": [
        r"^(0{11}|1{11}|2{11}|3{11}|4{11}|5{11}|6{11}|7{11}|8{11}|9{11})$",
        r"^1[0-9]{2}(0{8}|1{8}|2{8}|3{8}|4{8}|5{8}|6{8}|7{8}|8{8}|9{8})$",
        r"^13800138000$|^1860?1860?00?$|^18918918900$",
    ],
    "email": [
        r"^(?:test|none|null|no|na|nil|abc|xxx|x|a|aaa|123|1234|12345|123456|admin|noemail|no-email|unknown|wu)@",
        r"@(?:test\.com|example\.(?:com|org|net)|xxx\.com|none\.com|qq\.con)$",
    ],
    "vin": ["^(?:" + "|".join(f"{c}{{17}}" for c in "0123456789ABCDEFGHJKLMNPRSTUVWXYZ") + ")$",
            r"^12345678901234567$"],
}


def _arrow(values) -> pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    to_arrow = getattr(values, "to_arrow", None)
    if to_arrow is not None and not hasattr(values, "index"):   # polars
        return to_arrow()
    if hasattr(values, "to_numpy"):                               # pandas
        return pa.array(values.to_numpy(dtype=object, na_value=None), type=pa.string())
    return pa.array(list(values), type=pa.string())


def destroyed(values, kind: str) -> np.ndarray:
    """Per value: True where the identifier of ``kind`` (``id_number``, ``mobile``, ``email``,
    ``vin``) is destroyed or a placeholder (see the module docstring). Raises KeyError on an
    unknown kind."""
    pats = _PATTERNS[kind]
    a = _arrow(values)
    if a.type != pa.string() and a.type != pa.large_string() and a.type != pa.string_view():
        a = pc.cast(a, pa.string())
    hit = pc.match_substring_regex(a, "|".join(f"(?:{p})" for p in pats))
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
