"""Consent decided on explicit values (issue #16, item 3): a numpy bool True is a yes (the old
``is True`` never saw one, so with every answer explicit all marketing tasks were skipped); a blank is
no. Table tests for the rule and for the follow-up tasks it gates."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update

from dealersync.privacy import consented
from dealersync.resolution import service
from dealersync.services.followups import MARKETING, Rules, generate_tasks
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.tables import master_customer

DAY = date(2026, 11, 5)


@pytest.mark.parametrize("value,expected", [
    (True, True), (np.bool_(True), True), (1, True), (np.int64(1), True), ("是", True), ("Y", True), (" yes ", True),
    (False, False), (np.bool_(False), False), (0, False), ("否", False), ("N", False),
    (None, False), ("", False), ("  ", False), (float("nan"), False), (pd.NA, False), (np.nan, False),
    ("maybe", False), (2, False),
])
def test_consented_only_on_an_explicit_yes(value, expected):
    assert consented(value) is expected


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from dealersync.store.db import make_engine, upgrade
    tmp = tmp_path_factory.mktemp("consent")
    eng = make_engine(f"sqlite:///{tmp / 'store.db'}")
    upgrade(eng)
    files = generate(tmp / "drop", rows=80, seed=3)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(eng, files[feed])
    with eng.begin() as c:
        service.resolve(c)
    yield eng
    eng.dispose()


def _marketing_masters(eng, pattern) -> tuple[set[str], dict[str, bool | None]]:
    """Set each active master's consent by ``pattern`` (index -> value), plan the day's tasks, and
    return the masters that got a marketing task with the consents set."""
    with eng.begin() as c:
        mids = c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")
                         .order_by(master_customer.c.master_id)).scalars().all()
        consent = {m: pattern(i) for i, m in enumerate(mids)}
        for m, v in consent.items():
            c.execute(update(master_customer).where(master_customer.c.master_id == m).values(marketing_consent=v))
        tasks = generate_tasks(c, DAY, Rules())
    return {t["master_id"] for t in tasks if t["type"] in MARKETING}, consent


PATTERNS = {"all-true": lambda i: True, "all-false": lambda i: False, "mixed": lambda i: i % 2 == 0,
            "mixed-with-blank": lambda i: (True, False, None)[i % 3], "all-blank": lambda i: None}


@pytest.mark.parametrize("name", list(PATTERNS))
def test_marketing_tasks_follow_explicit_consent(store, name):
    eligible, _ = _marketing_masters(store, PATTERNS["all-true"])   # who would get one with everyone's yes
    assert len(eligible) >= 5
    got, consent = _marketing_masters(store, PATTERNS[name])
    assert got == {m for m in eligible if consent[m] is True}
