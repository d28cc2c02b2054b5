"""Process-wide allocator settings (``dealersync/runtime.py``)."""
from __future__ import annotations

import gc
import platform

import pyarrow as pa
import pytest

from dealersync import runtime


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_memory_takes_on_glibc_and_routes_arrow_through_it(monkeypatch):
    monkeypatch.setattr(runtime, "_tuned", False)
    before = pa.default_memory_pool()
    try:
        assert runtime.tune_memory() is True
        assert pa.default_memory_pool().backend_name == "system"
        assert gc.get_freeze_count() > 10_000            # the modules' objects, out of the collector's way
        assert runtime.tune_memory() is True            # once per process: the second call changes nothing
    finally:
        pa.set_memory_pool(before)


def test_without_mallopt_the_defaults_stay(monkeypatch):
    monkeypatch.setattr(runtime, "_tuned", False)

    class NoMallopt:
        def __init__(self, *a):
            raise OSError("no libc here")
    monkeypatch.setattr(runtime.ctypes, "CDLL", NoMallopt)
    before = pa.default_memory_pool()
    assert runtime.tune_memory() is False
    assert pa.default_memory_pool().backend_name == before.backend_name
