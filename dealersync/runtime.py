"""Process-wide settings for long loads, applied by a process's first load (``ingest_file``), so the
CLI, the Prefect flows and the benchmark all run with them.

A load allocates and frees buffers of a few megabytes per chunk (blocks read, columns, COPY slices).
With the C library's defaults, every buffer above its mmap threshold is a fresh mapping whose pages the
kernel zeroes on first touch (about a second of system time per million rows); freed memory is
handed back at once. Keeping such buffers in the heap, and Arrow's allocations in the same allocator,
lets the next chunk reuse them."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned = False


def tune_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Raise glibc's mmap and trim thresholds and route Arrow's allocations through it. Once per
    process; True when the C library took the settings (glibc), False elsewhere (defaults kept)."""
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
    _tuned = True
    return ok
