"""Table-driven tests of every normaliser and check: (raw value, expected canonical, valid?).

Each table runs twice: on ``schemas.checks`` (the pandas front matching uses) and on ``schemas.checks_pl``
(the one implementation, what ingestion uses), so the front cannot drift from it."""
import pandas as pd
import polars as pl
import pytest

from dealersync.schemas import checks, checks_pl


class PolarsChecks:
    """``checks_pl`` behind the pandas-Series interface of ``checks``."""

    def __getattr__(self, name):
        fn = getattr(checks_pl, name, None)
        if fn is None or not callable(fn):
            return getattr(checks, name)    # explain, BOOL_WORDS...

        def call(s, *a, **k):
            out = fn(pl.Series("v", s.astype(object).where(s.notna(), None).tolist(), dtype=pl.String), *a, **k)
            return pd.Series(out.to_list(), index=s.index, dtype="str" if out.dtype == pl.String else None)
        return call


@pytest.fixture(params=["pandas", "polars"])
def ck(request):
    return checks if request.param == "pandas" else PolarsChecks()


def S(ck, *values):
    return ck.clean_text(pd.Series(list(values), dtype="str"))


@pytest.mark.parametrize("raw,expected", [
    (" 张 伟 ", "张 伟"), ("１３８", "138"), ("'13812345678", "13812345678"), ("排量（L）", "排量(L)"),
    ("NULL", None), ("无", None), ("-", None), ("", None), ("  ", None), ("null", None), ("ＡＢＣ", "ABC"),
])
def test_clean_text(ck, raw, expected):
    out = S(ck, raw).iloc[0]
    assert (out if isinstance(out, str) else None) == expected


@pytest.mark.parametrize("odd", ["\tA", "A\nB", "A\x0bB", "A  B", "'123", " A", "A ", "A\u00a0B", "\u3000张伟",
                                 "①", "ｆｕｌｌ", "㎡", "\ufe50"])
def test_clean_text_finds_the_one_odd_value_among_plain_ones(ck, odd):
    """One odd value of each kind among plain ones (and a null token) is cleaned, the others kept."""
    values = ["RO000001", "张伟", "NULL", odd, "2024-03-05 14:22:00", "", "粤A12345"]
    expected = [checks.clean_text(pd.Series([v], dtype="str")).iloc[0] for v in values]
    got = S(ck, *values).tolist()
    assert [g if isinstance(g, str) else None for g in got] == [e if isinstance(e, str) else None for e in expected]


@pytest.mark.parametrize("raw,norm,valid", [
    ("13812345678", "13812345678", True),
    ("138 1234 5678", "13812345678", True),
    ("+86 138-1234-5678", "13812345678", True),
    ("8613812345678", "13812345678", True),
    ("008613812345678", "13812345678", True),
    ("１３８１２３４５６７８", "13812345678", True),
    ("'13812345678", "13812345678", True),
    ("1381234567", "1381234567", False),      # 10 digits
    ("12812345678", "12812345678", False),    # no 12x mobiles
    ("010-62345678", "01062345678", False),   # a landline is not a mobile
])
def test_mobile(ck, raw, norm, valid):
    m = ck.normalise_mobile(S(ck, raw))
    assert m.iloc[0] == norm
    assert bool(ck.is_cn_mobile(m).iloc[0]) is valid


@pytest.mark.parametrize("raw,norm,valid", [
    ("010-62345678", "010-62345678", True),
    ("0755 8888 1234", "0755-88881234", True),
    ("0755 8888 1234转123", "0755-88881234转123", True),
    ("020-87654321 ext 8", "020-87654321转8", True),
    ("020-8765432", "020-8765432", False),          # 020 takes 8-digit local numbers
    ("010-62345678-8001", "010-62345678转8001", True),
    ("(010)62345678", "010-62345678", True),
    ("010 6234 5678", "010-62345678", True),
    ("0755-8888-1234", "0755-88881234", True),
    ("020-83456789转216", "020-83456789转216", True),
    ("+86 10 6234 5678", "010-62345678", True),
    ("0571-8765432", "0571-8765432", True),           # 4-digit area codes: 7 or 8 digits
    ("0106-2345678", "010-62345678", True),           # the old wrong split of Beijing: the table decides
    ("400-800-8888", "400-800-8888", True),
    ("13812345678", "13812345678", True),
    ("12", "12", False),
])
def test_phone(ck, raw, norm, valid):
    p = ck.normalise_phone(S(ck, raw))
    assert p.iloc[0] == norm
    assert bool(ck.is_cn_phone(p).iloc[0]) is valid


@pytest.mark.parametrize("raw,resident,uscc,valid", [
    ("11010519491231002X", True, False, True),
    ("11010519491231002x", True, False, True),       # lower-case x seen in the wild
    ("110105194912310021", False, False, False),     # wrong check digit
    ("110105194902300027", False, False, False),     # impossible birth date (Feb 30)
    ("4.4010619900101E+17", False, False, False),    # destroyed by Excel
    ("91350100M000100Y43", False, True, True),       # credit code
    ("91350100M000100Y44", False, False, False),     # credit code, wrong check
    ("G12345678", False, False, True),               # passport
    ("11010519491231", False, False, False),         # truncated ID
])
def test_id_numbers(ck, raw, resident, uscc, valid):
    s = ck.normalise_id_number(S(ck, raw))
    assert bool(ck.resident_id_ok(s).iloc[0]) is resident
    assert bool(ck.uscc_ok(s).iloc[0]) is uscc
    assert bool(ck.is_id_number(s).iloc[0]) is valid


def test_id_numbers_checked_together_as_one_by_one(ck):
    """Many values in one series (the polars twin checks them as one byte matrix) give the answers
    each gives alone, nulls and other forms in between."""
    values = ["11010519491231002X", None, "110105194912310021", "91350100M000100Y43", "G12345678",
              "110105194902300027", "91350100M000100Y44", "11010519491231002X", "4.4010619900101E+17"]
    s = ck.normalise_id_number(pd.Series(values, dtype="str"))
    alone = [bool(ck.is_id_number(ck.normalise_id_number(pd.Series([v], dtype="str"))).iloc[0]) for v in values]
    assert ck.is_id_number(s).tolist() == alone == [True, False, False, True, True, False, False, True, False]
    assert ck.resident_id_ok(s).tolist() == [True, False, False, False, False, False, False, True, False]


@pytest.mark.parametrize("raw,norm,valid", [
    ("1M8GDM9AXKP042788", "1M8GDM9AXKP042788", True),   # the textbook example
    ("1m8gdm9axkp042788", "1M8GDM9AXKP042788", True),
    ("1M8G DM9A XKP042788", "1M8GDM9AXKP042788", True),
    ("1M8GDM9A1KP042788", "1M8GDM9A1KP042788", False),  # check digit wrong
    ("1M8GDM9AXKP04278", "1M8GDM9AXKP04278", False),    # 16 chars
    ("1M8GDM9AXKP0427O8", "1M8GDM9AXKP0427O8", False),  # letter O
])
def test_vin(ck, raw, norm, valid):
    v = ck.normalise_vin(S(ck, raw))
    assert v.iloc[0] == norm
    assert bool(ck.is_vin(v).iloc[0]) is valid


def test_vin_check_digits_of_generated_vins_are_valid(ck):
    import numpy as np
    from dealersync.schemas.identifiers import make_vins
    vins = pd.Series(make_vins(np.random.default_rng(1), 500), dtype="str")
    assert ck.is_vin(vins).all()
    broken = vins.str.slice(0, 8) + vins.str.slice(8, 9).map(lambda c: "0" if c != "0" else "1") + vins.str.slice(9)
    assert not ck.is_vin(broken).any()


@pytest.mark.parametrize("raw,valid", [
    ("京A12345", True), ("粤BD12345", True), ("粤B12345D", True), ("京A·12345", True), ("沪 a 12345", True),
    ("京A1234", False), ("XX12345", False), ("粤I12345", False),
])
def test_plate(ck, raw, valid):
    assert bool(ck.is_cn_plate(ck.normalise_plate(S(ck, raw))).iloc[0]) is valid


@pytest.mark.parametrize("raw,valid", [("510000", True), ("51000", False), ("5100001", False), ("51000A", False)])
def test_postcode(ck, raw, valid):
    assert bool(ck.is_postcode(S(ck, raw)).iloc[0]) is valid


@pytest.mark.parametrize("raw,valid", [(" A@B.cn", True), ("user.x+1@mail.example.com", True), ("a@b", False),
                                       ("@b.cn", False)])
def test_email(ck, raw, valid):
    assert bool(ck.is_email(ck.normalise_email(S(ck, raw))).iloc[0]) is valid


@pytest.mark.parametrize("raw,date,datetime_", [
    ("2024-03-05", "2024-03-05", "2024-03-05 00:00:00"),
    ("2024/3/5", "2024-03-05", "2024-03-05 00:00:00"),
    ("20240305", "2024-03-05", "2024-03-05 00:00:00"),
    ("2024-03-05 14:22:00", "2024-03-05", "2024-03-05 14:22:00"),
    ("2024/3/5 9:05", "2024-03-05", "2024-03-05 09:05:00"),
    ("45356", "2024-03-05", "2024-03-05 00:00:00"),          # Excel serial
    ("45356.5", "2024-03-05", "2024-03-05 12:00:00"),
    ("2024年3月5日", "2024-03-05", "2024-03-05 00:00:00"),
    ("2024/03/05", "2024-03-05", "2024-03-05 00:00:00"),
    ("2024/03/05 14:22:00", "2024-03-05", "2024-03-05 14:22:00"),
    ("2024/03/05 14:22:60", "2024-03-05", "2024-03-05 14:23:00"),   # a leap second: the next minute
    ("2024/02/30 10:00:00", None, None),
    ("2024/02/30", None, None),
    ("2024-02-30", None, None),                               # impossible
    ("20241301", None, None),
    ("yesterday", None, None),
])
def test_dates(ck, raw, date, datetime_):
    d = ck.normalise_date(S(ck, raw))
    dt = ck.normalise_datetime(S(ck, raw))
    assert bool(ck.is_iso_date(d).iloc[0]) is (date is not None)
    assert bool(ck.is_iso_datetime(dt).iloc[0]) is (datetime_ is not None)
    if date:
        assert d.iloc[0] == date and dt.iloc[0] == datetime_


@pytest.mark.parametrize("value,valid", [
    ("2024-02-29 23:59:59", True), ("2023-02-29 10:00:00", False),          # leap years
    ("2000-02-29 00:00:00", True), ("1900-02-29 00:00:00", False), ("2100-02-29 00:00:00", False),
    ("2024-04-31 00:00:00", False), ("2024-12-31 23:59:59", True), ("2024-00-10 00:00:00", False),
    ("2024-13-01 00:00:00", False), ("2024-01-00 00:00:00", False), ("2024-01-32 00:00:00", False),
    ("2024-01-01 24:00:00", False), ("2024-01-01 23:60:00", False),
    ("2024-01-01 10:00:60", True),                                          # a leap second, as strptime has it
    ("1899-12-31 00:00:00", False), ("1900-01-01 00:00:00", True), ("2199-12-31 00:00:00", True),
    ("2200-01-01 00:00:00", False), ("2024/01/01 00:00:00", False), ("2024-01-01T00:00:00", False),
    ("2024-01-01 00:00:0", False), ("2024-01-01 00:00:001", False), ("2024-01-0a 00:00:00", False),
    ("2024-01-01 0:00:000", False), ("2024年1月1日 00:00:00", False), ("", False),
])
def test_iso_datetime_check_reads_the_calendar(ck, value, valid):
    assert bool(ck.is_iso_datetime(S(ck, value)).iloc[0]) is valid


@pytest.mark.parametrize("value,valid", [
    ("2024-02-29", True), ("2023-02-29", False), ("2000-02-29", True), ("1900-02-29", False),
    ("2024-06-31", False), ("2024-00-01", False), ("1899-12-31", False), ("2199-12-31", True),
    ("2024/02/29", False), ("2024-2-29", False), ("2024-02-2x", False), ("2024年2月9日", False),
])
def test_iso_date_check_reads_the_calendar(ck, value, valid):
    assert bool(ck.is_iso_date(S(ck, value)).iloc[0]) is valid


def test_iso_datetimes_checked_together_as_one_by_one(ck):
    values = ["2024-02-29 23:59:59", None, "2023-02-29 10:00:00", "bad", "2024-01-01 10:00:60", "2024-13-01 00:00:00"]
    s = pd.Series(values, dtype="str")
    alone = [bool(ck.is_iso_datetime(pd.Series([v], dtype="str")).iloc[0]) for v in values]
    assert ck.is_iso_datetime(s).tolist() == alone == [True, False, False, False, True, False]


def test_profile_date_formats_come_first(ck):
    assert ck.normalise_date(S(ck, "05.03.2024"), ["%d.%m.%Y"]).iloc[0] == "2024-03-05"


@pytest.mark.parametrize("raw,norm,valid", [
    ("1,280.00", "1280.00", True), ("￥1,280", "1280", True), ("1280元", "1280", True), ("-35.5", "-35.5", True),
    ("12x", "12x", False), ("1.2.3", "1.2.3", False),
    # the store's NUMERIC(16, 4): 12 digits before the point, 4 after
    ("999,999,999,999.9999", "999999999999.9999", True), ("1234567890123", "1234567890123", False),
    ("1.23456", "1.23456", False),
])
def test_decimal(ck, raw, norm, valid):
    d = ck.normalise_decimal(S(ck, raw))
    assert d.iloc[0] == norm and bool(ck.is_decimal(d).iloc[0]) is valid


@pytest.mark.parametrize("raw,norm,valid", [("12,345", "12345", True), ("12345km", "12345", True),
                                            ("12345.0", "12345", True), ("12.5", "12.5", False),
                                            ("007", "7", True), ("0", "0", True), ("-012", "-12", True),
                                            ("123456", "123456", True), ("-5", "-5", True)])
def test_integer(ck, raw, norm, valid):
    d = ck.normalise_integer(S(ck, raw))
    assert d.iloc[0] == norm and bool(ck.is_integer(d).iloc[0]) is valid


@pytest.mark.parametrize("raw,canonical", [("是", "Y"), ("否", "N"), ("y", "Y"), ("1", "Y"), ("0", "N"),
                                           ("同意", "Y"), ("maybe", "maybe")])
def test_bool_words(ck, raw, canonical):
    assert ck.normalise_enum(S(ck, raw), ck.BOOL_WORDS).iloc[0] == canonical


@pytest.mark.parametrize("check,value,reason", [
    ("iso_date", "2024-02-30", "IMPOSSIBLE_DATE"), ("iso_date", "soon", "BAD_DATE"),
    ("id_number", "4.4010619900101E+17", "ID_SCI_NOTATION"), ("id_number", "110105194912310021", "ID_CHECK_DIGIT"),
    ("id_number", "110105194902300027", "ID_BAD_BIRTHDATE"), ("vin", "1M8GDM9A1KP042788", "VIN_CHECK_DIGIT"),
    ("vin", "1M8GDM9AXKP04278", "VIN_LENGTH"), ("vin", "1M8GDM9AXKP0427O8", "VIN_FORMAT"),
    ("not_nullable", None, "MISSING_REQUIRED"), ("cn_mobile", "123", "BAD_MOBILE"),
    ("isin(['M', 'F'])", "X", "BAD_ENUM"), ("encoding", "a\ufffd", "ENCODING_ERROR"),
])
def test_explain_reason_codes(ck, check, value, reason):
    code, message = ck.explain(check, value)
    assert code == reason and message
