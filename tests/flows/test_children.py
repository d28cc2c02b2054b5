"""The reproduction of issue 15: after ``kill -9`` of the process that started it, the Prefect API
server a command runs against (``flows.common.prefect_api``) must not keep running. Two real
processes; the server takes 15-25 s to start."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlparse

import pytest

PARENT = textwrap.dedent("""
    import os, time
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from dealersync.flows.common import prefect_api
    with prefect_api() as url:
        print(url, flush=True)
        time.sleep(300)
""")


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_prefect_server_ends_with_its_parent(tmp_path, sig):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = parent.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        servers = _children(parent.pid)
        assert servers and all(_alive(p) for p in servers)
        os.kill(parent.pid, sig)
        parent.wait(30)
        end = time.monotonic() + 20
        while any(_alive(p) for p in servers) and time.monotonic() < end:
            time.sleep(0.1)
        assert not any(_alive(p) for p in servers), "the Prefect server outlived its parent"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", urlparse(url).port)) != 0
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in _children(parent.pid) if parent.poll() is None else []:
            os.kill(p, signal.SIGKILL)
