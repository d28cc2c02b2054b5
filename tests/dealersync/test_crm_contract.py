"""CRM records outside the contract are quarantined and the pull goes on (issue #15 "Contain the
damage"); free text leaving for the CRM is scrubbed and the scrubbing recorded (issue #16 item 2).
Real HTTP (a scripted loopback server and the sandbox CRM), SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime

import requests
from sqlalchemy import insert, select

from dealersync.connectors.crm import CrmClient, CrmSettings
from dealersync.connectors.http import RetryPolicy
from dealersync.sandbox.crm import create_app
from dealersync.services import crm_sync
from dealersync.store.tables import crm_cursor, crm_lead, crm_push, crm_quarantine, followup_task
from tests.connectors.hostile import HostileServer, answer
from tests.sandbox.server import serving

MOBILE = re.compile(r"1[3-9][0-9]{9}")


def lead(i: int, **kw) -> dict:
    return {"leadId": f"L{i}", "name": f"客户{i}", "mobile": None, "status": "OPEN",
            "modifiedAt": f"2026-11-0{i}T08:00:00Z", **kw}


PAGES = [
    [lead(1), {k: v for k, v in lead(2).items() if k != "modifiedAt"},          # no modifiedAt
     lead(3, modifiedAt=20261103), ["not", "an", "object"], lead(4, leadId="L" + "9" * 80)],
    [lead(5), lead(6, name="零\x00字节")],
]


def pages_server():
    def leads(h, body):
        q = h.path.partition("?")[2]
        page = 1 if "cursor=" in q else 0
        nxt = base64.urlsafe_b64encode(b"p1").decode() if page == 0 else None
        answer(h, 200, {"items": PAGES[page], "nextCursor": nxt})
    return HostileServer({"GET /leads": leads})


def client(url) -> CrmClient:
    return CrmClient(CrmSettings(url=url, token="tok-crm-1"), policy=RetryPolicy(base=0.01, cap=0.02, attempts=3))


def test_a_lead_outside_the_contract_is_quarantined_and_the_pull_goes_on(engine):
    with pages_server() as s:
        out = crm_sync.pull(engine, client(s.url), feeds=("leads",))
        again = crm_sync.pull(engine, client(s.url), feeds=("leads",), stateless=True)
    with engine.begin() as c:
        stored = set(c.execute(select(crm_lead.c.lead_id)).scalars())
        q = {r["item_key"]: r for r in c.execute(select(crm_quarantine)).mappings()}
        cur = c.execute(select(crm_cursor).where(crm_cursor.c.feed == "leads")).mappings().one()
    assert {"L1", "L5"} <= stored and "L2" not in stored and "L3" not in stored
    assert q["L2"]["reason_code"] == "MISSING_FIELD" and "modifiedAt" in q["L2"]["message"]
    assert q["L3"]["reason_code"] == "WRONG_TYPE"
    assert [r["reason_code"] for k, r in q.items() if k.startswith("sha256:")].count("NOT_AN_OBJECT") == 1
    if engine.dialect.name == "postgresql":   # a 81-character id and a NUL byte: refused by the store, kept here
        assert "REFUSED_BY_STORE" in {r["reason_code"] for r in q.values()} and "L6" in q
    assert out["leads"]["pages"] == 2 and out["leads"]["quarantined"] == again["leads"]["quarantined"] >= 3
    assert len(q) == out["leads"]["quarantined"]                    # a second pull updates, never duplicates
    assert cur["watermark"] == "2026-11-06T08:00:00Z" or cur["watermark"] == "2026-11-05T08:00:00Z"


def test_free_text_for_the_crm_is_scrubbed_and_the_count_recorded(engine, tmp_path):
    now = datetime(2026, 11, 5, 8)
    with engine.begin() as c:
        c.execute(insert(followup_task).values(
            external_id="T-COMPLAINT-1", type="COMPLAINT_FOLLOW_UP", master_id="M000001", due_date=date(2026, 11, 6),
            subject="投诉回访: 客户留电话13912345678, 身份证11010519491231002X, 邮箱 wang.li@example.cn",
            status="OPEN", overdue=False, marketing=False, created_for=date(2026, 11, 5), created_at=now,
            updated_at=now))
        c.execute(insert(followup_task).values(
            external_id="T-PLAIN-1", type="RETURN_VISIT", master_id="M000002", due_date=date(2026, 11, 6),
            subject="回访: RO20261101", status="OPEN", overdue=False, marketing=False, created_for=date(2026, 11, 5),
            created_at=now, updated_at=now))
    with serving(create_app(tmp_path / "crm.db")) as url:
        cc = CrmClient(CrmSettings(url=url + "/crm/v1", token="sandbox-token"))
        cc.upsert_contacts([{"externalId": m, "name": "王先生", "customerType": "PERSON"} for m in ("M000001", "M000002")])
        out = crm_sync.push_tasks(engine, cc)
        assert out["sent"] == 2
        held = json.dumps(requests.get(url + "/_sandbox/tasks/T-COMPLAINT-1").json(), ensure_ascii=False)
    assert "投诉回访" in held and not MOBILE.search(held) and "1002X" not in held and "@example" not in held
    with engine.begin() as c:
        rows = {r["external_id"]: r for r in c.execute(select(crm_push)).mappings()}
    assert rows["T-COMPLAINT-1"]["scrubbed"] == 3 and rows["T-PLAIN-1"]["scrubbed"] == 0
