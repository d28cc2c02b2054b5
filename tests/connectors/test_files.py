"""The columnar CSV reader (pyarrow, block by block) must give exactly what the row reader gives:
the same rows, row numbers, cells and structural faults, whatever the file holds."""
from __future__ import annotations

import io

import pytest

import dealersync.connectors.files as files
from dealersync.connectors.readers import csvfile
from dealersync.connectors.files import _batched, open_table

HEADER = ["工单号", "车架号", "地址", "金额"]


def score(cells):
    return len(set(cells) & set(HEADER))


def flat(batches):
    return [(int(b.rownums[i]), b.cells(i), b.bad.get(i)) for b in batches for i in range(len(b))]


def both(path, rows=3):
    """(columnar reader's rows, row reader's rows, how many times the columnar reader fell back)."""
    fallbacks = []
    real = csvfile._slow_rest

    def spy(*a, **k):
        fallbacks.append(a[1])
        return real(*a, **k)
    t = open_table(path, score)
    csvfile._slow_rest = spy
    try:
        fast = flat(t.batches(rows))
    finally:
        csvfile._slow_rest = real
        t.close()
    t = open_table(path, score)
    slow = flat(_batched(t.records(), rows, len(t.header)))
    t.close()
    return fast, slow, fallbacks


LINES = ["某某4S店 维修工单导出", "", ",".join(HEADER),
         'RO1,LVSHCAMB1CE123456,"广州市天河区,体育西路1号",100.00',
         "", "RO2,LVSHCAMB1CE123457,,200",
         '"RO3",LVSHCAMB1CE123458,"两行的\n地址",300',
         ",,,",
         'RO4,LVSHCAMB1CE123459,"他说""你好""","1,280.00"',
         "RO5,LVSHCAMB1CE123460,深圳,50",
         "合计,,,930"]


def write(tmp_path, text: str, encoding="gb18030", name="GZ0012_RO_20261103.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def decoded_path(monkeypatch) -> list:
    """Spy: the first line of each block parsed after decoding (not in the file's own bytes)."""
    calls, real = [], csvfile._parse_block
    monkeypatch.setattr(csvfile, "_parse_block", lambda text, line, width: calls.append(line) or real(text, line, width))
    return calls


@pytest.mark.parametrize("ending", ["\r\n", "\n"])
@pytest.mark.parametrize("encoding", ["gb18030", "utf-8", "utf-8-sig"])
def test_regular_file_is_read_in_blocks_and_matches_the_row_reader(tmp_path, monkeypatch, ending, encoding):
    p = write(tmp_path, ending.join(LINES) + ending, encoding)
    decoded = decoded_path(monkeypatch)
    fast, slow, fallbacks = both(p)
    assert fast == slow
    assert fallbacks == []                      # the columnar reader did the whole file
    assert decoded == []                        # in the file's own bytes, decoding only the columns
    assert [r for r, _, _ in fast] == [4, 6, 7, 10, 11, 12]
    assert fast[2][1][2] == "两行的\n地址" and fast[3][1][2] == '他说"你好"'
    assert fast[-1][2][0] == "TOTALS_ROW"


@pytest.mark.parametrize("block", [64, 100, 257])
def test_blocks_cut_anywhere_even_inside_a_quoted_value(tmp_path, monkeypatch, block):
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", block)
    rows = [f'RO{i},LVSHCAMB1CE1{i:05d},"第{i}行\n第二行,有逗号",{i}.00' if i % 3 == 0 else
            f"RO{i},LVSHCAMB1CE1{i:05d},地址{i},{i}" for i in range(60)]
    p = write(tmp_path, "\r\n".join([",".join(HEADER), *rows]) + "\r\n")
    fast, slow, fallbacks = both(p, rows=7)
    assert fast == slow and len(fast) == 60 and fallbacks == []


def test_small_blocks_are_gathered_into_batches_of_the_chunk_size(tmp_path, monkeypatch):
    """Blocks of a few rows each come out as a short first batch (a quarter of ``rows``), batches of
    exactly ``rows``, then the file's last rows in two parts, the final one short; blank rows dropped,
    the totals row marked at its place in the gathered batch."""
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", 100)
    rows = [f"RO{i},LVSHCAMB1CE1{i:05d},地址{i},{i}" if i % 10 else ",,," for i in range(1, 41)]
    p = write(tmp_path, "\r\n".join([",".join(HEADER), *rows, "合计,,,820"]) + "\r\n")
    t = open_table(p, score)
    batches = list(t.batches(7))
    t.close()
    sizes = [len(b) for b in batches]
    assert sum(sizes) == 37                                  # 36 rows and the totals row
    assert sizes[0] == 1 and set(sizes[1:-2]) == {7}         # a short first part, then the chunk size
    assert 1 <= sizes[-2] <= 7 and sizes[-1] == 1            # the end: a short last part
    assert flat(batches) == both(p, rows=7)[1]
    assert batches[-1].bad == {0: ("TOTALS_ROW", "totals row (合计) at the end of the export, not a record")}
    assert batches[2].rownums.tolist() == [10, 12, 13, 14, 15, 16, 17]   # RO10's blank line 11 dropped
    assert [c[0] for c in batches[2].cells_of([0, 1])] == ["RO9", "RO11"]


def test_the_first_rows_come_from_a_short_first_read(tmp_path, monkeypatch):
    """The first read is small and reads double up to the block size; the first batch (a quarter of the
    chunk) leaves as soon as it is there, so the writer starts before the file's next megabytes are parsed."""
    data = b"".join(f"line {i}\r\n".encode() for i in range(200))
    blocks = list(files.raw_blocks(io.BytesIO(data), block_bytes=256, first_bytes=16))
    assert b"".join(blocks) == data and len(blocks[0]) <= 16 and max(map(len, blocks)) <= 256 + 16
    assert [len(b) for b in blocks[:4]] == sorted(len(b) for b in blocks[:4])
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", 100)
    rows = [f"RO{i},LVSHCAMB1CE1{i:05d},地址{i},{i}" for i in range(1, 41)]
    p = write(tmp_path, "\r\n".join([",".join(HEADER), *rows]) + "\r\n")
    seen = []
    real = csvfile.raw_blocks
    monkeypatch.setattr(csvfile, "raw_blocks", lambda *a, **k: (seen.append(b) or b for b in real(*a, **k)))
    t = open_table(p, score)
    seen.clear()                                               # what finding the header read
    first = next(t.batches(8))
    t.close()
    assert len(first) == 2 and first.rownums.tolist() == [2, 3]
    rows_seen = sum(b.count(b"\n") for b in seen) - 1      # the header is in the first block
    assert rows_seen - len(seen[-1].splitlines()) < 2 <= rows_seen   # no block read beyond the one it needed
    assert len(first) == 2 and first.rownums.tolist() == [2, 3]


@pytest.mark.parametrize("bad_line, why", [
    ("RO9,LVSHCAMB1CE123461,多一列,1,2", "FIELD_COUNT"),    # wrong width: read row by row from here
    ("RO9,LVSHCAMB1CE123461", "FIELD_COUNT"),
    ('RO9,LVSHCAMB1CE123461,5"屏幕,1', None),               # a quote inside a value, not a quoted value
])
def test_irregular_rows_fall_back_to_the_row_reader_with_the_same_result(tmp_path, bad_line, why):
    lines = LINES[:6] + [bad_line] + LINES[6:]
    p = write(tmp_path, "\r\n".join(lines) + "\r\n")
    fast, slow, _ = both(p)
    assert fast == slow
    assert any(r == 7 and (bad or (None,))[0] == why for r, _, bad in fast)


def test_bare_cr_line_ends_and_mixed_encodings_match(tmp_path):
    text = "\r".join(LINES) + "\r"
    p = write(tmp_path, text)
    fast, slow, _ = both(p)
    assert fast == slow and len(fast) == 6
    gb = ("\r\n".join(LINES[2:6]) + "\r\n").encode("gb18030")
    p.write_bytes(gb + "RO8,LVSHCAMB1CE123462,上海,1\r\n".encode("utf-8") + b"RO9,V,\xff\xfe,1\r\n")
    t = open_table(p, score)
    fast = flat(t.batches(10))
    stats = (t.stats.fallback_lines, t.stats.undecodable_lines)
    t.close()
    t = open_table(p, score)
    slow = flat(_batched(t.records(), 10, len(t.header)))
    assert fast == slow and files.UNDECODABLE in fast[-1][1][2]
    assert stats == (t.stats.fallback_lines, t.stats.undecodable_lines) and stats[1] == 1
    t.close()


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
@pytest.mark.parametrize("odd", [b"\xff\xfe", "上海".encode("gb18030") + b"\x1f" + "广州".encode("gb18030")])
def test_a_block_the_own_bytes_path_cannot_take_is_decoded_first(tmp_path, monkeypatch, encoding, odd):
    """Bytes that do not decode in the file's encoding, or the separator the column decoding uses,
    send that block through the decoded path (its fallback rules), with the row reader's result."""
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", 200)
    rows = [f"RO{i},LVSHCAMB1CE1{i:05d},地址{i},{i}".encode(encoding) for i in range(30)]
    rows[17] = b"RO17,LVSHCAMB1CE100017," + odd + b",17"
    p = tmp_path / "GZ0012_RO_20261103.csv"
    p.write_bytes(b"\r\n".join([",".join(HEADER).encode(encoding), *rows]) + b"\r\n")
    decoded = decoded_path(monkeypatch)
    fast, slow, fallbacks = both(p)
    assert fast == slow and len(fast) == 30 and fallbacks == []
    assert decoded and min(decoded) <= 19 and fast[17][1][0] == "RO17"


@pytest.mark.parametrize("block", [256, 1 << 20])
def test_an_unclosed_quote_rejects_the_file_as_the_row_reader_does(tmp_path, monkeypatch, block):
    monkeypatch.setattr(csvfile, "_FAST_BLOCK_BYTES", block)
    rows = [f"RO{i},LVSHCAMB1CE1{i:05d},地址,{i}" for i in range(400)]
    rows[100] = 'RO100,LVSHCAMB1CE100100,"never closed,5'
    p = write(tmp_path, "\r\n".join([",".join(HEADER), *rows]) + "\r\n")
    t = open_table(p, score)
    with pytest.raises(files.BadSourceData) as e:
        flat(t.batches(50))
    assert e.value.reason == "UNCLOSED_QUOTE" and e.value.row == 102


def test_last_line_without_a_line_end(tmp_path):
    p = write(tmp_path, "\r\n".join(LINES[2:6] + ["RO5,LVSHCAMB1CE123460,深圳,50"]))
    fast, slow, _ = both(p)
    assert fast == slow and [r for r, _, _ in fast] == [2, 4, 5]


@pytest.mark.parametrize("profile", ["dms_a", "dms_b"])
def test_sample_exports_read_the_same_by_both_readers(tmp_path, profile):
    """Every feed of the sample generator (the spec's dirt included), both readers, row for row."""
    from dealersync.services.sample import generate
    from dealersync.schemas.feeds import FEEDS_BY_TOKEN
    from dealersync.schemas.profiles import HeaderMatcher, load_profiles
    generate(tmp_path, rows=400, seed=3, profile=profile)
    profiles = load_profiles()
    files_seen = 0
    for p in sorted(tmp_path.glob("*.csv")):
        if "_truth_" in p.name:
            continue
        feed = FEEDS_BY_TOKEN[files.parse_file_name(p.name).feed_token]
        t = open_table(p, HeaderMatcher(feed, profiles).score)
        fast = flat(t.batches(97))
        t.close()
        t = open_table(p, HeaderMatcher(feed, profiles).score)
        slow = flat(_batched(t.records(), 97, len(t.header)))
        t.close()
        assert fast == slow, p.name
        files_seen += 1
    assert files_seen >= 3


def test_a_record_over_too_many_lines_is_an_unclosed_quote_for_both_readers(tmp_path):
    rows = [f"RO{i},LVSHCAMB1CE1{i:05d},地址,{i}" for i in range(40)]
    rows[30] = 'RO30,LVSHCAMB1CE100030,"' + "\r\n".join(["一行"] * (files.MAX_RECORD_LINES + 1)) + '",30'
    p = write(tmp_path, "\r\n".join([",".join(HEADER), *rows]) + "\r\n")
    for read in (lambda t: flat(t.batches(10)), lambda t: flat(_batched(t.records(), 10, len(t.header)))):
        t = open_table(p, score)
        with pytest.raises(files.BadSourceData) as e:
            read(t)
        t.close()
        assert e.value.reason == "UNCLOSED_QUOTE" and e.value.row == 32
