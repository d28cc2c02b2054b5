"""Store-level locks for jobs that must not run twice at once (``dealersync resolve``: two runs at once
would each create masters for the same new records).

``job_lock(engine, name)`` is held around the job's whole transaction:

* PostgreSQL: a session advisory lock (``store.ledger._lock_id``) on a connection of its own; it goes with
  a killed process's connection. The ``store_lock`` row written next to it only names the holder.
* SQLite: the committed ``store_lock`` row is the lock (host:pid and since). It is read in autocommit
  (WAL: not blocked by the job's write transaction) and claimed in a ``BEGIN IMMEDIATE`` of its own; a
  holder whose pid is gone on this host, or from another host older than ``stale_seconds``, is taken
  over (``store.ledger.holder_alive``, as for a load's claim).

A second process says once who holds the lock and waits, polling, up to ``wait_seconds``; then it raises
``StoreBusy`` naming the holder. The row is removed when the block ends (only by its holder).
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import logging
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from sqlalchemy import Engine, delete, insert, select, text

from dealersync.errors import StoreBusy

from .ledger import _lock_id, holder, holder_alive
from .tables import store_lock

log = logging.getLogger(__name__)
RESOLVE = "resolve"


def _now() -> datetime:
    return dealer_clock.now()


def _who(row) -> str:
    return f"{row[0]} since {row[1]:%Y-%m-%d %H:%M:%S}" if row else "another process"


def _busy(name: str, row, waited: float) -> StoreBusy:
    return StoreBusy(f"another dealersync {name} is running on this store ({_who(row)}); waited {waited:.0f} s "
                     f"(lock_wait_seconds): try again when it has finished")


@contextmanager
def job_lock(engine: Engine, name: str, *, wait_seconds: float = 600.0, poll: float = 0.5,
             stale_seconds: float = 3600.0) -> Iterator[None]:
    """Hold the store lock ``name`` for the ``with`` block (see the module text)."""
    me = holder()
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, name, me, wait_seconds, poll):
            yield
        return
    _sqlite_take(engine, name, me, wait_seconds, poll, stale_seconds)
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(delete(store_lock).where(store_lock.c.name == name, store_lock.c.holder == me))


class _Waiting:
    """The wait for a lock another holds (PostgreSQL and SQLite alike): one warning naming the holder,
    a sleep of ``poll`` between tries, ``_busy`` once ``wait_seconds`` have passed."""

    def __init__(self, name: str, wait_seconds: float, poll: float):
        self.name, self.wait_seconds, self.poll = name, wait_seconds, poll
        self.t0, self.said = time.monotonic(), False

    def wait(self, row) -> None:
        waited = time.monotonic() - self.t0
        if waited >= self.wait_seconds:
            raise _busy(self.name, row, waited)
        if not self.said:
            log.warning("another dealersync %s is running on this store (%s): waiting up to %.0f s",
                        self.name, _who(row), self.wait_seconds)
            self.said = True
        time.sleep(self.poll)


@contextmanager
def _pg_lock(engine: Engine, name: str, me: str, wait_seconds: float, poll: float) -> Iterator[None]:
    key = _lock_id(f"job:{name}")
    with engine.connect() as conn:
        waiting = _Waiting(name, wait_seconds, poll)
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            row = conn.execute(select(store_lock.c.holder, store_lock.c.since).where(store_lock.c.name == name)).first()
            conn.rollback()
            waiting.wait(row)
        conn.commit()
        try:
            with engine.begin() as w:   # who holds it, for the message of the next one
                w.execute(delete(store_lock).where(store_lock.c.name == name))
                w.execute(insert(store_lock).values(name=name, holder=me, since=_now()))
            yield
        finally:
            try:
                with engine.begin() as w:
                    w.execute(delete(store_lock).where(store_lock.c.name == name, store_lock.c.holder == me))
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def _sqlite_take(engine: Engine, name: str, me: str, wait_seconds: float, poll: float, stale_seconds: float) -> None:
    waiting = _Waiting(name, wait_seconds, poll)
    raw = engine.raw_connection()   # autocommit reads: the holder's write transaction does not block them
    try:
        dbapi = raw.driver_connection
        while True:
            row = dbapi.execute("SELECT holder, since FROM store_lock WHERE name = ?", (name,)).fetchone()
            row = (row[0], datetime.fromisoformat(row[1])) if row else None
            if row is None or not holder_alive(row[0], row[1], stale_seconds):
                dbapi.execute("BEGIN IMMEDIATE")
                try:
                    now = dbapi.execute("SELECT holder FROM store_lock WHERE name = ?", (name,)).fetchone()
                    if (now[0] if now else None) == (row[0] if row else None):   # still free, or still the dead one
                        dbapi.execute("DELETE FROM store_lock WHERE name = ?", (name,))
                        dbapi.execute("INSERT INTO store_lock (name, holder, since) VALUES (?, ?, ?)",
                                      (name, me, _now().isoformat(sep=" ")))
                        dbapi.execute("COMMIT")
                        if row is not None:
                            log.warning("dealersync %s: took over the lock of %s (no longer running)", name, _who(row))
                        return
                    dbapi.execute("COMMIT")
                except BaseException:
                    dbapi.execute("ROLLBACK")
                    raise
                continue
            waiting.wait(row)
    finally:
        raw.close()
