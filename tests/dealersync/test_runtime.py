"""Process-wide settings for long loads (``dealersync/runtime.py``)."""
from __future__ import annotations

import gc

import pyarrow as pa

from dealersync import runtime


def test_tune_memory_routes_arrow_through_jemalloc_and_freezes_the_modules(monkeypatch):
    monkeypatch.setattr(runtime, "_tuned", False)
    before = pa.default_memory_pool()
    try:
        assert runtime.tune_memory() is True                   # this machine's pyarrow has jemalloc
        assert pa.default_memory_pool().backend_name == "jemalloc"
        assert gc.get_freeze_count() > 10_000                  # the modules' objects, out of the collector's way
        pa.set_memory_pool(pa.system_memory_pool())
        assert runtime.tune_memory() is False                  # once per process: a second call changes nothing
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


def test_a_build_without_jemalloc_keeps_its_allocator(monkeypatch):
    monkeypatch.setattr(runtime, "_tuned", False)

    def missing():
        raise NotImplementedError("jemalloc support is not built")
    monkeypatch.setattr(pa, "jemalloc_memory_pool", missing)
    before = pa.default_memory_pool()
    assert runtime.tune_memory() is (before.backend_name == "jemalloc")
    assert pa.default_memory_pool().backend_name == before.backend_name
