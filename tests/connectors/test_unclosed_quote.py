"""A quote that opens a value and never closes swallows every later line into that value: the file is
damaged, and it is rejected whole (``UNCLOSED_QUOTE``) naming the file, the line where the quote opened
and its column, wherever it is (the middle, the last row, the last line without a line end), by both
readers, in GB18030 and UTF-8, CRLF and LF. A quote inside an unquoted value is an ordinary character."""
from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dealersync.connectors.files as files
from dealersync.connectors.files import _batched, open_table
from dealersync.connectors.readers import csvfile
from dealersync.connectors.readers.csvfile import quote_opening

HEADER = ["工单号", "车架号", "地址", "金额"]


def score(cells):
    return len(set(cells) & set(HEADER))


def flat(batches):
    return [(int(b.rownums[i]), b.cells(i)) for b in batches for i in range(len(b))]


def readers():
    """The columnar reader (blocks, falling back row by row) and the row reader."""
    return (lambda t: flat(t.batches(7)), lambda t: flat(_batched(t.records(), 7, len(t.header))))


def read_all(path):
    out = []
    for read in readers():
        t = open_table(path, score)
        try:
            out.append(read(t))
        finally:
            t.close()
    return out


def rejection(path):
    """The BadSourceData each reader raises (the same for both)."""
    got = []
    for read in readers():
        with pytest.raises(files.BadSourceData) as e:
            t = open_table(path, score)
            try:
                read(t)
            finally:
                t.close()
        got.append((e.value.reason, e.value.row, e.value.column, e.value.file))
    assert got[0] == got[1]
    return e.value


ROWS = [f"RO{i},LVSHCAMB1CE1{i:05d},广州市天河区{i}号,{i}.00" for i in range(1, 41)]


def _file(tmp_path, lines, *, eol="\r\n", encoding="gb18030", final_eol=True):
    p = tmp_path / "GZ0012_RO_20261103.csv"
    p.write_bytes((eol.join([",".join(HEADER), *lines]) + (eol if final_eol else "")).encode(encoding))
    return p


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
@pytest.mark.parametrize("eol", ["\r\n", "\n"])
@pytest.mark.parametrize("at,cell,column,final_eol", [
    (10, 2, "地址", True),        # the middle: 30 rows follow, fewer than the 200-line limit
    (39, 2, "地址", True),        # the last row (quarantined as a wrong field count before)
    (39, 2, "地址", False),       # the last row, no line end after it
    (39, 3, "金额", True),        # the last column of the last row
    (0, 0, "工单号", True),        # the first data row, first column
])
def test_an_unclosed_quote_rejects_the_file_naming_line_and_column(tmp_path, encoding, eol, at, cell, column,
                                                                    final_eol):
    lines = list(ROWS)
    cells = lines[at].split(",")
    cells[cell] = '"' + cells[cell]
    lines[at] = ",".join(cells)
    p = _file(tmp_path, lines, eol=eol, encoding=encoding, final_eol=final_eol)
    e = rejection(p)
    assert (e.reason, e.row, e.column, e.file) == ("UNCLOSED_QUOTE", at + 2, column, p.name)
    assert f"line {at + 2}" in str(e) and f"column {column}" in str(e) and p.name in str(e)


def test_the_line_named_is_where_the_quote_opened_after_a_value_over_two_lines(tmp_path):
    lines = list(ROWS)
    lines[20] = 'RO21,LVSHCAMB1CE100021,"两行的\r\n地址",21.00'
    lines[30] = 'RO31,LVSHCAMB1CE100031,"深圳,31.00'
    e = rejection(_file(tmp_path, lines))
    assert (e.row, e.column) == (33, "地址")   # header line 1, RO21 takes lines 22-23: RO31 is line 33


def test_a_quote_opening_on_the_second_line_of_a_record(tmp_path):
    lines = list(ROWS)
    lines[39] = 'RO40,"LVSHCAMB1CE1\r\n00040",深圳,"40.00'
    e = rejection(_file(tmp_path, lines))
    assert (e.row, e.column) == (42, "金额")


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_a_quote_inside_an_unquoted_value_is_an_ordinary_character(tmp_path, encoding, eol):
    lines = list(ROWS)
    lines[5] = 'RO6,LVSHCAMB1CE100006,张"伟 家,6.00'
    lines[39] = 'RO40,LVSHCAMB1CE100040,他说"好,40.00'
    fast, slow = read_all(_file(tmp_path, lines, eol=eol, encoding=encoding))
    assert fast == slow and len(fast) == 40
    assert fast[5][1][2] == '张"伟 家' and fast[39][1][2] == '他说"好'


def test_a_closed_quote_followed_by_text_is_no_unclosed_quote(tmp_path):
    lines = list(ROWS)
    lines[39] = 'RO40,LVSHCAMB1CE100040,"深圳"南山,40.00'
    fast, slow = read_all(_file(tmp_path, lines))
    assert fast == slow and fast[39][1][2] == "深圳南山"


@pytest.mark.parametrize("record,where", [
    ('a,"b,c', (0, 2)), ('"a', (0, 1)), ('a,b,"', (0, 3)), ('a,b"c,d', None), ('a,"b""c",d', None),
    ('a,"b\r\nc",d,"e', (1, 4)), ('a,"x\ny\nz",b', (0, 2)), ('a,"b"c,"d\n', (0, 3)), ('a, "b', None),
])
def test_where_a_quote_opened(record, where):
    assert quote_opening(record) == where


# ----------------------------------------------------------------------------- properties

CELL = st.lists(st.sampled_from(list('ab 1,"\n张伟𠂇') + ["\r\n"]), max_size=8).map("".join)
PLAIN = st.text(alphabet=st.sampled_from(list("ab 1张伟")), max_size=6)   # no quote, comma or line end
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _csv(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
    return buf.getvalue()


@SETTINGS
@given(st.lists(st.lists(CELL, min_size=4, max_size=4), min_size=1, max_size=12),
       st.sampled_from(["gb18030", "utf-8"]))
def test_what_a_csv_writer_wrote_is_read_back_and_never_rejected(tmp_path_factory, rows, encoding):
    rows = [r for r in rows if "".join(r).strip()] or [["RO1", "", "", ""]]
    p = tmp_path_factory.mktemp("w") / "GZ0012_RO_20261103.csv"
    p.write_bytes(_csv(rows).encode(encoding))
    fast, slow = read_all(p)
    assert fast == slow
    assert [c for _, c in fast] == [r for r in rows if "".join(r).strip()]


@SETTINGS
@given(st.lists(st.lists(CELL, min_size=4, max_size=4), max_size=8), st.lists(PLAIN, min_size=4, max_size=4),
       st.integers(0, 3), st.lists(st.lists(PLAIN, min_size=4, max_size=4), max_size=8),
       st.sampled_from(["gb18030", "utf-8"]), st.booleans())
def test_a_quote_that_never_closes_rejects_the_file_wherever_it_is(tmp_path_factory, before, broken, column,
                                                                   after, encoding, final_eol):
    """Rows a CSV writer wrote, then a row whose ``column`` opens a quote, then rows without a quote:
    rejected, naming the line the quote opened on and its column."""
    text = _csv([r for r in before if "".join(r).strip()])
    line = text.count("\n") + 1
    cells = list(broken)
    cells[column] = '"' + cells[column]
    tail = "\r\n".join([",".join(cells), *(",".join(r) for r in after)]) + ("\r\n" if final_eol else "")
    p = tmp_path_factory.mktemp("u") / "GZ0012_RO_20261103.csv"
    p.write_bytes((text + tail).encode(encoding))
    e = rejection(p)
    assert (e.reason, e.row, e.column) == ("UNCLOSED_QUOTE", line, HEADER[column])


def test_the_fast_reader_leaves_the_rejection_to_the_row_reader(tmp_path, monkeypatch):
    """Small blocks: the unclosed quote is met by the block reader first; the result is the same."""
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", 256)
    lines = list(ROWS)
    lines[39] = 'RO40,"LVSHCAMB1CE100040,深圳,40.00'
    e = rejection(_file(tmp_path, lines))
    assert (e.row, e.column) == (41, "车架号")
