"""Process-wide settings for long loads, applied by a process's first load (``ingest_file``), so the
CLI, the Prefect flows and the benchmark all run with them.

* Arrow allocates through jemalloc where the build has it. A load allocates and frees buffers of a few
  megabytes per chunk (blocks read, columns, COPY slices); Arrow's default allocator hands them back to
  the system at once, so every chunk's buffers were fresh pages the kernel had to zero (about a second
  of system time per million rows). jemalloc keeps freed pages a while for the next chunk, and its peak
  memory stayed flat from 1 to 4 million rows (glibc's allocator, tried too, grew with the file).
* The objects alive by then (the modules of polars, pandas, pandera, SQLAlchemy...: several hundred
  thousand) are frozen out of the cyclic garbage collector's scans: its full collections, set off by a
  load's many small objects, no longer walk them all (about 0.4 s a million rows).
"""
from __future__ import annotations

import atexit
import gc
import logging

log = logging.getLogger(__name__)

_tuned = False


def tune_memory() -> bool:
    """Route Arrow's allocations through jemalloc and freeze the objects alive now out of the garbage
    collector's scans. Once per process; True when Arrow has jemalloc, False when it keeps its default."""
    global _tuned
    if _tuned:
        return pool_is_jemalloc()
    import pyarrow as pa
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError) as e:   # a build without jemalloc
        log.debug("Arrow keeps its default allocator: %s", e)
    gc.freeze()
    atexit.register(gc.unfreeze)   # let the interpreter's last collection free them (duckdb's bindings check)
    _tuned = True
    return pool_is_jemalloc()


def pool_is_jemalloc() -> bool:
    import pyarrow as pa
    return pa.default_memory_pool().backend_name == "jemalloc"
