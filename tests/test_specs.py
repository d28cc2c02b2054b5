"""The contracts the sandboxes and clients are built to travel with the repository (docs/specs). Where
the workplace's shared copy is present, the repository's copy must be the same bytes."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "specs"


@pytest.mark.parametrize("name", ["crm.openapi.yaml", "oem-portal.openapi.yaml", "dms-exports.md"])
def test_spec_copy_matches_the_shared_contract(name):
    ours = ROOT / "docs" / "specs" / name
    assert ours.exists()
    if (SHARED / name).exists():
        assert ours.read_bytes() == (SHARED / name).read_bytes(), f"docs/specs/{name} differs from {SHARED / name}"
