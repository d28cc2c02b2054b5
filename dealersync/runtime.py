"""Process-wide settings for long loads, applied by a process's first load (``ingest_file``), so the
CLI, the Prefect flows and the benchmark all run with them.

A load allocates and frees buffers of a few megabytes per chunk (blocks read, columns, COPY slices).
With the C library's defaults, every buffer above its mmap threshold is a fresh mapping whose pages the
kernel zeroes on first touch (about a second of system time per million rows); freed memory is
handed back at once. Keeping such buffers in the heap, and Arrow's allocations in the same allocator,
lets the next chunk reuse them. And the objects alive by then (the modules of polars, pandas, pandera,
SQLAlchemy...: several hundred thousand) are moved out of the cyclic garbage collector's way: its full
collections, set off by a load's many small objects, no longer walk them all (about 0.4 s a million
rows)."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned = False


def tune_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Raise glibc's mmap and trim thresholds and route Arrow's allocations through it; freeze the
    objects alive now out of the garbage collector's scans. Once per process; True when the C library
    took the settings (glibc), False elsewhere (its defaults kept)."""
    global _tuned
    if _tuned:
        return True
    import pyarrow as pa
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        ok = False
    if ok:
        pa.set_memory_pool(pa.system_memory_pool())
    else:
        log.debug("mallopt not available: memory allocator defaults kept")
    gc.freeze()
    _tuned = True
    return ok
