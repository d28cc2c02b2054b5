"""The front door (issue 15, "Never fake success"): ``run`` refuses, with one line naming the setting
and the store unchanged, when a folder is missing or empty, a service does not answer or a
production identifier is unset; it never writes sample data or starts a sandbox. Unknown settings
are errors; ``config show`` and ``check`` say what is in effect and what was checked. Real sandbox
servers on loopback; no Prefect (the refusals come before any flow)."""
from __future__ import annotations

import json
import sys
import socket
from pathlib import Path

import pytest

from dealersync.cli.main import main
from dealersync.config import Settings, get_settings
from dealersync.errors import ConfigurationError
from dealersync.sandbox import crm as sandbox_crm
from dealersync.sandbox import portal as sandbox_portal
from dealersync.sandbox.runner import serving
from dealersync.store.db import make_engine, upgrade


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    import os
    for k in list(os.environ):
        if k.startswith("DEALERSYNC_") and not k.startswith("DEALERSYNC_TEST_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def refused_port():
    """A loopback port that refuses connections (bound, never listening)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def services(tmp_path):
    """The sandbox CRM and portal, as any real service would be: on loopback ports of their own."""
    crm = sandbox_crm.create_app(tmp_path / "crm.db", token="tok-crm-1")
    portal = sandbox_portal.create_app(tmp_path / "portal.db", clients={"client-1": "secret-1"})
    with serving(crm) as c, serving(portal) as p:
        yield {"crm": c + "/crm/v1", "oem": p + "/api/v1"}


def production_env(monkeypatch, tmp_path, crm: str, oem: str, drop: Path | None = None):
    drop = drop or tmp_path / "drop"
    env = {"DEALERSYNC_DATA_DIR": str(tmp_path / "data"), "DEALERSYNC_DROP_DIRS": str(drop),
           "DEALERSYNC_OEM_URL": oem, "DEALERSYNC_OEM_CLIENT_ID": "client-1", "DEALERSYNC_OEM_CLIENT_SECRET": "secret-1",
           "DEALERSYNC_OEM_DEALER_NUMBER": "SZ0417", "DEALERSYNC_CRM_URL": crm, "DEALERSYNC_CRM_TOKEN": "tok-crm-1",
           "DEALERSYNC_PREFLIGHT_TIMEOUT_SECONDS": "2", "DEALERSYNC_DEALER_CODE": "SZ0417"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return drop


def _store_untouched(tmp_path):
    data = tmp_path / "data"
    return not (data / "dealersync.db").exists() and not (data / "drop").exists()


def _errors(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]


def test_no_production_identifier_has_a_default(tmp_path):
    s = Settings()
    for name in ("dealer_code", "oem_url", "oem_client_id", "oem_client_secret", "oem_dealer_number", "crm_url",
                 "crm_token"):
        assert getattr(s, name) is None, name
    with pytest.raises(ConfigurationError, match="oem_dealer_number .DEALERSYNC_OEM_DEALER_NUMBER"):
        s.require("oem_dealer_number")


def test_product_code_has_no_real_looking_dealer_default():
    root = Path(__file__).resolve().parents[2]
    for folder in ("dealersync", "cli", "flows", "services", "connectors", "store", "resolution", "schemas"):
        for p in (root / folder).rglob("*.py"):
            text = p.read_text(encoding="utf-8")
            for line in text.splitlines():
                code = line.split("#")[0]
                if "GZ0012" in code and "dealer: str = \"GZ0012\"" not in code and '"""' not in code \
                        and "``" not in code and not code.strip().startswith(("\"", "'")):
                    pytest.fail(f"{p.relative_to(root)}: {line.strip()}")


def test_run_with_nothing_configured_refuses_and_writes_nothing(tmp_path, capsys):
    assert main(["run"]) == 2
    err = "\n".join(_errors(capsys))
    for name in ("oem_url", "oem_dealer_number", "crm_url", "crm_token", ".data/drop"):
        assert name in err
    assert not (tmp_path / ".data").exists()         # no store, no drop folder, no sample


def test_run_missing_drop_folder_refuses(tmp_path, monkeypatch, capsys, services):
    production_env(monkeypatch, tmp_path, services["crm"], services["oem"], drop=tmp_path / "srv" / "nosuch")
    assert main(["run"]) == 2
    (line,) = _errors(capsys)
    assert "nosuch" in line and "does not exist" in line and "drop_dirs" in line
    assert not (tmp_path / "srv").exists() and _store_untouched(tmp_path)


def test_run_empty_drop_folder_refuses_and_writes_no_sample(tmp_path, monkeypatch, capsys, services):
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    assert main(["run"]) == 2
    (line,) = _errors(capsys)
    assert "is empty" in line and "drop_dirs" in line
    assert list(drop.iterdir()) == [] and _store_untouched(tmp_path)


def test_list_style_drop_dirs_parse_and_never_make_a_bracket_folder(tmp_path, monkeypatch, capsys, services):
    production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    monkeypatch.setenv("DEALERSYNC_DROP_DIRS", json.dumps([str(tmp_path / "nosuch"), str(tmp_path / "b")]))
    assert get_settings().drop_dirs == [tmp_path / "nosuch", tmp_path / "b"]
    assert main(["run"]) == 2
    assert not any("[" in p.name for p in tmp_path.rglob("*"))
    monkeypatch.setenv("DEALERSYNC_DROP_DIRS", '["/srv/a", ')
    assert main(["run"]) == 2
    assert "DEALERSYNC_DROP_DIRS" in capsys.readouterr().err


@pytest.mark.parametrize("unset", ["DEALERSYNC_OEM_DEALER_NUMBER", "DEALERSYNC_OEM_URL", "DEALERSYNC_CRM_TOKEN",
                                   "DEALERSYNC_OEM_CLIENT_SECRET"])
def test_run_unset_identifier_refuses_naming_it(tmp_path, monkeypatch, capsys, services, unset):
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    monkeypatch.delenv(unset)
    assert main(["run"]) == 2
    (line,) = _errors(capsys)
    assert unset in line
    assert _store_untouched(tmp_path)


@pytest.mark.parametrize("down", ["crm", "oem"])
def test_run_unreachable_service_refuses_no_sandbox(tmp_path, monkeypatch, capsys, services, refused_port, down):
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    dead = f"http://127.0.0.1:{refused_port}" + ("/crm/v1" if down == "crm" else "/api/v1")
    monkeypatch.setenv("DEALERSYNC_CRM_URL" if down == "crm" else "DEALERSYNC_OEM_URL", dead)
    assert main(["run"]) == 3
    (line,) = _errors(capsys)
    assert dead in line and "not reachable" in line
    assert _store_untouched(tmp_path)
    with socket.socket() as s:                   # nothing was started in the dead service's place
        assert s.connect_ex(("127.0.0.1", refused_port)) != 0


def test_unknown_settings_are_errors_naming_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEALERSYNC_DEALR_CODE", "SZ0001")
    assert main(["config", "show"]) == 2
    assert "DEALERSYNC_DEALR_CODE" in capsys.readouterr().err
    monkeypatch.delenv("DEALERSYNC_DEALR_CODE")
    (tmp_path / "dealersync.toml").write_text('oem_dealer_numbr = "SZ0001"\n', encoding="utf-8")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "oem_dealer_numbr" in err and "dealersync.toml" in err and "Traceback" not in err
    (tmp_path / "dealersync.toml").write_text('chunk_rows = [\n', encoding="utf-8")
    assert main(["config", "show"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_config_show_values_sources_and_masked_secrets(tmp_path, monkeypatch, capsys):
    (tmp_path / "dealersync.toml").write_text('oem_dealer_number = "SZ0417"\ncrm_token = "tok-very-secret-77"\n'
                                              'notify_urls = ["wecombot://robot-key-secret"]\n', encoding="utf-8")
    monkeypatch.setenv("DEALERSYNC_CHUNK_ROWS", "50000")
    monkeypatch.setenv("DEALERSYNC_DATABASE_URL", "postgresql+psycopg://u:pg-pass-99@127.0.0.1/db")
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    rows = {r["setting"]: r for r in json.loads(out)}
    assert rows["oem_dealer_number"] == {"setting": "oem_dealer_number", "value": "SZ0417", "from": "file dealersync.toml"}
    assert rows["chunk_rows"]["value"] == "50000" and rows["chunk_rows"]["from"] == "env DEALERSYNC_CHUNK_ROWS"
    assert rows["claim_window_days"] == {"setting": "claim_window_days", "value": "30", "from": "default"}
    assert rows["crm_token"]["value"] == "******" and rows["oem_client_secret"]["value"] == "(unset)"
    for secret in ("tok-very-secret-77", "pg-pass-99", "robot-key-secret"):
        assert secret not in out


def test_check_all_good_then_each_fault(tmp_path, monkeypatch, capsys, services, refused_port):
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    assert main(["check"]) == 2                                  # the store does not exist yet
    assert "does not exist yet" in capsys.readouterr().out
    upgrade(make_engine(get_settings().effective_database_url))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for what in ("ok    OEM portal settings: set", "ok    CRM settings: set", "ok    dealer code: SZ0417", "reachable, migrated", f"drop folder {drop}",
                 "readable, 1 file(s)", "token accepted", "client accepted, dealer SZ0417", "checks passed",
                 "ok    notification targets: none configured"):
        assert what in out, what
    monkeypatch.setenv("DEALERSYNC_NOTIFY_URLS", "smtp://mail.example.cn")
    assert main(["check"]) == 2
    assert "FAIL  notification targets: notify_urls: unknown scheme 'smtp'" in capsys.readouterr().out
    monkeypatch.setenv("DEALERSYNC_NOTIFY_URLS", "wecombot://robot-key-1")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok    notification targets: wecom:https://qyapi.weixin.qq.com/" in out and "robot-key-1" not in out
    monkeypatch.delenv("DEALERSYNC_NOTIFY_URLS")
    monkeypatch.setenv("DEALERSYNC_CRM_URL", f"http://127.0.0.1:{refused_port}/crm/v1")
    assert main(["check"]) == 3
    assert "FAIL  CRM" in capsys.readouterr().out
    monkeypatch.setenv("DEALERSYNC_CRM_URL", services["crm"])
    monkeypatch.setenv("DEALERSYNC_OEM_CLIENT_SECRET", "wrong")
    assert main(["check"]) == 2                                  # refused credentials: a setting to fix
    out = capsys.readouterr().out
    assert "FAIL  OEM portal" in out and "DEALERSYNC_OEM_CLIENT_SECRET" in out and "wrong" not in out


@pytest.mark.parametrize("run_count, budget, retry", [
    (1, 90, True),     # first retry after 10 s
    (2, 90, True),     # 10 + 60 = 70 s of waiting
    (3, 90, False),    # 10 + 60 + 300: past the budget, the stage fails now (no 7-minute silence)
    (1, 5, False),
    (3, 400, True),
])
def test_task_retries_stay_within_the_budget(monkeypatch, run_count, budget, retry):
    from types import SimpleNamespace

    from dealersync.errors import TransientError
    from dealersync.flows.common import transient_only
    monkeypatch.setenv("DEALERSYNC_RETRY_BUDGET_SECONDS", str(budget))
    task = SimpleNamespace(retry_delay_seconds=[10, 60, 300], retries=3)

    def failed(e):
        def result():
            raise e
        return SimpleNamespace(result=result)
    assert transient_only(task, SimpleNamespace(run_count=run_count), failed(TransientError("HTTP 503"))) is retry
    assert transient_only(task, SimpleNamespace(run_count=1), failed(ConfigurationError("bad"))) is False


def test_check_sftp_logs_in_and_names_a_wrong_host_key(tmp_path, monkeypatch, capsys, services):
    """A real sshd on loopback: ``check`` logs in with the pinned host key; a known_hosts that pins
    another key is a FAIL line, never a silent pass."""
    from dealersync.sandbox.sshd import start_sshd, stop_sshd
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    upgrade(make_engine(get_settings().effective_database_url))
    sshd = start_sshd()
    try:
        for k, v in {"SFTP_HOST": "127.0.0.1", "SFTP_PORT": str(sshd.port), "SFTP_USER": "dsftp",
                     "SFTP_KEY_FILE": str(sshd.user_key), "SFTP_KNOWN_HOSTS": str(sshd.known_hosts),
                     "SFTP_REMOTE_ROOT": str(sshd.root), "SFTP_CONNECT_TIMEOUT": "5", "DEALER_CODE": "SZ0417"}.items():
            monkeypatch.setenv(f"DEALERSYNC_{k}", v)
        assert main(["check"]) == 0
        out = capsys.readouterr().out
        assert f"ok    SFTP dsftp@127.0.0.1:{sshd.port}: reachable, host key" in out and "logged in as dsftp" in out
        other = tmp_path / "known_hosts_other"
        other.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                         "AAAAC3NzaC1lZDI1NTE5AAAAIHbXq3cW6M5Zq1pQmXvGZ4b0l0Yd3hC0mKqKk9m2Yc0x\n", encoding="utf-8")
        monkeypatch.setenv("DEALERSYNC_SFTP_KNOWN_HOSTS", str(other))
        assert main(["check"]) != 0
        assert "FAIL  SFTP" in capsys.readouterr().out
    finally:
        stop_sshd(sshd)


def test_a_stage_that_fails_is_one_line_and_the_others_still_run(capsys, tmp_path):
    from dealersync.cli.front import print_summary, run_stage
    from dealersync.errors import ItemsFailed, TransientError

    def down():
        raise TransientError("POST http://127.0.0.1:1/api/v1/warranty-claims: gave up after 6 tries (HTTP 503)")

    pushed = {"contacts": {"sent": 5, "created": 3, "updated": 0, "errors": 2, "deleted": 0},
              "tasks_planned": {"created": 4}, "tasks": {"sent": 4, "errors": 0}}

    def items():
        raise ItemsFailed("push_crm: 2 contact(s) refused by the CRM", result=pushed)
    stages = []
    run_stage(stages, "warranty claims", down)
    run_stage(stages, "CRM push", items)
    run_stage(stages, "claim status", lambda: {"changes": 3, "by_status": {}})
    assert [s.status for s in stages] == ["failed", "needs attention", "ok"]
    assert stages[1].result == pushed and stages[1].detail == "2 contact(s) refused by the CRM"
    print_summary(Settings(), stages)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "contacts sent 5 (3 new, 0 updated, 2 refused)" in out       # what did succeed is shown
    assert "not all went well: warranty claims: failed; CRM push: needs attention" in out
    assert "TransientError: POST http://127.0.0.1:1/api/v1/warranty-claims: gave up after 6 tries (HTTP 503)" in out


def test_check_and_run_flag_an_unset_dealer_code(tmp_path, monkeypatch, capsys, services):
    """``run`` without ``dealer_code`` would take each file's dealer from its name (another dealer's
    export would load as theirs): ``check`` says so, naming the dealers the file names carry, and
    ``run`` refuses before touching the store (#15 leftover)."""
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    (drop / "GZ0099_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    upgrade(make_engine(get_settings().effective_database_url))
    monkeypatch.delenv("DEALERSYNC_DEALER_CODE")
    assert main(["check"]) == 2
    out = capsys.readouterr().out
    assert "FAIL  dealer code: not set: dealer_code (DEALERSYNC_DEALER_CODE)" in out and "GZ0099, SZ0417" in out
    assert main(["run"]) == 2
    (line,) = _errors(capsys)
    assert "DEALERSYNC_DEALER_CODE" in line


@pytest.fixture
def silent_port():
    """A loopback server that accepts connections and never answers."""
    import threading
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    held, stop = [], threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(s.accept()[0])
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    s.close()


def test_check_waits_preflight_timeout_seconds_not_the_read_timeout(tmp_path, monkeypatch, capsys, services,
                                                                      silent_port):
    """A portal that accepts and never answers: each of the check's two tries waits
    ``preflight_timeout_seconds`` (1 s here), not twice that (#15 leftover: it waited the read timeout)."""
    import time
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    upgrade(make_engine(get_settings().effective_database_url))
    monkeypatch.setenv("DEALERSYNC_PREFLIGHT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DEALERSYNC_OEM_URL", f"http://127.0.0.1:{silent_port}/api/v1")
    from dealersync.cli.preflight import check_services
    t0 = time.monotonic()
    (crm, oem) = check_services(get_settings())
    took = time.monotonic() - t0
    assert crm.ok and not oem.ok and "timed out" in oem.detail
    assert took < 3.5, took   # two tries of 1 s (and a short wait between), not two of 2 s


def test_outage_lines_say_the_cause_not_the_raw_requests_text(tmp_path, monkeypatch, capsys, services, refused_port):
    """``check`` (and a failed stage of ``run``) ends an outage line in a clean cause: the host and
    "connection refused", never requests' pool text or the URL's query string (#15 leftover)."""
    from dealersync.connectors.crm import CrmClient, CrmSettings
    from dealersync.errors import TransientError
    drop = production_env(monkeypatch, tmp_path, services["crm"], services["oem"])
    drop.mkdir()
    (drop / "SZ0417_CUSTOMER_20261103.csv").write_text("客户编号\nC1\n", encoding="utf-8")
    upgrade(make_engine(get_settings().effective_database_url))
    dead = f"http://127.0.0.1:{refused_port}/crm/v1"
    monkeypatch.setenv("DEALERSYNC_CRM_URL", dead)
    assert main(["check"]) == 3
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAIL")]
    assert line.endswith("(connection refused)"), line
    assert dead in line
    for raw in ("HTTPConnectionPool", "Max retries", "Errno", "?", "Caused by", "object at 0x"):
        assert raw not in line, line
    client = CrmClient(CrmSettings.from_settings(get_settings()))
    client.policy.attempts, client.policy.base = 2, 0.01
    with pytest.raises(TransientError) as e:
        next(client.pages("leads", modified_since="2026-11-01T00:00:00+08:00"))
    assert str(e.value).endswith("(connection refused)") and "?" not in str(e.value), str(e.value)


def test_the_demo_prints_commands_a_newcomer_can_type(tmp_path, monkeypatch):
    """The README installs into .venv without activating it: the demo's 'Open next' lines give the
    path of this install's dealersync unless the shell finds that very one."""
    from dealersync.cli import demo
    bin_ = tmp_path / "venv" / "bin"
    bin_.mkdir(parents=True)
    for name in ("dealersync", "prefect"):
        (bin_ / name).write_text("#!/bin/sh\n")
        (bin_ / name).chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(bin_ / "dealersync")])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert demo._command("dealersync") == "venv/bin/dealersync"
    assert demo._command("prefect") == "venv/bin/prefect"
    monkeypatch.setenv("PATH", f"{bin_}:/usr/bin:/bin")
    assert demo._command("dealersync") == "dealersync"
