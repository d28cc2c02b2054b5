"""The rules of the value checks, once: patterns, tables and check-digit arithmetic.

Shapes: patterns are RE2-compatible strings (polars and pyarrow both run them); the check-digit
functions take an ``(n, width)`` uint8 matrix of ASCII values and return a bool vector of n.
The one implementation of every normaliser and check is ``checks_pl`` (polars); ``checks`` is its
pandas front; ``feeds`` registers its checks with pandera. ``explain`` turns a failing check into a reason code.

Sources: ``shared/specs/dms-exports.md`` sections 2 and 5; GB 11643 (resident ID, ISO 7064
MOD 11-2); GB 32100 (unified social credit code, MOD 31); ISO 3779 / GB 16735 (VIN); GA 36-2018 and
its amendments (licence plates); the MIIT numbering plan (area codes: 3 digits for 010 and 020-029,
4 otherwise); GB 18030-2022 (decoding, in ``connectors.readers.gb18030``).
"""
from __future__ import annotations

import re
from datetime import date, datetime

import numpy as np

from .destroyed import destroyed

NULL_TOKENS = ["", "NULL", "null", "Null", "NONE", "None", "none", "NAN", "NaN", "nan", "N/A", "n/a",
               "NA", "无", "空", "-", "--", "—", "/", "#N/A"]

# --------------------------------------------------------------------------- generic text
# characters NFKC changes in this data: ideographic space, full-width ASCII, enclosed numbers...
NEEDS_NFKC = "[\u00a0\u2000-\u200b\u2460-\u24ff\u3000\u3250-\u33ff\ufe30-\ufe4f\uff01-\uff5e]"
WHITESPACE = "[ \t\r\n\f\v\u00a0\u3000]+"
EXCEL_TEXT = r'^="(.*)"$'   # ="K4001": Excel's text-forcing formula, as a CSV export keeps it
ODD = NEEDS_NFKC + r'|[\t\r\n\f\v]|  |^\'|^ | $|^="'   # what needs more than the null-token check
PRIVATE_USE = "[\ue000-\uf8ff\U000f0000-\U0010ffff]"
CONTROL = "[\x01-\x1f\x7f]"   # C0 controls (NUL aside: PostgreSQL refuses it, the file fails) and DEL

# --------------------------------------------------------------------------- mobiles, landlines
MOBILE_RE = r"^1[3-9][0-9]{9}$"
MASKED_MOBILE_RE = r"^1[3-9][0-9]\*{4}[0-9]{4}$"
MOBILE_SEPARATORS = r"[ \-().·]"
MOBILE_PREFIX = r"^(?:\+86|0086|86)(1[0-9]{10})$"
# landlines: an extension after 转 / ext / x / 分机 / # (or a last dash group, see checks_pl), the
# country prefix, separators; the area code by the table: 010 and 020-029 take 3 digits, others 4
PHONE_EXTENSION = r"(?i)^(.*?)\s*(?:转|ext\.?|x|分机|#)\s*([0-9]{1,6})$"
PHONE_SEPARATORS = r"[ ().\u00b7]"
PHONE_COUNTRY = r"^(?:\+86|0086)-?0?"
PHONE_SPLIT_LOCAL = r"^(010|02[0-9]|0[3-9][0-9]{2})-?([2-9][0-9]{2,3})-([0-9]{4})$"   # 0755-8888-1234
PHONE_AREA3 = r"^(010|02[0-9])-?([2-9][0-9]{7})(?:-([0-9]{1,6}))?$"
PHONE_AREA4 = r"^(0[3-9][0-9]{2})-?([2-9][0-9]{6,7})(?:-([0-9]{1,6}))?$"
PHONE_LOCAL = r"^([2-9][0-9]{6,7})(?:-([0-9]{1,6}))?$"
PHONE_DIGITS3 = r"^(010|02[0-9])([2-9][0-9]{7})$"
PHONE_DIGITS4 = r"^(0[3-9][0-9]{2})([2-9][0-9]{6,7})$"
PHONE_SERVICE = r"^([48]00)-?([0-9]{3})-?([0-9]{4})$"
PHONE_RE = (r"^(?:(?:010|02[0-9])-[2-9][0-9]{7}|0[3-9][0-9]{2}-[2-9][0-9]{6,7}|[2-9][0-9]{6,7}"
            r"|[48]00-[0-9]{3}-[0-9]{4}|1[3-9][0-9]{9})(?:转[0-9]{1,6})?$")

# --------------------------------------------------------------------------- identity documents
RID_FORMAT = r"^[0-9]{17}[0-9X]$"
USCC_FORMAT = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"   # GB 32100: 3-8 the division code
ID18_FORMAT = r"^[0-9A-Z]{18}$"
ID_OTHER_FORMAT = r"^[0-9A-Z]{5,20}$"
ID_TRUNCATED = r"^[0-9]{13,17}$"
PASSPORT_FORMAT = r"^[A-Z0-9]{5,17}$"
SCI_RE = r"^[+-]?[0-9]+(?:\.[0-9]+)?E[+-]?[0-9]+$"

# id_type (证件类型) canonical value -> the check its id_number gets. The canonical values are exactly
# the spec's enumeration (docs/specs/dms-exports.md 2.1: 身份证 / 护照 / 统一社会信用代码 / 其他); the
# other words DMS write are aliases of one of them (a Hong Kong / Macau or Taiwan permit is 其他).
ID_TYPES = {"RESIDENT_ID": "resident_id", "PASSPORT": "passport", "USCC": "uscc", "OTHER": "id_other"}
ID_TYPE_WORDS = {
    "身份证": "RESIDENT_ID", "居民身份证": "RESIDENT_ID", "二代身份证": "RESIDENT_ID",
    "港澳台居民居住证": "RESIDENT_ID", "护照": "PASSPORT", "外国护照": "PASSPORT", "中国护照": "PASSPORT",
    "统一社会信用代码": "USCC", "营业执照": "USCC", "组织机构代码": "USCC",
    "港澳居民来往内地通行证": "OTHER", "港澳通行证": "OTHER", "回乡证": "OTHER",
    "台湾居民来往大陆通行证": "OTHER", "台胞证": "OTHER",
    "其他": "OTHER", "其它": "OTHER", **{v: v for v in ID_TYPES}}

# --------------------------------------------------------------------------- vehicles
VIN_SEPARATORS = r"[ \-]"
VIN_FORMAT = r"^[A-HJ-NPR-Z0-9]{17}$"
PLATE_SEPARATORS = r"[ ·.\-]"
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"          # plate letters: no I, no O
_NEV = "A-HJKDF"          # new-energy letters (GA 36 amendment): A-E pure electric, F-K others
PLATE_RE = (rf"^(?:[{PROVINCES}][{_L}](?:[{_L}0-9]{{5}}"                      # ordinary: 粤A12345
            rf"|[{_L}0-9]{{4}}(?:[挂学警港澳领试超]|应急)"                     # suffixes: 粤A1234挂, 沪A1234领
            rf"|[{_NEV}][{_L}0-9][0-9]{{4}}"                                  # small new-energy: 粤BD12345
            rf"|[0-9]{{5}}[{_NEV}])"                                          # large new-energy: 粤B12345F
            rf"|使[0-9]{{6}}|[0-9]{{6}}使)$")                                  # embassy plates

# --------------------------------------------------------------------------- numbers, dates
POSTCODE_RE = r"^[0-9]{6}$"
EMAIL_RE = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}$"
DECIMAL_NOISE = r"[,， ¥￥]|元$|^CNY|^RMB"
DECIMAL_RE = r"^-?[0-9]{1,12}(?:\.[0-9]{1,4})?$"   # what NUMERIC(16, 4) holds
INTEGER_NOISE = r"[,， ]|(?i:km|公里)$"
INTEGER_POINT_ZERO = r"^(-?[0-9]+)\.0*$"
INTEGER_LEADING_ZEROS = r"^(-?)0+([0-9])"
INTEGER_RE = r"^-?[0-9]{1,12}$"
CANONICAL_INTEGER = r"^-?[1-9][0-9]*$|^0$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
SLASHED_DATE = r"^[0-9]{4}/[0-9]{2}/[0-9]{2}$"
SLASHED_DATETIME = r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9]$"
# 2026-11-02 08:31:07.0 / .337 (Java / JDBC exports): the fraction is dropped, the second kept
SECOND_FRACTION = r"^([0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}[ T][0-9]{1,2}:[0-9]{2}:[0-9]{2})[.,][0-9]{1,9}$"
DEFAULT_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日"]
DEFAULT_DATETIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M",
                            "%Y-%m-%dT%H:%M:%S", "%Y%m%d %H:%M:%S", "%Y%m%d%H%M%S"]
EXCEL_EPOCH = datetime(1899, 12, 30)
EXCEL_SERIAL_RE = r"^[0-9]{5}(?:\.[0-9]+)?$"  # 10000..99999 days: 1927..2173

BOOL_WORDS = {"是": "Y", "否": "N", "Y": "Y", "N": "N", "YES": "Y", "NO": "N", "1": "Y", "0": "N",
              "TRUE": "Y", "FALSE": "N", "同意": "Y", "不同意": "N", "T": "Y", "F": "N", "√": "Y", "×": "N"}

# --------------------------------------------------------------------------- check digits
RID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
RID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
USCC_VALUE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    USCC_VALUE[ord(_c)] = _i
VIN_VALUE = np.full(256, -1, dtype=np.int64)
for _c, _v in zip("0123456789", range(10)):
    VIN_VALUE[ord(_c)] = _v
for _c, _v in zip("ABCDEFGHJKLMNPRSTUVWXYZ", [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]):
    VIN_VALUE[ord(_c)] = _v
VIN_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)
VIN_CHECK = np.frombuffer(b"0123456789X", dtype=np.uint8)


def as_matrix(values, width: int) -> np.ndarray:
    """Fixed-width ASCII strings -> uint8 matrix (n, width)."""
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def rid_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 18) byte matrix ``m`` whose ISO 7064 MOD 11-2 check character is right (GB 11643)."""
    return RID_CHECK[((m[:, :17] - 48).astype(np.int64) @ RID_WEIGHTS) % 11] == m[:, 17]


def uscc_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 18) byte matrix ``m`` whose GB 32100 MOD 31 check character is right."""
    v = USCC_VALUE[m]
    return (31 - (v[:, :17] @ USCC_WEIGHTS) % 31) % 31 == v[:, 17]


def vin_check_of(m: np.ndarray) -> np.ndarray:
    return VIN_CHECK[(VIN_VALUE[m] @ VIN_WEIGHTS) % 11]


def vin_check_ok(m: np.ndarray) -> np.ndarray:
    """Rows of the (n, 17) byte matrix ``m`` whose position-9 check digit is right (ISO 3779)."""
    return vin_check_of(m) == m[:, 8]


def vin_check_digit(vins) -> np.ndarray:
    """Expected position-9 characters (uint8) for 17-character VINs of the VIN alphabet."""
    return vin_check_of(as_matrix(np.asarray(vins, dtype=object), 17))


# --------------------------------------------------------------------------- explanations

def _explain_id(v: str) -> tuple[str, str]:
    v = v.upper()   # the check reads an upper-case X (a lower-case x is the same check digit)
    if re.fullmatch(SCI_RE, v):
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


def _explain_rid(v: str) -> tuple[str, str]:
    """The ID type says resident ID (身份证): only the resident ID rules apply (GB 11643)."""
    v = v.upper()
    if re.fullmatch(SCI_RE, v) or re.fullmatch(r"[0-9]{17}[0-9X]", v) or destroyed([v], "id_number")[0]:
        return _explain_id(v)
    if len(v) == 18:
        return "ID_FORMAT", "the ID type is resident ID: 17 digits and a check digit (0-9 or X) expected"
    return "ID_FORMAT", f"the ID type is resident ID, the number has {len(v)} characters (18 expected)"


def _explain_typed(name: str, what: str):
    def explain(v: str) -> tuple[str, str]:
        if re.fullmatch(SCI_RE, v) or destroyed([v], "id_number")[0]:
            return _explain_id(v)
        if name == "uscc" and len(v) == 18 and re.fullmatch(USCC_FORMAT, v):
            return "ID_CHECK_DIGIT", "credit code check character (GB 32100 MOD 31) does not match"
        return "ID_FORMAT", f"not a {what} number ({len(v)} characters)"
    return explain


def _mobile_text(v: str) -> str:
    return re.sub(MOBILE_PREFIX, r"\1", re.sub(MOBILE_SEPARATORS, "", v))


def _explain_vin(v: str) -> tuple[str, str]:
    if re.fullmatch(SCI_RE, v):
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
    "cn_phone": lambda v: ("BAD_PHONE", "not a CN phone number (area code 010 / 02x + 8 digits, other area "
                                        "codes + 7-8 digits, 400/800, or a mobile; extension after 转)"),
    "masked_mobile": lambda v: ("BAD_MASKED_MOBILE", f"{v!r} is not a masked mobile like 138****5678"),
    "id_number": _explain_id,
    "resident_id": _explain_rid,
    "uscc": _explain_typed("uscc", "unified social credit code (18 characters, GB 32100)"),
    "passport": _explain_typed("passport", "passport (5-17 letters and digits)"),
    "hk_macau_permit": _explain_typed("hk_macau_permit", "Hong Kong / Macau permit (H or M and 8 or 10 digits)"),
    "taiwan_permit": _explain_typed("taiwan_permit", "Taiwan permit (8 or 10 digits)"),
    "id_other": _explain_typed("id_other", "document (5-20 letters and digits)"),
    "vin": _explain_vin,
    "cn_plate": lambda v: ("BAD_PLATE", f"{v!r} is not a CN licence plate (GA 36)"),
    "postcode": lambda v: ("BAD_POSTCODE", f"{v!r} is not a 6-digit postcode"),
    "email": lambda v: ("BAD_EMAIL", f"{v!r} is not an e-mail address"),
    "decimal": lambda v: ("BAD_DECIMAL", f"{v!r} is not a decimal amount (at most 12 digits, 4 decimals)"),
    "integer": lambda v: ("BAD_INTEGER", f"{v!r} is not a whole number"),
    "iso_date": _explain_date,
    "iso_datetime": _explain_date,
    "not_nullable": lambda v: ("MISSING_REQUIRED", "required value is blank"),
    "encoding": lambda v: ("ENCODING_ERROR", "value contains bytes that are neither UTF-8 nor GB18030"),
    "control": lambda v: ("CONTROL_CHARACTER", "name holds an invisible control character; kept, and left out "
                                               "of every worksheet the product writes"),
    "private_use": lambda v: ("PRIVATE_USE_CHAR", "name holds a private-use character (a rare character the "
                                                  "source system could not encode); kept, to be checked"),
}


def explain(check: str, value) -> tuple[str, str]:
    """Reason code and message for one failing value of a check."""
    if check.startswith("isin"):
        return "BAD_ENUM", f"{value!r} is not one of the allowed values {check[5:-1]}"
    fn = _EXPLAIN.get(check)
    if fn is None:
        return "INVALID", f"{value!r} fails {check}"
    return fn("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))
