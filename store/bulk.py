"""Bulk writes: a chunk of canonical rows (an Arrow table of strings) into a table in one go.

PostgreSQL: ``COPY ... FROM STDIN``. The strings are first cast to the table's column types in C++
(Arrow) and sent in COPY's binary format, encoded by ``pgpq`` slice by slice and handed to psycopg's
sending thread (the server works on one slice while the next is encoded), so the server does not
parse dates, timestamps and numerics row by row; a chunk Arrow cannot cast (a value PostgreSQL may
still take or reject with its own message) goes as CSV text instead, which the server parses itself.
SQLite: one ``executemany`` with the casts the keyed upsert uses.

Both paths store the same values: ``tests/store/test_bulk.py`` loads the same chunks both ways.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import (BigInteger, Boolean, Connection, Date, DateTime, Integer, Numeric, String, Table,
                        Text)
from sqlalchemy.dialects import sqlite


def arrow_type(t) -> pa.DataType:
    """The Arrow type whose binary COPY encoding is ``t``'s (SQLAlchemy column type)."""
    if isinstance(t, (String, Text)):
        return pa.large_string()
    if isinstance(t, DateTime):
        return pa.timestamp("us")
    if isinstance(t, Date):
        return pa.date32()
    if isinstance(t, BigInteger):
        return pa.int64()
    if isinstance(t, Integer):
        return pa.int32()
    if isinstance(t, Numeric) and t.precision and t.scale is not None:
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, Boolean):
        return pa.bool_()
    raise TypeError(f"no binary COPY form for {t!r}")


def _constant(v, n: int, typ: pa.DataType) -> pa.Array:
    if isinstance(v, datetime) and pa.types.is_timestamp(typ):
        v = v.replace(tzinfo=None)
    return pa.repeat(pa.scalar(v, typ), n)


def typed(table: Table, data: pa.Table, constants: dict) -> pa.RecordBatch:
    """``data``'s columns cast to ``table``'s types, plus the ``constants`` repeated; raises
    ``pa.ArrowInvalid`` when a value does not cast (out of range, wrong form)."""
    cols, names = [], []
    for name in data.column_names:
        typ = arrow_type(table.c[name].type)
        col = data.column(name).combine_chunks()
        cols.append(col if col.type == typ else col.cast(typ))
        names.append(name)
    for name, v in constants.items():
        typ = arrow_type(table.c[name].type)
        cols.append(_constant(v, data.num_rows, typ) if v is not None else pa.nulls(data.num_rows, typ))
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


SLICE_ROWS = 20_000


def _encode_binary(batch: pa.RecordBatch):
    """COPY's binary format for ``batch``, ``SLICE_ROWS`` rows at a time: the server starts on the first
    slice while the next is encoded. The encoder is made here, so a type it cannot encode raises before
    the COPY starts (and the chunk goes as text)."""
    from pgpq import ArrowToPostgresBinaryEncoder
    enc = ArrowToPostgresBinaryEncoder(batch.schema)

    def parts():
        yield enc.write_header()
        for start in range(0, batch.num_rows, SLICE_ROWS):
            yield enc.write_batch(batch.slice(start, SLICE_ROWS))
        yield enc.finish()
    return parts()


def _encode_csv(data: pa.Table, constants: dict) -> list:
    for name, v in constants.items():
        text = None if v is None else (v.isoformat(sep=" ") if isinstance(v, datetime) else str(v))
        data = data.append_column(name, pa.repeat(pa.scalar(text, pa.large_string()), data.num_rows))
    sink = pa.BufferOutputStream()
    # unquoted empty = NULL, quoted "" = empty string: COPY's CSV rules
    pacsv.write_csv(data, sink, pacsv.WriteOptions(include_header=False))
    return [sink.getvalue()]


@contextmanager
def _copy(conn: Connection, table: Table, names: list[str], options: str = "", queued: bool = False):
    """A PostgreSQL ``COPY table (names) FROM STDIN`` on the connection's driver connection, in its
    transaction. ``queued``: writes return at once and a psycopg thread sends them, so the caller
    prepares the next part while the server takes this one."""
    from psycopg.copy import QueuedLibpqWriter
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN {options}".rstrip(),
                      writer=QueuedLibpqWriter(cur) if queued else None) as cp:
            yield cp


def write_arrow(conn: Connection, table: Table, data: pa.Table, constants: dict | None = None) -> None:
    """Append ``data`` (string columns named as ``table``'s, integers for integer columns; null for
    blank) plus ``constants`` (one value per column, for every row) to ``table``."""
    constants = constants or {}
    if data.num_rows == 0:
        return
    names = list(data.column_names) + list(constants)
    if conn.dialect.name == "postgresql":
        try:
            payload, fmt = _encode_binary(typed(table, data, constants)), "binary"
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            payload, fmt = _encode_csv(data, constants), "csv"
        with _copy(conn, table, names, f"WITH (FORMAT {fmt})", queued=True) as cp:
            for part in payload:
                cp.write(memoryview(part))
        return
    columns = [data.column(c).to_pylist() for c in data.column_names]
    fixed = []
    for name, v in constants.items():  # as SQLAlchemy would store them (dates as ISO text)
        proc = table.c[name].type.bind_processor(conn.dialect)
        fixed.append([proc(v) if proc and v is not None else v] * data.num_rows)
    marks = ", ".join(sqlite_mark(table, c) for c in names)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
                         list(zip(*columns, *fixed)))


def sqlite_mark(table: Table, col: str) -> str:
    t = table.c[col].type
    return "?" if sqlite_iso_text(t) else f"CAST(? AS {t.compile(dialect=sqlite.dialect())})"


def sqlite_iso_text(t) -> bool:
    """SQLite keeps dates and times as the ISO text SQLAlchemy reads back: no cast for those."""
    return isinstance(t, (Date, DateTime))


def write_records(conn: Connection, table: Table, records: list[dict], batch: int = 5000) -> None:
    """Insert ``records`` (dicts with the same keys) into ``table``: one COPY on PostgreSQL, batched
    executemany elsewhere."""
    if not records:
        return
    if conn.dialect.name == "postgresql":
        names = list(records[0])
        with _copy(conn, table, names) as cp:
            for r in records:
                cp.write_row([r[n] for n in names])
        return
    for i in range(0, len(records), batch):
        conn.execute(table.insert(), records[i:i + batch])

