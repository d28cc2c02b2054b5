"""A real ``prefect server start`` (and workers) in subprocesses, for the deployment and topology tests."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from dealersync.sandbox.runner import free_port

BIN = Path(sys.executable).parent


def prefect_env(home: Path, api_url: str, db_url: str | None = None) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    if db_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = db_url
    return env


@contextlib.contextmanager
def prefect_server(home: Path, db_url: str | None = None):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = prefect_env(home, api, db_url)
    log = open(home.parent / "server.log", "wb")
    p = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(api + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start: " + (home.parent / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield api, env
    finally:
        stop(p, log)


def stop(p: subprocess.Popen, log) -> None:
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
    log.close()


def prefect(env: dict, *args, cwd=None, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN / "prefect"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r
