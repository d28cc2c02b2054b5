"""The header matched to a profile once (issue #14 item 6): one HeaderMatcher scores the reader's
candidate rows and, for the header found, gives the profile and the column map from the same overlap."""
from __future__ import annotations

import pytest

from dealersync.errors import ConfigurationError
from dealersync.schemas import profiles as profiles_mod
from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.profiles import HeaderMatcher, load_profiles

CUSTOMERS = FEEDS["customers"]
DMS_B_HEADER = ["客户代码", " 客户姓名 ", "客户性质", "性别", "备注", "客户姓名"]


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def test_the_header_row_scores_above_a_title_row(profiles):
    m = HeaderMatcher(CUSTOMERS, profiles)
    assert m.score(["客户档案导出", "", ""]) == 0          # one distinct cell: never a header
    assert m.score(DMS_B_HEADER) == 4


def test_one_match_gives_profile_and_column_map(profiles):
    m = HeaderMatcher(CUSTOMERS, profiles)
    got = m.match([h.strip() for h in DMS_B_HEADER])
    assert got.profile.name == "dms_b"
    assert got.positions == {"customer_id": 0, "name": 1, "customer_type": 2, "gender": 3}
    assert got.missing == [] and got.missing_error("customers", "X.csv") is None
    assert "unknown column '备注' (column 5) ignored" in got.warnings
    assert "duplicated header '客户姓名': column 6 ignored, column 2 used for name" in got.warnings
    assert any(w.startswith("optional columns absent: mobile") for w in got.warnings)


def test_each_row_is_matched_against_the_profiles_once(profiles, monkeypatch):
    """Scoring the header row and then matching it computes the overlap with the profiles one time."""
    m = HeaderMatcher(CUSTOMERS, profiles)
    calls = []
    real = profiles_mod.HeaderMatcher._overlap

    def counted(self, keys):
        calls.append(keys not in self._overlaps)
        return real(self, keys)
    monkeypatch.setattr(profiles_mod.HeaderMatcher, "_overlap", counted)
    m.score(DMS_B_HEADER)
    m.match([h.strip() for h in DMS_B_HEADER])
    assert calls == [True, False]


def test_missing_required_column_names_the_profile_header(profiles):
    got = HeaderMatcher(CUSTOMERS, profiles).match(["客户代码", "客户性质", "性别"])
    assert got.profile.name == "dms_b" and got.missing == ["name"]
    err = got.missing_error("customers", "D1_CUST_20261101.csv")
    assert err.reason == "MISSING_COLUMN" and err.column == "客户姓名"


def test_wanted_and_oem_profiles(profiles):
    assert HeaderMatcher(CUSTOMERS, profiles, "dms_a").match(DMS_B_HEADER).profile.name == "dms_a"
    assert [p.name for p in HeaderMatcher(CUSTOMERS, profiles, "dms_a").candidates] == ["dms_a"]
    with pytest.raises(ConfigurationError):
        HeaderMatcher(CUSTOMERS, profiles, "nope").match(DMS_B_HEADER)
    assert HeaderMatcher(FEEDS["recalls"], profiles).match(["vin", "x"]).profile.name == "oem"
