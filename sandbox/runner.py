"""Serve a sandbox (CRM, OEM portal) in-process on a loopback port, for ``dealersync demo`` and the
tests. Nothing starts a sandbox in place of a configured service that does not answer: ``dealersync
run`` refuses instead (issue 15)."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, port: int | None = None, host: str = "127.0.0.1"):
    """Run an ASGI app on a loopback port (a free one by default) in a thread; yields its base URL."""
    import uvicorn
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError(f"sandbox server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)
