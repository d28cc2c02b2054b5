"""The workbook reader against a second reader (openpyxl) over thousands of generated cells, and the
limits that keep a small hostile file from taking gigabytes (issue #15, "Contain the damage")."""
from __future__ import annotations

import random
import re
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import openpyxl
import pytest

from dealersync.connectors.files import open_table
from dealersync.connectors.readers.workbook import ReadLimits, read_workbook, sniff_kind
from dealersync.errors import BadSourceData


def opener_of(path: Path):
    return lambda: open(path, "rb")


def understate_dimension(path: Path, sheet_part: str, ref: str = "A1") -> None:
    """Rewrite the stored ``<dimension>`` as WPS and streaming writers leave it."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == sheet_part:
                data = re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="' + ref.encode() + b'"', data)
            zout.writestr(item, data)
    tmp.replace(path)


def _value(rng: random.Random):
    k = rng.randrange(9)
    if k == 0:
        return None
    if k == 1:
        return "".join(rng.choice("张王李赵客户编号ABCxyz0123 -") for _ in range(rng.randrange(1, 12))).strip() or "x"
    if k == 2:
        return rng.randrange(-10 ** 12, 10 ** 12)
    if k == 3:   # amounts as a DMS computes them: binary artifacts of 2-decimal sums and products
        return sum(rng.randrange(0, 10 ** 6) / 100 for _ in range(rng.randrange(1, 4))) * rng.choice([1, 1.1, 3])
    if k == 4:
        return rng.uniform(-1e6, 1e6)
    if k == 5:
        return datetime(2000, 1, 1) + timedelta(seconds=rng.randrange(10 ** 9))
    if k == 6:
        return datetime(2000, 1, 1) + timedelta(days=rng.randrange(10 ** 4))
    if k == 7:
        return "0" + str(rng.randrange(10 ** 6))          # leading zeros: text, kept
    return rng.randrange(10 ** 10, 10 ** 11) * 10 ** 7 + rng.randrange(10 ** 7)   # 18 digits: Excel keeps 15


def _expected(v) -> str:
    """What the cell shows in Excel, computed independently of the reader: numbers rounded to 15
    significant digits with decimal arithmetic, date-times formatted."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d") if v.time() == datetime.min.time() else v.strftime("%Y-%m-%d %H:%M:%S")
    d = Decimal(float(v))
    if d == 0:
        return "0"
    q = Decimal(1).scaleb(d.adjusted() - 14)
    return d.quantize(q, rounding=ROUND_HALF_EVEN).normalize()


def test_reader_agrees_with_openpyxl_on_generated_cells(tmp_path):
    rng = random.Random(21)
    wb = openpyxl.Workbook()
    hidden = wb.active
    hidden.title = "lists"
    hidden.append(["保养", "小修"])
    hidden.sheet_state = "hidden"
    ws = wb.create_sheet("data")
    data = [[_value(rng) for _ in range(8)] for _ in range(600)]
    ws.append([f"h{i}" for i in range(8)])
    for r in data:
        ws.append(r)
    path = tmp_path / "gen.xlsx"
    wb.save(path)
    understate_dimension(path, "xl/worksheets/sheet2.xml")
    assert sniff_kind(path.read_bytes()[:8], opener_of(path)) == "xlsx"

    book = read_workbook(opener_of(path), path.name, "xlsx")
    got = list(book.rows)
    book.close()
    assert book.sheet == "data"
    oracle = openpyxl.load_workbook(path, data_only=True)["data"]   # full load: every cell, not the dimension
    want = [[_expected(c.value) for c in row] for row in oracle.iter_rows(min_row=2)]
    assert len(got) == 601 and [r for r, _ in got] == list(range(1, 602))
    cells = 0
    for (_, ours), theirs in zip(got[1:], want):
        ours = (ours + [""] * 8)[:8]
        for o, t in zip(ours, theirs):
            cells += 1
            if isinstance(t, Decimal):
                assert Decimal(o.replace("E+", "E")) == t, (o, t)
                assert len(re.sub(r"[^0-9]", "", o.split("E")[0]).strip("0")) <= 15
            else:
                assert o == t
    assert cells == 4800


def test_the_profile_names_the_sheet_and_messages_name_it(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表为导出说明"])
    ws = wb.create_sheet("客户")
    ws.append(["客户编号", "客户名称"])
    ws.append(["C1", "张伟"])
    path = tmp_path / "x.xlsx"
    wb.save(path)
    book = read_workbook(opener_of(path), path.name, "xlsx", sheets=["客户"])
    assert book.sheet == "客户" and [c for _, c in book.rows][1] == ["C1", "张伟"]
    with pytest.raises(BadSourceData) as e:
        open_table(path, lambda cells: 0)
    assert "x.xlsx, sheet '说明'" in str(e.value) and e.value.reason == "NO_HEADER"


def test_a_password_protected_or_damaged_workbook_names_the_cause(tmp_path):
    bad = tmp_path / "GZ0012_CUSTOMER_20261103.xlsx"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    with pytest.raises(BadSourceData) as e:
        open_table(bad, lambda cells: 1)
    assert "zip" in str(e.value)
    ole = tmp_path / "GZ0012_CUSTOMER_20261103.xls"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000)
    with pytest.raises(BadSourceData) as e:
        open_table(ole, lambda cells: 1)
    assert "not a readable XLS workbook" in str(e.value) and "GZ0012_CUSTOMER_20261103.xls" in str(e.value)


# ------------------------------------------------------------------------------ limits

def far_cell_bomb(path: Path) -> Path:
    """A tiny XLSX whose used area, from A1 to XFD1048576, is 17 billion cells: a dense reader
    allocates them all."""
    wb = openpyxl.Workbook()
    wb.active.append(["客户编号", "客户名称"])
    wb.save(path)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')
            zout.writestr(item, data)
    tmp.replace(path)
    return path


def test_a_far_cell_is_refused_before_the_sheet_is_loaded(tmp_path):
    path = far_cell_bomb(tmp_path / "GZ0012_CUSTOMER_20261103.xlsx")
    assert path.stat().st_size < 10_000
    # the child's own peak (VmHWM): ru_maxrss survives exec and reports the parent's peak when that is
    # larger (a pytest worker that ran heavier tests first measured 613 MB here)
    code = ("import sys\n"
            "from dealersync.connectors.files import open_table\n"
            "from dealersync.errors import BadSourceData\n"
            "try:\n    open_table(sys.argv[1], lambda c: 1)\nexcept BadSourceData as e:\n    print(e.reason, e)\n"
            "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("TOO_LARGE") and "max_workbook_cells" in lines[0] and "1,048,576 rows" in lines[0], out
    assert int(lines[-1]) < 600, f"peak RSS {lines[-1]} MB"


def test_a_workbook_that_inflates_past_the_limit_is_refused(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["客户编号", "客户名称"])
    for i in range(30_000):
        ws.append(["C%06d" % i, "张伟" * 20])
    path = tmp_path / "GZ0012_CUSTOMER_20261103.xlsx"
    wb.save(path)
    with pytest.raises(BadSourceData) as e:
        read_workbook(opener_of(path), path.name, "xlsx", limits=ReadLimits(max_workbook_bytes=1 << 20))
    assert e.value.reason == "TOO_LARGE" and "max_workbook_bytes" in str(e.value)
    with pytest.raises(BadSourceData) as e:
        read_workbook(opener_of(path), path.name, "xlsx", limits=ReadLimits(max_workbook_cells=50_000))
    assert "max_workbook_cells" in str(e.value) and "sheet 'Sheet'" in str(e.value)
    book = read_workbook(opener_of(path), path.name, "xlsx")   # the defaults take it
    assert sum(1 for _ in book.rows) == 30_001
