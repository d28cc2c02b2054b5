"""The load's pipeline pieces: the reader thread ahead of validation (:class:`Prefetch`), the writer
thread behind it (:class:`ChunkWriter`) and the seconds spent per phase (:class:`Phases`). Plain
threads, no database."""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager


class Prefetch:
    """Iterate ``iterable`` on a thread of its own, ``depth`` items ahead of the caller: the file's next
    chunk is read (parsed, decoded) while this one is validated. Items come in order; an exception of
    the producer is raised in the caller at the item where it happened; leaving the ``with`` block early
    stops the producer after the item it is on."""

    def __init__(self, iterable, depth: int = 1):
        self._it, self._queue, self._stop = iter(iterable), queue.Queue(depth), threading.Event()
        self._thread = threading.Thread(target=self._produce, name="dealersync-reader", daemon=True)

    def _produce(self) -> None:
        try:
            for item in self._it:
                while not self._stop.is_set():
                    try:
                        self._queue.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put((False, _END))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._queue.put((False, e))

    def __enter__(self):
        self._thread.start()
        return self

    def __iter__(self):
        while True:
            ok, item = self._queue.get()
            if ok:
                yield item
            elif item is _END:
                return
            else:
                raise item

    def __exit__(self, *exc):
        self._stop.set()
        while self._thread.is_alive():   # free a producer blocked on a full queue
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        return False


class ChunkWriter:
    """Runs ``write(chunk)`` for each submitted chunk, in order, at most one chunk behind the caller.

    Threaded, the write of chunk n (the database connection is used by this thread alone meanwhile)
    overlaps with the caller reading and validating chunk n + 1; the caller waits before handing over
    the next chunk and on leaving, so a failed write surfaces at once and nothing is left running.
    ``total``: the sum of what the writes returned."""

    def __init__(self, write, threaded: bool = True):
        self.write, self.total = write, 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dealersync-writer") if threaded else None
        self._pending: Future | None = None

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.total += pending.result()

    def submit(self, chunk) -> None:
        self._wait()
        if self._pool is None:
            self.total += self.write(chunk)
        else:
            self._pending = self._pool.submit(self.write, chunk)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:
                wait([self._pending])   # let the write end before the transaction rolls back
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        return False


class Phases:
    """Seconds spent per phase of a load: ``with phases("validate"): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed(self, iterable, name: str):
        """Iterate, counting the time spent producing each item as ``name``."""
        it = iter(iterable)
        while True:
            with self(name):
                item = next(it, _END)
            if item is _END:
                return
            yield item

    def summary(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


_END = object()
