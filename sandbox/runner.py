"""Start a sandbox in-process when the configured URL points at this machine and nothing answers
there: ``dealersync run`` on embedded defaults needs no other process."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlparse


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
    import uvicorn

    from .crm import create_app
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings.data_dir / "sandbox-crm.db", token=settings.crm_token.get_secret_value())
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    t = threading.Thread(target=server.run, name="sandbox-crm", daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield settings.crm_url, True
    finally:
        server.should_exit = True
        t.join(timeout=10)
