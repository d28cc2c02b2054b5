"""Children end with their parent (issue 15: after ``kill -9`` or SIGTERM, ``dealersync run`` left its
Prefect server running). Two real processes: a parent that spawns a long-lived child the way the
CLI spawns the Prefect server, then is killed; the child must be gone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent("""
    import subprocess, sys, time
    from dealersync.processes import exit_on_sigterm, spawn, stop
    exit_on_sigterm()
    child = spawn([sys.executable, "-c", "import time; time.sleep(120)"])
    print(child.pid, flush=True)
    try:
        time.sleep(120)
    finally:
        if "--clean" in sys.argv:
            stop(child)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"     # a zombie waiting for its reaper is gone
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _start(*args) -> tuple[subprocess.Popen, int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *args], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    return parent, child


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_child_dies_when_parent_is_killed_9():
    parent, child = _start()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    try:
        assert _gone_within(child, 10), "the child outlived a parent killed with SIGKILL"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("args", [(), ("--clean",)])
def test_child_dies_when_parent_gets_sigterm(args):
    """Without cleanup code the kernel's parent-death signal ends the child; with it (``--clean``: the
    ``finally`` that SIGTERM now reaches) the parent stops its child itself, and exits 128 + 15."""
    parent, child = _start(*args)
    os.kill(parent.pid, signal.SIGTERM)
    assert parent.wait(15) == 128 + signal.SIGTERM
    try:
        assert _gone_within(child, 10), "the child outlived a parent stopped with SIGTERM"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
