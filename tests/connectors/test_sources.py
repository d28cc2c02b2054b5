"""The readers take an opener, not a path (#14 item 6): a ``Source`` is a name and a function giving a
fresh binary stream, so an export read from memory, from gzip bytes or in place from SFTP gives the
same rows, the same faults and the same digest as the file on disk."""
from __future__ import annotations

import gzip
import hashlib
import io

import openpyxl
import pytest

from dealersync.connectors.files import Source, open_table
from dealersync.errors import BadSourceData

HEADER = ["工单号", "车架号", "金额"]
CSV = ("某某4S店 维修工单导出\n" + ",".join(HEADER) + "\nRO1,LSVAG2180E2100000,12.5\nRO2,,3\n").encode("gb18030")


def score(cells):
    return len(set(cells) & set(HEADER))


def read(src):
    t = open_table(src, score)
    try:
        return t.header, [(int(b.rownums[i]), b.cells(i)) for b in t.batches(10) for i in range(len(b))], t.digest(), t.where
    finally:
        t.close()


def xlsx_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "工单"
    for row in (["某某4S店 维修工单导出"], HEADER, ["RO1", "LSVAG2180E2100000", 12.5], ["RO2", None, 3]):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("name,data", [("GZ0012_RO_20261103.csv", CSV),
                                       ("GZ0012_RO_20261103.csv.gz", gzip.compress(CSV, mtime=0)),
                                       ("GZ0012_RO_20261103.xlsx", xlsx_bytes())])
def test_a_source_in_memory_reads_as_the_file_on_disk(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    opened = []

    def opener():
        opened.append(1)
        return io.BytesIO(data)
    on_disk, in_memory = read(path), read(Source(name, opener))
    assert in_memory == on_disk
    header, rows, digest, where = in_memory
    assert header == HEADER and [n for n, _ in rows] == [3, 4]
    assert digest == (hashlib.sha256(data).hexdigest(), len(data))   # the ledger's hash: the bytes as given
    assert where.startswith(name) and opened                        # messages name the source, not a temp path


def test_a_fault_names_the_source():
    with pytest.raises(BadSourceData) as e:
        open_table(Source.of_bytes("GZ0012_RO_20261103.csv", b"\x00\x01binary"), score)
    assert e.value.file == "GZ0012_RO_20261103.csv" and e.value.reason == "NOT_A_TABLE"
