"""Child processes that end with their parent (issue 15, "Contain the damage").

``dealersync run`` and ``demo`` start a Prefect API server as a child process. Left to itself it would
outlive a parent that is stopped: SIGTERM does not run Python's exit handlers by default, and
SIGKILL runs nothing. Two guards, both Linux facilities:

* ``die_with_parent`` (a ``preexec_fn``): ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the child, so the
  kernel sends it SIGTERM when the thread that forked it dies, however it dies (``kill -9``
  included); it then checks the parent did not die before the call took effect (prctl(2)).
* ``exit_on_sigterm``: SIGTERM (and SIGHUP) in the parent raise ``SystemExit``, so ``finally``
  blocks and ``atexit`` handlers run and stop the children in order.

Elsewhere than Linux only the second guard applies.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None):
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when its parent dies."""
    expected = parent_pid or os.getpid()

    def hook() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != expected:   # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


def spawn(cmd: list[str], **kw) -> subprocess.Popen:
    """``subprocess.Popen`` of a child that ends with this process (see the module docstring)."""
    return subprocess.Popen(cmd, preexec_fn=die_with_parent(os.getpid()), **kw)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    return proc.returncode


def _raise_exit(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """SIGTERM and SIGHUP end this process through ``SystemExit`` (exit code 128 + signal), so its
    ``finally`` blocks and exit handlers stop its children. Main thread only."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_exit)
