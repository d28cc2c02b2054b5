"""The load's pipeline pieces (``dealersync/ingest.py``): the reader thread ahead of validation and the
writer thread behind it. Plain threads, no database."""
from __future__ import annotations

import threading
import time

import pytest

from dealersync.errors import BadSourceData
from dealersync.services.ingest import ChunkWriter, Prefetch


def test_prefetch_gives_every_item_in_order_and_reads_ahead():
    produced = []

    def items():
        for i in range(5):
            produced.append(i)
            yield i

    got = []
    with Prefetch(items()) as it:
        for x in it:
            time.sleep(0.05)                 # validating this one while the next is read
            got.append((x, len(produced)))
    assert [x for x, _ in got] == [0, 1, 2, 3, 4]
    assert all(seen >= x + 2 for x, seen in got[:3])   # the producer was ahead (queue of one + the one in hand)


def test_prefetch_raises_the_producers_error_where_it_happened():
    def items():
        yield 1
        yield 2
        raise BadSourceData("structure broken", file="f.csv", row=7, reason="FIELD_COUNT")

    got = []
    with pytest.raises(BadSourceData) as e, Prefetch(items()) as it:
        for x in it:
            got.append(x)
    assert got == [1, 2] and e.value.row == 7


def test_leaving_early_stops_the_producer():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    with pytest.raises(RuntimeError), Prefetch(items()) as it:
        for x in it:
            if x == 2:
                raise RuntimeError("validation failed")
    assert len(produced) <= 5
    assert not [t for t in threading.enumerate() if t.name == "dealersync-reader"]


def test_chunk_writer_writes_in_order_one_behind_and_a_failure_surfaces_at_the_next_hand_over():
    done = []

    def write(chunk):
        time.sleep(0.02)
        if chunk == "bad":
            raise ValueError("COPY refused")
        done.append(chunk)
        return len(chunk)

    with ChunkWriter(write) as w:
        for c in ["a", "bb", "ccc"]:
            w.submit(c)
    assert done == ["a", "bb", "ccc"] and w.total == 6
    done.clear()
    with pytest.raises(ValueError), ChunkWriter(write) as w:
        w.submit("bad")
        w.submit("later")      # waits for "bad", which failed: "later" is never written
    assert done == []
