"""CRM sync over real HTTP against the sandbox CRM: pull with cursors, delta push, per-record errors,
crashes between batches, merges followed by the CRM, tasks that stay done, consent, the daily list."""
from __future__ import annotations

from datetime import date

import openpyxl
import pytest
import requests
from sqlalchemy import select, update

from dealersync.connectors.crm import CrmClient, CrmSettings
from dealersync.connectors.http import RetryPolicy
from dealersync.services import crm_sync
from dealersync.services.followups import Rules, due_list, segments, write_xlsx
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.resolution import service
from dealersync.sandbox.crm import FaultConfig, create_app
from dealersync.store.tables import crm_cursor, crm_lead, crm_push, customer_record, followup_task, master_customer
from tests.sandbox.server import serving

DAY = date(2026, 11, 5)
TOKEN = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=60, seed=3)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
    return engine


def crm_server(tmp_path, **faults):
    return serving(create_app(tmp_path / "crm.db", faults=FaultConfig(**faults) if faults else None, seed_leads=20))


def client_for(url, **kw) -> CrmClient:
    return CrmClient(CrmSettings(url=url + "/crm/v1", token="sandbox-token", page_size=kw.pop("page_size", 500)),
                     policy=RetryPolicy(base=0.01, cap=0.05, attempts=12), **kw)


def stats(url):
    return requests.get(url + "/_sandbox/stats").json()


def masters(engine) -> int:
    with engine.begin() as c:
        return len(c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")).all())


def test_push_then_delta_push_sends_only_what_changed(store, tmp_path):
    with crm_server(tmp_path) as url:
        client = client_for(url)
        first = crm_sync.push(store, client, DAY, Rules())
        n = masters(store)
        assert first["contacts"]["created"] == n == stats(url)["contacts"]
        assert first["tasks"]["created"] == stats(url)["tasks"] > 0
        again = crm_sync.push(store, client, DAY, Rules())
        assert again["contacts"]["sent"] == 0 and again["tasks"]["sent"] == 0
        assert again["requests"] == first["requests"]   # nothing sent the second time
        with store.begin() as c:
            mid = c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")).scalars().first()
            c.execute(update(master_customer).where(master_customer.c.master_id == mid).values(address="广州市天河区新地址1号"))
        delta = crm_sync.push_contacts(store, client, DAY, Rules())
        assert delta["sent"] == delta["updated"] == 1
        assert requests.get(f"{url}/crm/v1/contacts/{mid}", headers=TOKEN).json()["address"] == "广州市天河区新地址1号"


def test_503s_429s_and_dropped_connections_lose_nothing_and_duplicate_nothing(store, tmp_path):
    with crm_server(tmp_path, error_rate=0.35, drop_rate=0.25, rate_per_second=40, burst=3, seed=5) as url:
        out = crm_sync.push(store, client_for(url), DAY, Rules(), batch_size=5)
        s = stats(url)
        assert s["errors"] > 0 and s["dropped"] > 0, s
        assert s["contacts"] == masters(store)
        assert out["contacts"]["created"] + out["contacts"]["unchanged"] + out["contacts"]["updated"] == masters(store)
        assert crm_sync.ledger_counts(store)["CONTACT"] == {"SENT": masters(store)}


def test_a_429_storm_is_waited_out_honouring_retry_after(store, tmp_path):
    slept = []
    with crm_server(tmp_path, rate_per_second=4, burst=1) as url:
        import time
        client = client_for(url, sleep=lambda s: (slept.append(s), time.sleep(s)))
        out = crm_sync.push_contacts(store, client, DAY, Rules(), batch_size=10)
        assert stats(url)["throttled"] > 0 and stats(url)["contacts"] == masters(store) == out["created"]
        assert max(slept) >= 1.0   # the server's Retry-After (whole seconds), not just the short backoff


def test_records_in_error_are_retried_one_by_one_and_recorded(store, tmp_path):
    with store.begin() as c:
        bad = c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")).scalars().all()[:3]
        c.execute(update(master_customer).where(master_customer.c.master_id.in_(bad)).values(primary_mobile="1234"))
    with crm_server(tmp_path) as url:
        client = client_for(url)
        out = crm_sync.push_contacts(store, client, DAY, Rules())
        assert out["retried_singly"] == 3 and out["errors"] == 3 and out["error_codes"] == {"INVALID_FIELD": 3}
        assert out["sent"] == masters(store) - 3 == stats(url)["contacts"]
        with store.begin() as c:
            rows = c.execute(select(crm_push.c.external_id, crm_push.c.error_code).where(crm_push.c.status == "ERROR")).all()
        assert sorted(r[0] for r in rows) == sorted(bad) and {r[1] for r in rows} == {"INVALID_FIELD"}
        assert crm_sync.push_contacts(store, client, DAY, Rules())["sent"] == 0   # same content: not resent


def test_a_crash_between_batches_resumes_without_duplicates(store, tmp_path):
    with crm_server(tmp_path) as url:
        client = client_for(url)
        real, calls = client.upsert_contacts, []

        def crashing(records):
            calls.append(len(records))
            if len(calls) == 2:
                raise KeyboardInterrupt("killed between batches")
            return real(records)
        client.upsert_contacts = crashing
        with pytest.raises(KeyboardInterrupt):
            crm_sync.push_contacts(store, client, DAY, Rules(), batch_size=20)
        done = crm_sync.ledger_counts(store)["CONTACT"]["SENT"]
        assert done == calls[0] == stats(url)["contacts"]
        client.upsert_contacts = real
        out = crm_sync.push_contacts(store, client, DAY, Rules(), batch_size=20)
        assert out["created"] == masters(store) - done and out["updated"] == 0
        assert stats(url)["contacts"] == masters(store)


def test_pull_resumes_from_its_cursor_and_the_latest_version_wins(store, tmp_path):
    with crm_server(tmp_path) as url:
        client = client_for(url, page_size=6)
        first = crm_sync.pull(store, client, feeds=("leads",))
        assert first["leads"]["items"] == 20 and first["leads"]["pages"] == 4
        for status in ("WON", "DEFEATED"):   # changed twice in the CRM: appears twice, the latest wins
            requests.post(url + "/_sandbox/leads", json={"leadId": "L01000003", "status": status})
        second = crm_sync.pull(store, client, feeds=("leads",))
        assert second["leads"]["items"] >= 1
        with store.begin() as c:
            assert c.execute(select(crm_lead.c.status).where(crm_lead.c.lead_id == "L01000003")).scalar() == "DEFEATED"
            wm = c.execute(select(crm_cursor.c.watermark).where(crm_cursor.c.feed == "leads")).scalar()
        # a stateless re-read (backfill) leaves the watermark alone
        crm_sync.pull(store, client, feeds=("leads",), modified_since="2000-01-01T00:00:00Z", stateless=True)
        with store.begin() as c:
            assert c.execute(select(crm_cursor.c.watermark).where(crm_cursor.c.feed == "leads")).scalar() == wm
        # leads become potential customers for matching
        with store.begin() as c:
            st = service.resolve(c)
        assert st.scored_records >= 20


def test_merge_removes_the_losing_contact_and_repoints_its_tasks(store, tmp_path):
    with crm_server(tmp_path) as url:
        client = client_for(url)
        crm_sync.push(store, client, DAY, Rules())
        with store.begin() as c:
            with_tasks = c.execute(select(followup_task.c.master_id).distinct()).scalars().all()
            assert len(with_tasks) >= 2
            recs = [c.execute(select(customer_record.c.id).where(customer_record.c.master_id == m)).scalars().first()
                    for m in with_tasks[:2]]
            a, b = (with_tasks[0],), (with_tasks[1],)
            survivor = service.force_link(c, [str(r) for r in recs])
        loser = b[0] if survivor == a[0] else a[0]
        out = crm_sync.push(store, client, DAY, Rules())
        assert out["contacts"]["deleted"] == 1
        assert out["tasks_planned"]["repointed"] + out["tasks_planned"]["updated"] >= 1
        assert requests.get(f"{url}/crm/v1/contacts/{loser}", headers=TOKEN).status_code == 404
        with store.begin() as c:
            moved = c.execute(select(followup_task.c.external_id).where(followup_task.c.master_id == survivor)).scalars().all()
        assert moved and all(requests.get(f"{url}/_sandbox/tasks/{t}").json()["contactExternalId"] == survivor for t in moved)


def test_a_task_done_in_the_crm_is_not_reopened_and_a_day_rerun_creates_nothing(store, tmp_path):
    with crm_server(tmp_path) as url:
        client = client_for(url)
        crm_sync.push(store, client, DAY, Rules())
        with store.begin() as c:
            ext = c.execute(select(followup_task.c.external_id)).scalars().first()
            c.execute(update(followup_task).where(followup_task.c.external_id == ext).values(subject="changed here"))
        requests.post(f"{url}/_sandbox/tasks/{ext}/done")
        before = stats(url)["tasks"]
        crm_sync.push(store, client, DAY, Rules())
        assert requests.get(f"{url}/_sandbox/tasks/{ext}").json()["status"] == "DONE"
        assert stats(url)["tasks"] == before


def test_marketing_tasks_only_with_consent(store):
    crm_sync.plan_tasks(store, DAY, Rules())
    with store.begin() as c:
        rows = c.execute(select(followup_task.c.type, master_customer.c.marketing_consent)
                         .join(master_customer, master_customer.c.master_id == followup_task.c.master_id)
                         .where(followup_task.c.marketing.is_(True))).all()
        every = {t for (t,) in c.execute(select(followup_task.c.type)).all()}
    assert rows and all(consent is True for _, consent in rows)
    assert every - {"MAINTENANCE_REMINDER", "FIRST_SERVICE_REMINDER", "LOST_CUSTOMER_RECOVERY", "BIRTHDAY_GREETING"}


def _add_ro(c, ro_number, vin, opened, closed, complaint="异响", repair_type="小修", km=12000, name="郑小雨",
            mobile="13711112222"):
    from datetime import datetime
    from sqlalchemy import insert
    from dealersync.store.tables import FEED_TABLES
    c.execute(insert(FEED_TABLES["repair_orders"]).values(
        ro_number=ro_number, vin=vin, opened_at=datetime.fromisoformat(opened),
        closed_at=datetime.fromisoformat(closed) if closed else None, status="已结算" if closed else "在修",
        sender_name=name, sender_mobile=mobile, mileage_km=km, repair_type=repair_type, complaint=complaint,
        advisor="李明", dealer_code="GZ0012", source_file="test", source_row=1, load_id=0, ingested_at=datetime.now()))


def test_return_visit_due_after_closing_and_done_once_the_call_is_recorded(store):
    from datetime import datetime
    from sqlalchemy import insert
    from dealersync.store.tables import crm_activity
    with store.begin() as c:
        _add_ro(c, "RO-RV-1", "1M8GDM9AXKP042788", "2026-11-03 09:00:00", "2026-11-04 16:30:00")
        service.resolve(c)
    crm_sync.plan_tasks(store, DAY, Rules())
    with store.begin() as c:
        t = c.execute(select(followup_task).where(followup_task.c.external_id == "RV-GZ0012-RO-RV-1")).mappings().one()
    assert t["type"] == "RETURN_VISIT" and t["status"] == "OPEN" and t["due_date"] == date(2026, 11, 7)
    assert t["related_document"] == "RO-RV-1" and t["assignee"] == "李明"
    with store.begin() as c:   # the call centre reached the customer
        c.execute(insert(crm_activity).values(activity_id="A1", type="RETURN_VISIT_CALL", contact_external_id=t["master_id"],
                                              related_document="RO-RV-1", occurred_at="2026-11-05T02:00:00Z",
                                              modified_at="2026-11-05T02:00:00Z", outcome="REACHED", pulled_at=datetime.now()))
    crm_sync.plan_tasks(store, DAY, Rules())
    crm_sync.plan_tasks(store, DAY, Rules())   # a re-run of the day: still one task
    with store.begin() as c:
        rows = c.execute(select(followup_task.c.status).where(followup_task.c.external_id.like("RV-GZ0012-RO-RV-1%"))).all()
    assert rows == [("DONE",)]


def test_sanbao_alerts_at_the_thresholds(store):
    from dealersync.services.sanbao import alerts
    vin = "LSVAG2180E2100150"
    with store.begin() as c:
        from sqlalchemy import insert
        from dealersync.store.tables import FEED_TABLES
        c.execute(insert(FEED_TABLES["vehicles"]).values(vin=vin, sale_date=date(2026, 9, 1), dealer_code="GZ0012",
                                                         source_file="t", source_row=1, load_id=0,
                                                         ingested_at=__import__("datetime").datetime.now()))
        _add_ro(c, "SB1", vin, "2026-09-05 09:00:00", "2026-09-06 10:00:00", complaint="发动机异响", km=300)
        for i, (o, cl) in enumerate([("2026-09-20 09:00:00", "2026-09-30 09:00:00"), ("2026-10-05 09:00:00", "2026-10-12 09:00:00"),
                                     ("2026-10-15 09:00:00", "2026-10-25 09:00:00")]):
            _add_ro(c, f"SB{i + 2}", vin, o, cl, complaint="刹车异响", km=2000 + i * 500)
        _add_ro(c, "SB9", vin, "2026-10-26 09:00:00", "2026-10-27 09:00:00", repair_type="保养", complaint="保养")
        got = {a["rule"] for a in alerts(c, DAY) if a["vin"] == vin}
    assert got == {"SERIOUS_7D", "MAJOR_60D", "REPAIR_DAYS_30"}
    with store.begin() as c:
        _add_ro(c, "SB5", vin, "2026-11-01 09:00:00", "2026-11-01 18:00:00", complaint="刹车异响", km=4000)
        got = {a["rule"] for a in alerts(c, DAY) if a["vin"] == vin}
    assert "SAME_FAULT_4" in got


def test_daily_list_xlsx_masks_contacts(store, tmp_path):
    crm_sync.plan_tasks(store, DAY, Rules())
    with store.begin() as c:
        df = due_list(c, DAY)
    assert len(df)
    out = tmp_path / "list.xlsx"
    write_xlsx(df, out, DAY)
    wb = openpyxl.load_workbook(out)
    summary = wb["汇总"]
    assert summary.cell(row=summary.max_row, column=1).value == "合计"
    assert summary.cell(row=summary.max_row, column=2).value == len(df)
    assert all(ws.title[0] >= "\u4e00" for ws in wb.worksheets)   # Chinese sheet names
    cells = [str(v) for ws in wb.worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True) for v in row if v]
    assert any("****" in v for v in cells)
    assert not any(v.isdigit() and len(v) == 11 for v in cells)
    write_xlsx(df, out, DAY, unmasked=True)
    cells = [str(v) for ws in openpyxl.load_workbook(out).worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True)
             for v in row if v]
    assert any(v.isdigit() and len(v) == 11 for v in cells)


@pytest.mark.parametrize("facts,expected", [
    (dict(bought=2, vehicles=2, last_purchase="2024-01-01", last_service="2026-10-01"), "VIP"),
    (dict(bought=1, vehicles=1, last_purchase="2026-06-01", last_service=None), "NEW"),
    (dict(bought=1, vehicles=1, last_purchase="2023-01-01", last_service="2026-09-01"), "BASE"),
    (dict(bought=0, vehicles=1, last_purchase=None, last_service="2026-09-01"), "BASE"),
    (dict(bought=1, vehicles=1, last_purchase="2023-01-01", last_service="2025-06-01"), "LOST"),
    (dict(bought=0, vehicles=0, lead_defeated=1), "DEFEATED"),
    (dict(bought=0, vehicles=0, lead_open=1), "POTENTIAL"),
])
def test_segments(facts, expected):
    import pandas as pd
    base = dict(bought=0, vehicles=0, last_purchase=None, last_service=None, lead_open=0, lead_defeated=0)
    f = pd.DataFrame([base | facts], index=["M1"])
    for c in ("last_purchase", "last_service"):
        f[c] = pd.to_datetime(f[c])
    assert segments(f, DAY, Rules()).loc["M1"] == expected
