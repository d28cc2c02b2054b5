"""The monthly CSI report to the OEM (issue #16, item 2) names only dissatisfied customers who consented
to sharing, masked, and counts only survey activities whose contact is a customer. The workbook is read
back with openpyxl and scanned for names and identifiers in clear."""
from __future__ import annotations

import io
import json
from datetime import datetime

import openpyxl
import pytest
from sqlalchemy import insert, select, update

from dealersync.resolution import service
from dealersync.services import surveys
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.tables import crm_activity, master_customer
from tests.dealersync.pii_scan import find_pii

MONTH = "2026-10"


def _survey(c, aid, contact, score):
    answers = [{"questionId": f"Q{i}", "factorCode": f, "numericValue": score}
               for i, f in enumerate(surveys.CSI_FACTORS)]
    c.execute(insert(crm_activity).values(activity_id=aid, type="SURVEY", contact_external_id=contact,
                                          occurred_at="2026-10-15T10:00:00+08:00", modified_at="2026-10-15T10:00:00+08:00",
                                          outcome="REACHED", survey_type="CSI", answers=json.dumps(answers),
                                          pulled_at=datetime(2026, 10, 16)))


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=30, seed=8)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
        rows = c.execute(select(master_customer.c.master_id, master_customer.c.name, master_customer.c.primary_mobile)
                         .where(master_customer.c.status == "ACTIVE", master_customer.c.name.is_not(None),
                                master_customer.c.primary_mobile.is_not(None))
                         .order_by(master_customer.c.master_id).limit(6)).all()
        yes, no, blank = rows[:2], rows[2:4], rows[4:6]
        for group, v in ((yes, True), (no, False), (blank, None)):
            for r in group:
                c.execute(update(master_customer).where(master_customer.c.master_id == r[0]).values(marketing_consent=v))
        for i, r in enumerate(rows):
            _survey(c, f"S-{i}", r[0], 3)               # every one of them dissatisfied
        _survey(c, "S-happy", yes[0][0], 9)
        _survey(c, "S-lead", "LEAD:L000123", 2)         # contacts that are not customers
        _survey(c, "S-unknown", "M9999999", 1)
        _survey(c, "S-none", None, 1)
    return engine, yes, no + blank


def test_csi_counts_customers_only_and_names_only_consenting_ones_masked(store):
    engine, yes, others = store
    with engine.begin() as c:
        fig = surveys.csi_figures(c, MONTH)
    assert fig["responses"] == 7                                   # six dissatisfied + one happy; no lead, no unknown
    assert len(fig["dissatisfied"]) == 6
    named = {d["master_id"]: d for d in fig["dissatisfied"] if d["master_id"]}
    assert set(named) == {r[0] for r in yes}
    for mid, name, mobile in yes:
        assert named[mid]["name"] == name[0] + "*" * (len(name) - 1) and named[mid]["mobile"] == mobile[:3] + "****" + mobile[-4:]
    anonymous = [d for d in fig["dissatisfied"] if not d["master_id"]]
    assert len(anonymous) == 4 and all(d["name"] is None and d["mobile"] is None for d in anonymous)
    wb = openpyxl.load_workbook(io.BytesIO(surveys.write_csi_xlsx(fig, "GZ0012")))
    text = " ".join(str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert find_pii(text) == []
    assert text.count("（未同意共享，不列身份）") == 4          # withheld, not "name not registered"
    for mid, name, mobile in yes + others:
        assert name not in text and mobile not in text
    for mid, _, _ in others:
        assert mid not in text
