"""Settings: TOML file, environment over TOML, secrets never shown, bad values are clear errors."""
from __future__ import annotations

from pathlib import Path

from dealersync.cli.main import main
from dealersync.config import Settings


def test_toml_then_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in ("DEALERSYNC_DEALER_CODE", "DEALERSYNC_DATABASE_URL", "DEALERSYNC_DROP_DIRS", "DEALERSYNC_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "dealersync.toml").write_text(
        'dealer_code = "SZ0001"\ndrop_dirs = ["/srv/a", "/srv/b"]\ncrm_token = "tok-123"\nchunk_rows = 20000\n',
        encoding="utf-8")
    s = Settings()
    assert (s.dealer_code, s.drop_dirs, s.chunk_rows) == ("SZ0001", [Path("/srv/a"), Path("/srv/b")], 20000)
    assert s.crm_token.get_secret_value() == "tok-123" and "tok-123" not in repr(s)
    assert s.effective_database_url == f"sqlite:///{(tmp_path / '.data' / 'dealersync.db')}"
    monkeypatch.setenv("DEALERSYNC_DEALER_CODE", "GZ0099")
    monkeypatch.setenv("DEALERSYNC_DROP_DIRS", "/x,/y")
    monkeypatch.setenv("DEALERSYNC_DATABASE_URL", "postgresql+psycopg://u@h/db")
    s = Settings()
    assert (s.dealer_code, s.drop_dirs, s.effective_database_url) == (
        "GZ0099", [Path("/x"), Path("/y")], "postgresql+psycopg://u@h/db")


def test_config_file_named_by_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere.toml").write_text('dealer_code = "BJ0007"\n', encoding="utf-8")
    monkeypatch.setenv("DEALERSYNC_CONFIG", str(tmp_path / "elsewhere.toml"))
    monkeypatch.delenv("DEALERSYNC_DEALER_CODE", raising=False)
    assert Settings().dealer_code == "BJ0007"


def test_bad_setting_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEALERSYNC_CHUNK_ROWS", "ten")
    assert main(["db", "upgrade"]) == 2
    assert "chunk_rows" in capsys.readouterr().err
