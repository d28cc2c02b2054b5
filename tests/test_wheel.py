"""A built wheel works outside the checkout: one import name, ``prefect.yaml``, the migrations and
the built-in profiles travel as package data, and the console script starts.

The fresh virtual environment borrows the test environment's third-party packages through a path
file (so the test does not download Prefect again) but not its editable install of dealersync: a
path added by a ``.pth`` line is not a site directory, so the editable finder is never loaded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env=None, timeout=300):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_wheel_installs_and_serves_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    shutil.rmtree(ROOT / "build", ignore_errors=True)   # setuptools' in-tree build folder keeps stale modules
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ROOT], cwd=tmp_path)
    wheel, = dist.glob("dealersync-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", wheel], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEALERSYNC_", "PYTHONPATH"))}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DEALERSYNC_DATA_DIR": str(outside / ".data")}
    where = _run([py, "-c", "import dealersync, dealersync.flows.deploy as d; print(dealersync.__file__);"
                  "print(len(d.deployments_from_yaml()))"], cwd=outside, env=env).stdout.split()
    assert Path(where[0]).is_relative_to(env_dir), where      # the wheel's copy, not the checkout
    assert int(where[1]) >= 10                                  # every deployment of prefect.yaml
    for top in ("flows", "store", "schemas", "connectors"):     # nothing else claims a top-level name
        r = subprocess.run([py, "-c", f"import {top}"], cwd=outside, env=env, capture_output=True)
        assert r.returncode != 0, f"the wheel installed a top-level package {top!r}"

    exe = env_dir / "bin" / "dealersync"
    assert "usage: dealersync" in _run([exe, "--help"], cwd=outside, env=env).stdout
    assert "usage: dealersync serve" in _run([exe, "serve", "--help"], cwd=outside, env=env).stdout
    _run([exe, "db", "upgrade"], cwd=outside, env=env)         # the migrations travel with the wheel
    assert (outside / ".data" / "dealersync.db").exists()
