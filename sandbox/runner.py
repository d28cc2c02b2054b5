"""Start a sandbox in-process when the configured URL points at this machine and nothing answers
there: ``dealersync run`` on embedded defaults needs no other process."""
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


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@contextlib.contextmanager
def sandbox_crm_if_needed(settings):
    """Yields the URL in use; runs the sandbox CRM in a thread for the duration when needed."""
    u = urlparse(settings.crm_url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if host not in ("127.0.0.1", "localhost") or _listening(host, port):
        yield settings.crm_url, False
        return
    from .crm import create_app
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings.data_dir / "sandbox-crm.db", token=settings.crm_token.get_secret_value())
    with serving(app, port=port, host=host):
        yield settings.crm_url, True
