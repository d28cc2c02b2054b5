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


def _needed(url: str) -> tuple[str, int] | None:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if host not in ("127.0.0.1", "localhost") or _listening(host, port):
        return None
    return host, port


@contextlib.contextmanager
def _sandbox_if_needed(url: str, make_app):
    """Yields (the URL in use, whether a sandbox was started for it)."""
    where = _needed(url)
    if where is None:
        yield url, False
        return
    with serving(make_app(), port=where[1], host=where[0]):
        yield url, True


def sandbox_crm_if_needed(settings):
    def make():
        from .crm import create_app
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return create_app(settings.data_dir / "sandbox-crm.db", token=settings.crm_token.get_secret_value())
    return _sandbox_if_needed(settings.crm_url, make)


def sandbox_portal_if_needed(settings):
    def make():
        from .portal import Clock, create_app
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # the sample's repair orders are weeks old: the sandbox accepts claims for a year
        return create_app(settings.data_dir / "sandbox-portal.db",
                          clients={settings.oem_client_id: settings.oem_client_secret.get_secret_value()},
                          clock=Clock(claim_window_days=400))
    return _sandbox_if_needed(settings.oem_url, make)
