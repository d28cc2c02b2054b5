"""A malformed profile TOML is one clear message naming the file, the profile and the key, exit 2,
never a raw KeyError or TypeError (issue 15, "Contain the damage")."""
from __future__ import annotations

import pytest

from dealersync.cli.main import main
from dealersync.errors import ConfigurationError
from dealersync.schemas.profiles import load_profiles

CASES = [
    ('[dms_c]\nextends = "dms_z"\n', "extends unknown profile 'dms_z'"),
    ('[dms_c]\nextends = "dms_c"\n', "extends itself"),
    ('[dms_a]\nextends = "dms_a"\n', "extends itself"),
    ("[dms_c]\nencoding = 5\n", "encoding = 5 must be an encoding name"),
    ("[dms_c]\ndate_formats = 5\n", "date_formats = 5 must be a list"),
    ("[dms_c]\ndate_formats = [5]\n", "date_formats must be a list of text formats"),
    ("[dms_c]\nextends = 5\n", "extends = 5 must be a profile name"),
    ("[dms_c]\nrequire_done_marker = \"yes\"\n", "require_done_marker = 'yes' must be true or false"),
    ("[dms_c]\ncolumns = 5\n", "columns = 5 must be a table"),
    ("[dms_c.columns]\ncustomers = 5\n", "columns.customers must be a table"),
    ("[dms_c.columns.customers]\ncustomer_id = 5\n", "columns.customers.customer_id must be a header"),
    ("[dms_c.values]\ncustomer_type = 5\n", "values.customer_type must be a table"),
    ("[dms_c]\nencodng = \"utf-8\"\n", "unknown key 'encodng'"),
    ('[dms_c]\nencoding = "klingon"\n', "unknown encoding 'klingon'"),
    ("dms_c = 5\n", "is not a profile table"),
    ("[dms_c\n", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", CASES)
def test_malformed_profile_is_one_configuration_error(tmp_path, text, message):
    p = tmp_path / "profiles.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as e:
        load_profiles([p])
    assert message in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("text, message", CASES[:5])
def test_cli_exits_2_with_one_line(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    p = tmp_path / "profiles.toml"
    p.write_text(text, encoding="utf-8")
    monkeypatch.setenv("DEALERSYNC_PROFILE_FILES", str(p))
    f = tmp_path / "SZ0417_CUSTOMER_20261103.csv"
    f.write_text("客户编号\nC1\n", encoding="utf-8")
    assert main(["ingest", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert "KeyError" not in err[0] and "TypeError" not in err[0]


def test_a_good_custom_profile_still_loads(tmp_path):
    p = tmp_path / "profiles.toml"
    p.write_text('[dms_c]\nextends = "dms_a"\nencoding = "utf-8"\ndate_formats = ["%d.%m.%Y"]\n'
                 '[dms_c.columns.customers]\ncustomer_id = ["客户ID", "顾客编号"]\n'
                 '[dms_c.values.customer_type]\n"私人客户" = "PERSON"\n', encoding="utf-8")
    prof = load_profiles([p])["dms_c"]
    assert prof.encoding == "utf-8" and prof.date_formats == ["%d.%m.%Y"]
    assert prof.columns["customers"]["customer_id"] == ["客户ID", "顾客编号"]
    assert prof.columns["customers"]["name"] == ["客户名称"]       # inherited from dms_a
