"""Property-based tests (Hypothesis) of the reader's parsers: workbook numbers at 15 significant digits,
GB18030 by the 2022 mapping, blocks of whole lines under a line limit, export file names."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealersync.connectors.files import parse_file_name
from dealersync.connectors.readers.gb18030 import TABLE_2022, decode, fix_2022
from dealersync.connectors.readers.text import LineTooLong, raw_blocks
from dealersync.connectors.readers.workbook import cell_to_str, number_text

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(st.floats(min_value=-9.99999999999999e307, max_value=9.99999999999999e307))   # Excel's range
def test_numbers_are_read_at_15_significant_digits_and_read_again_the_same(v):
    t = number_text(v)
    back = float(t)
    mantissa = t.lstrip("-").split("E")[0].replace(".", "").lstrip("0")
    assert len(mantissa) <= 15
    assert number_text(back) == t                                    # a fixed point
    if v:
        assert abs(Decimal(back) - Decimal(v)) <= abs(Decimal(v)) * Decimal("1e-14")


@pytest.mark.parametrize("v,shown", [(121.00000000000001, "121"), (3479.9999999999995, "3480"),
                                     (0.30000000000000004, "0.3"), (4.40106199001011e17, "4.40106199001011E+17"),
                                     (13812345678.0, "13812345678"), (-0.0, "0"), (1e-7, "1E-7")])
def test_the_amounts_excel_shows(v, shown):
    assert cell_to_str(v) == shown


GB_TEXT = st.text(alphabet=st.characters(codec="gb18030", exclude_categories=("Cs",)), max_size=40)


@SETTINGS
@given(GB_TEXT)
def test_gb18030_round_trips_by_the_2022_mapping(text):
    data = text.encode("gb18030")
    assert decode(data, "gb18030") == fix_2022(text)
    assert decode(text.encode("utf-8"), "utf-8") == text               # UTF-8 text is never remapped


def test_the_2022_table_maps_each_two_byte_code_to_its_character():
    assert decode(bytes.fromhex("FE51"), "gb18030") == "\U00020087"
    assert decode(bytes.fromhex("A6D9"), "gb18030") == "\ufe10"
    assert decode(bytes.fromhex("FE59"), "gb18030") == "\u9fb4"
    assert len(TABLE_2022) == 24 and all(0xE000 <= k <= 0xF8FF for k in TABLE_2022)


@SETTINGS
@given(st.binary(max_size=4000), st.integers(1, 300), st.integers(1, 64), st.integers(16, 1000))
def test_blocks_are_whole_lines_and_a_long_line_is_refused(data, block, first, limit):
    longest = max((len(p) for p in data.replace(b"\r", b"\n").split(b"\n")), default=0)
    try:
        blocks = list(raw_blocks(io.BytesIO(data), block_bytes=block, first_bytes=first, max_line_bytes=limit))
    except LineTooLong:
        assert longest > limit - block
        return
    assert longest <= limit + 2 * block
    joined = b"".join(blocks)
    assert joined == (data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    assert all(b.endswith((b"\n", b"\r")) for b in blocks[:-1])


@SETTINGS
@given(st.text(alphabet="ABCGZ0123456789", min_size=1, max_size=8), st.sampled_from(["CUSTOMER", "RO", "ROLINE"]),
       st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), st.one_of(st.none(), st.integers(1, 99)),
       st.sampled_from(["csv", "csv.gz", "xlsx", "xlsm", "xls", "xlsb", "ods", "XLS"]),
       st.sampled_from(["", "16-", "副本 ", "copy ("]))
def test_export_file_names_parse_whatever_the_extension_and_prefix(dealer, feed, day, seq, ext, prefix):
    name = f"{prefix}{dealer}_{feed}_{day:%Y%m%d}" + (f"_{seq}" if seq else "") + f".{ext}"
    got = parse_file_name(name)
    assert (got.dealer, got.feed_token, got.business_date, got.seq) == (dealer.upper(), feed, day, seq)
