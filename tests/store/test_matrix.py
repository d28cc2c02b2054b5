"""The load matrix (issue #17): every feed x (fast COPY path, stage-and-upsert path, same-day
replacement) x (SQLite, PostgreSQL), through ``ingest_file`` with 4-row chunks.

Each file repeats keys inside a chunk (and, for the upsert and replacement paths, across chunk
boundaries), carries one row with a blank key and one with a key of the wrong form (both quarantined)
and one optional value of the wrong form (blanked). The expectation is computed from the CSV text alone,
with the ``csv`` module: the valid rows, the last occurrence of each key wins, each cell converted to the
column's Python type by this module (not by the loader). The counts are checked against the CSV too:
rows read = data lines, quarantined = the rows made bad, rows read = loaded + quarantined, and the
table holds one row per distinct valid key.
"""
from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dealersync.schemas.feeds import FEEDS, FeedDef
from dealersync.services.ingest import ingest_file
from dealersync.store import repository as repo
from dealersync.store.db import make_engine, upgrade
from dealersync.store.tables import FEED_TABLES, ingest_file as ledger, quarantine

CHUNK = 4
DEALER = "GZ0012"
DAY = date(2026, 11, 3)
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
VIN_VALUES = {c: (int(c) if c.isdigit() else v) for c, v in zip(
    VIN_CHARS, list(range(10)) + [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9])}
VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]

# Keys (indexes into a pool of keys; "blank" and "wrong" are the quarantined rows), 14 data rows.
# ACROSS repeats keys inside chunks and across every boundary of the chunks the reader cuts (1, 4, 4,
# 4, 1 rows today); the COPY-path layout is made from the chunk sizes measured (``chunk_sizes``), and
# every test checks, on the chunks the loader really wrote, that its repeats are where it says.
ROWS = 14
ACROSS = [0, 1, 0, 2, 3, 1, "blank", 4, 4, 5, 2, "wrong", 6, 6]


def vin(rng: random.Random) -> str:
    """A VIN with its ISO 3779 check digit, computed here (not with the product's code)."""
    body = "LSV" + "".join(rng.choice(VIN_CHARS) for _ in range(5)) + "0" + rng.choice("LMNPRST") \
        + rng.choice("ABCDEFG") + f"{rng.randrange(10 ** 6):06d}"
    total = sum(VIN_VALUES[c] * w for c, w in zip(body, VIN_WEIGHTS))
    return body[:8] + "0123456789X"[total % 11] + body[9:]


def resident_id(rng: random.Random, birth: date, male: bool) -> str:
    """GB 11643-1999: 17 digits and the MOD 11-2 check character."""
    body = f"440106{birth:%Y%m%d}{rng.randrange(0, 500) * 2 + male:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def cell(feed: FeedDef, name: str, meta: dict, rng: random.Random, n: int) -> str:
    """A valid canonical text for column ``name`` (row ``n``)."""
    kind = meta["kind"]
    if meta["values"]:
        return meta["values"][n % len(meta["values"])]
    return {
        "mobile": lambda: f"13{rng.randrange(10 ** 9):09d}",
        "masked_mobile": lambda: f"138****{rng.randrange(10 ** 4):04d}",
        "phone": lambda: f"020-8{rng.randrange(10 ** 7):07d}",
        "vin": lambda: vin(rng),
        "plate": lambda: f"粤A{rng.randrange(10 ** 5):05d}",
        "postcode": lambda: "510000",
        "email": lambda: f"user{n}@example.com",
        "date": lambda: (date(2020, 1, 1) + timedelta(days=rng.randrange(2000))).isoformat(),
        "datetime": lambda: (datetime(2026, 1, 1, 8) + timedelta(seconds=rng.randrange(10 ** 7))).isoformat(sep=" "),
        "decimal": lambda: f"{rng.randrange(10 ** 6)}.{rng.randrange(100):02d}",
        "integer": lambda: str(rng.randrange(1, 300_000)),
        "id_number": lambda: "",       # filled with the birthday and gender it must agree with
    }.get(kind, lambda: rng.choice(["张伟", "王芳, 李娜", '"恒达"汽车', "刘洋 先生", "A-01"]) + str(n))()


def key_values(feed: FeedDef, k: int, rng: random.Random) -> dict:
    """The ``k``-th key of the pool (same k, same key)."""
    r = random.Random(f"{feed.name}-key-{k}")
    out = {}
    for c in feed.key:
        kind = feed.columns[c]["kind"]
        out[c] = {"vin": lambda: vin(r), "integer": lambda: str(k + 1),
                  "date": lambda: (date(2025, 1, 1) + timedelta(days=k)).isoformat()}.get(
            kind, lambda: f"{c[:2].upper()}{k:06d}")()
    if len(feed.key) > 1:          # composite keys repeat their first part with another second part
        out[feed.key[0]] = key_values_first(feed, k // 2)
    return out


def key_values_first(feed: FeedDef, k: int) -> str:
    c = feed.key[0]
    return vin(random.Random(f"{feed.name}-first-{k}")) if feed.columns[c]["kind"] == "vin" else f"{c[:2].upper()}{k:06d}"


WRONG = {"vin": lambda v: v[:8] + ("0" if v[8] != "0" else "1") + v[9:], "integer": lambda v: v + "x",
         "date": lambda v: "2026-02-30", "text": lambda v: "K" * 65}


def rows_for(feed: FeedDef, keys: list, seed: str) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    optional_bad = False
    for n, k in enumerate(keys):
        row = {c: cell(feed, c, m, rng, n) for c, m in feed.columns.items()}
        if feed.name == "customers":
            birth = date(1970, 1, 1) + timedelta(days=rng.randrange(15000))
            row.update(customer_type="PERSON", id_type="RESIDENT_ID", birthday=birth.isoformat(),
                       id_number=resident_id(rng, birth, row["gender"] == "M"))
        if feed.name == "claim_results" and n % 3 == 0:
            row["status"] = "拒赔"            # a mapped word: stored as REJECTED
        row.update(key_values(feed, k if isinstance(k, int) else 100 + n, rng))
        if k == "blank":
            row[feed.key[0]] = ""
        elif k == "wrong":
            c = feed.key[-1]
            row[c] = WRONG.get(feed.columns[c]["kind"], WRONG["text"])(row[c])
        elif not optional_bad and n >= 2:
            bad = next((c for c, m in feed.columns.items() if not m["required"]
                        and m["kind"] in ("date", "integer", "decimal", "mobile")), None)
            if bad:
                row[bad] = {"date": "2026-13-01", "integer": "12x", "decimal": "1.2.3", "mobile": "1381234"}[
                    feed.columns[bad]["kind"]]
                optional_bad = True
        rows.append(row)
    return rows


def write_csv(path: Path, feed: FeedDef, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(list(feed.columns))
        w.writerows([[r[c] for c in feed.columns] for r in rows])
    return path


# ------------------------------------------------------------------ the oracle: the CSV, read back alone

BOOLS = {"Y": True, "N": False}


def convert(kind: str, text: str, meta: dict):
    """A canonical cell as the store's Python value, or None when blank or not of the column's form."""
    if text == "":
        return None
    try:
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "datetime":
            return datetime.fromisoformat(text)
        if kind == "decimal":
            whole, _, frac = text.partition(".")
            if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
                return None
            return Decimal(text)
        if kind == "integer":
            return int(text) if text.lstrip("-").isdigit() else None
        if kind == "mobile":
            return text if len(text) == 11 else None
        if kind == "bool":
            return BOOLS[text]
    except ValueError:
        return None
    mapping = meta.get("mapping") or {}
    if meta["values"] and text not in meta["values"]:
        return mapping.get(text)
    return text


def expected(feed: FeedDef, path: Path) -> tuple[int, dict]:
    """(data rows, {key: stored values}) from the CSV: a row with a missing or malformed key is out,
    the last row of each key wins; source_row is the line number (header = 1)."""
    with open(path, newline="", encoding="utf-8") as f:
        data = list(csv.DictReader(f))
    out = {}
    for line, r in enumerate(data, start=2):
        vals = {c: convert(m["kind"], r[c], m) for c, m in feed.columns.items()}
        key = tuple(vals[c] for c in feed.key)
        if any(v is None for v in key) or any(len(r[c]) > 64 for c in feed.key if m_text(feed, c)):
            continue
        if any(feed.columns[c]["kind"] == "vin" and not vin_ok(r[c]) for c in feed.key):
            continue
        out[key] = dict(vals, source_row=line)
    return len(data), out


def m_text(feed: FeedDef, c: str) -> bool:
    return feed.columns[c]["kind"] == "text"


def vin_ok(v: str) -> bool:
    total = sum(VIN_VALUES.get(c, 99) * w for c, w in zip(v, VIN_WEIGHTS))
    return len(v) == 17 and "0123456789X"[total % 11] == v[8]


def stored(engine, feed: FeedDef) -> dict:
    t = FEED_TABLES[feed.name]
    with engine.connect() as c:
        rows = c.execute(sa.select(t).where(t.c.dealer_code == DEALER)).mappings().all()
    return {tuple(r[k] for k in feed.key): {**{c: r[c] for c in feed.columns}, "source_row": r["source_row"],
                                             "load_id": r["load_id"]} for r in rows}


def check_load(engine, feed: FeedDef, path: Path, res, want: dict, n_rows: int) -> None:
    assert res.status == "loaded", res.message
    assert res.rows_read == n_rows
    assert res.rows_quarantined == 2
    assert res.rows_read == res.rows_loaded + res.rows_quarantined
    with engine.connect() as c:
        row = c.execute(sa.select(ledger).where(ledger.c.id == res.load_id)).mappings().one()
        q = c.execute(sa.select(sa.func.count()).select_from(quarantine)
                      .where(quarantine.c.load_id == res.load_id)).scalar_one()
    assert (row["status"], row["rows_read"], row["rows_loaded"], row["rows_quarantined"]) == \
        ("LOADED", n_rows, n_rows - 2, 2)
    assert q == 2
    # superseded rows: the valid rows whose key comes again later in the file
    assert res.rows_superseded == res.rows_loaded - len(want)


def strip_load(rows: dict) -> dict:
    return {k: {c: v for c, v in r.items() if c != "load_id"} for k, r in rows.items()}


FEED_NAMES = list(FEEDS)


class Spy:
    """Records the keys of every chunk the loader writes and the stages it creates."""

    def __init__(self, monkeypatch):
        self.chunks: list[list[tuple]] = []
        self.stages = 0
        write, create = repo.write_chunk, repo.create_stage

        def write_chunk(conn, feed, frame, *a, **k):
            self.chunks.append([tuple(r) for r in frame.select(list(feed.key)).iter_rows()])
            return write(conn, feed, frame, *a, **k)

        def create_stage(*a, **k):
            self.stages += 1
            return create(*a, **k)
        monkeypatch.setattr(repo, "write_chunk", write_chunk)
        monkeypatch.setattr(repo, "create_stage", create_stage)

    def repeated_inside(self) -> bool:
        return any(len(set(c)) < len(c) for c in self.chunks)

    def repeated_across(self) -> bool:
        seen: set = set()
        for c in self.chunks:
            if seen & set(c):
                return True
            seen |= set(c)
        return False


@pytest.fixture
def spy(monkeypatch):
    return Spy(monkeypatch)


_SIZES: dict[int, list[int]] = {}


def chunk_sizes(tmp_path: Path, feed: FeedDef, rows: int) -> list[int]:
    """The sizes of the chunks the loader cuts a ``rows``-row file into (they depend on the row count,
    not on the values): measured once on a file of distinct valid keys, loaded into a scratch store."""
    if rows not in _SIZES:
        sizes = []
        write = repo.write_chunk

        def count(conn, fd, frame, *a, **k):
            sizes.append(frame.height)
            return write(conn, fd, frame, *a, **k)
        path = write_csv(tmp_path / "sizes" / f"{DEALER}_{feed.token}_20261103.csv", feed,
                         rows_for(feed, list(range(rows)), "sizes"))
        scratch = make_engine(f"sqlite:///{tmp_path / 'sizes' / 'scratch.db'}")
        upgrade(scratch)
        repo.write_chunk = count
        try:
            ingest_file(scratch, path, chunk_rows=CHUNK)
        finally:
            repo.write_chunk = write
            scratch.dispose()
        assert sum(sizes) == rows
        _SIZES[rows] = sizes
    return _SIZES[rows]


def in_chunk_layout(sizes: list[int]) -> list:
    """Keys repeated inside chunks, never across them; the two bad rows in the first chunks of 3 or more."""
    keys, k, bad = [], 0, ["blank", "wrong"]
    for s in sizes:
        chunk = [bad.pop(0)] if s >= 3 and bad else []
        first = k
        while len(chunk) < s:
            chunk.append(first if len(chunk) == s - 1 and s >= 2 else k)
            k += 1
        keys += chunk
    assert not bad, sizes
    return keys


@pytest.mark.parametrize("feed_name", FEED_NAMES)
def test_copy_path(engine, tmp_path, feed_name, monkeypatch):
    feed = FEEDS[feed_name]
    layout = in_chunk_layout(chunk_sizes(tmp_path, feed, ROWS))
    path = write_csv(tmp_path / f"{DEALER}_{feed.token}_20261103.csv", feed, rows_for(feed, layout, "copy"))
    n, want = expected(feed, path)
    spy = Spy(monkeypatch)
    res = ingest_file(engine, path, chunk_rows=CHUNK)
    check_load(engine, feed, path, res, want, n)
    assert spy.repeated_inside() and not spy.repeated_across()
    assert spy.stages == 0                    # keys repeat inside chunks only: COPY, no stage
    assert strip_load(stored(engine, feed)) == want


@pytest.mark.parametrize("feed_name", FEED_NAMES)
def test_stage_and_upsert_path(engine, tmp_path, feed_name, spy):
    feed = FEEDS[feed_name]
    path = write_csv(tmp_path / f"{DEALER}_{feed.token}_20261103.csv", feed, rows_for(feed, ACROSS, "upsert"))
    n, want = expected(feed, path)
    res = ingest_file(engine, path, chunk_rows=CHUNK)
    check_load(engine, feed, path, res, want, n)
    assert spy.repeated_inside() and spy.repeated_across()
    assert spy.stages == 1                    # a key came again in a later chunk: the keyed upsert
    assert strip_load(stored(engine, feed)) == want


@pytest.mark.parametrize("feed_name", FEED_NAMES)
def test_same_day_replacement(engine, tmp_path, feed_name, spy):
    """Day D-1 (keys disjoint from day D's), then D, then a corrected D: the store holds D-1's rows and
    the corrected D's, the first D load is REPLACED."""
    feed = FEEDS[feed_name]
    other = [k + 50 if isinstance(k, int) else k for k in ACROSS]
    before = write_csv(tmp_path / "a" / f"{DEALER}_{feed.token}_20261102.csv", feed, rows_for(feed, other, "d-1"))
    first = write_csv(tmp_path / "b" / f"{DEALER}_{feed.token}_20261103.csv", feed, rows_for(feed, ACROSS, "d"))
    fixed = write_csv(tmp_path / "c" / f"{DEALER}_{feed.token}_20261103.csv", feed,
                      rows_for(feed, list(reversed(ACROSS)), "d-corrected"))
    _, want_before = expected(feed, before)
    n, want = expected(feed, fixed)
    assert not set(want_before) & set(want)
    r0 = ingest_file(engine, before, chunk_rows=CHUNK)
    r1 = ingest_file(engine, first, chunk_rows=CHUNK)
    r2 = ingest_file(engine, fixed, chunk_rows=CHUNK)
    check_load(engine, feed, fixed, r2, want, n)
    assert r2.replaced_loads == [r1.load_id]
    with engine.connect() as c:
        status = dict(c.execute(sa.select(ledger.c.id, ledger.c.status)).all())
    assert status == {r0.load_id: "LOADED", r1.load_id: "REPLACED", r2.load_id: "LOADED"}
    got = stored(engine, feed)
    assert {k for k, r in got.items() if r["load_id"] == r0.load_id} == set(want_before)
    assert strip_load(got) == {**want_before, **want}
    assert spy.stages == 3                    # each day repeats keys across its chunks
