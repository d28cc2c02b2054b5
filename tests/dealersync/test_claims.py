"""Claims, statuses, surveys and the CSI report against the sandbox portal over real HTTP."""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date

import openpyxl
import pytest
import requests
from sqlalchemy import select, update

from dealersync.connectors.http import RetryPolicy
from dealersync.connectors.oem import OemClient, OemSettings
from dealersync.services import claims, surveys
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.resolution import service
from dealersync.sandbox.portal import Clock, PortalFaults, create_app
from dealersync.store.tables import claim_status_snapshot, claim_submission, master_customer, warranty_claim_job
from tests.sandbox.server import serving

TODAY = date(2026, 11, 23)
WINDOW = 400   # the sample's repair orders go back a year


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=60, seed=3)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders", "repair_order_lines", "warranty_claims"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
    return engine


def portal(tmp_path, name="p.db", **faults):
    clock = Clock(review_after=0.2, decide_after=0.4, settle_after=0.6, claim_window_days=WINDOW)
    return serving(create_app(tmp_path / name, faults=PortalFaults(**faults), clock=clock))


def client_for(url, **kw) -> OemClient:
    return OemClient(OemSettings(url=url + "/api/v1", client_id="dealersync", client_secret="sandbox-secret",
                                 dealer_number="GZ0012"), policy=RetryPolicy(base=0.01, cap=0.05, attempts=10), **kw)


def stats(url):
    return requests.get(url + "/_sandbox/stats").json()


def jobs(engine):
    with engine.begin() as c:
        return [dict(r) for r in c.execute(select(warranty_claim_job)).mappings()]


def test_client_token_refresh_and_no_retry_of_business_errors(tmp_path):
    with portal(tmp_path, token_lifetime=1) as url:
        client = client_for(url)
        client.labor_operations()
        time.sleep(1.2)   # the cached token has expired on the portal's side
        client.auth.expires = float("inf")   # ...though the client still believes it valid: the 401 path
        assert len(client.labor_operations()) == 12
        assert client.token_refreshes == 2
        before = client.requests_sent
        ans = client.submit_claim({"ApplicationArea": {}}, str(uuid.uuid4()))
        assert ans.status == 422 and client.requests_sent == before + 1


def test_retries_honour_retry_after(tmp_path):
    slept = []
    with portal(tmp_path, throttle_rate=0.5, seed=2) as url:
        client = client_for(url, sleep=slept.append)
        for _ in range(6):
            client.labor_operations()
    assert 1.0 in slept


def test_claims_reach_the_portal_exactly_once_under_faults(store, tmp_path):
    with portal(tmp_path, error_rate=0.2, drop_rate=0.1, expire_rate=0.05, throttle_rate=0.05, seed=4) as url:
        client = client_for(url)
        out = claims.push(store, client, TODAY, WINDOW)
        s = stats(url)
        assert s["errors"] and s["dropped"] and s["expired_tokens"]
        assert out["queued"] >= 5 and out["accepted"] + out["replayed"] + out["duplicates_reconciled"] == out["queued"]
        assert s["claims"] == s["distinct_claims"] == out["queued"]
        again = claims.push(store, client, TODAY, WINDOW)
        assert again["sent"] == 0 and stats(url)["claims"] == out["queued"]
    submitted = [j for j in jobs(store) if j["local_status"] == "SUBMITTED"]
    assert len(submitted) == out["queued"] and all(j["oem_claim_number"] for j in submitted)


def test_a_crash_after_sending_resends_the_same_key(store, tmp_path):
    with portal(tmp_path) as url:
        client = client_for(url)
        real, n = client.submit_claim, []

        def crash_after_send(payload, key):
            real(payload, key)
            n.append(key)
            if len(n) == 3:
                raise KeyboardInterrupt("killed before the answer was recorded")
            return real(payload, key)
        client.submit_claim = crash_after_send
        with pytest.raises(KeyboardInterrupt):
            claims.push(store, client, TODAY, WINDOW, workers=1)
        with store.begin() as c:
            sending = c.execute(select(claim_submission.c.bodid).where(claim_submission.c.state == "SENDING")).scalars().all()
        assert sending == [n[2]]
        client.submit_claim = real
        out = claims.push(store, client, TODAY, WINDOW, workers=1)
        assert out["replayed"] == 1   # the portal's first answer, under the same key
        assert stats(url)["claims"] == stats(url)["distinct_claims"] == len([j for j in jobs(store)
                                                                              if j["local_status"] == "SUBMITTED"])


def test_duplicate_claim_is_reconciled(store, tmp_path):
    with portal(tmp_path) as url:
        client = client_for(url)
        with store.begin() as c:
            claims.sync_jobs(c, WINDOW)
        claims.prepare(store, client, TODAY, WINDOW)
        with store.begin() as c:
            sub = c.execute(select(claim_submission)).mappings().first()
        # the clerk keyed the same claim into the portal by hand (another key)
        other = client.submit_claim(json.loads(sub["payload"]), str(uuid.uuid4()))
        assert other.status == 202
        out = claims.send_queued(store, client, workers=1)
        assert out["duplicates_reconciled"] == 1 and out["failed"] == 0
        job = [j for j in jobs(store) if j["claim_no"] == sub["claim_no"]][0]
        assert job["local_status"] == "SUBMITTED" and job["oem_claim_number"] == other.body["OEMClaimNumberString"]


def test_statuses_snapshots_and_a_returned_claim_resubmitted(store, tmp_path):
    with portal(tmp_path) as url:
        client = client_for(url)
        claims.push(store, client, TODAY, WINDOW)
        time.sleep(0.8)
        first = claims.poll_status(store, client)
        assert first["changes"] > 0
        with store.begin() as c:
            n = len(c.execute(select(claim_status_snapshot.c.id)).all())
            raw = set(c.execute(select(claim_status_snapshot.c.status_raw)).scalars())
        assert {"已上报", "审核中"} <= raw
        again = claims.poll_status(store, client)   # from the cursor: nothing new recorded
        with store.begin() as c:
            assert len(c.execute(select(claim_status_snapshot.c.id)).all()) == n
        assert again["new_snapshots"] == 0
        returned = [j for j in jobs(store) if j["oem_status"] == "RETURNED"]
        assert returned, first
        claims.resubmit(store, returned[0]["claim_no"])
        out = claims.push(store, client, TODAY, WINDOW)
        assert out["accepted"] == 1
        job = [j for j in jobs(store) if j["claim_no"] == returned[0]["claim_no"]][0]
        assert job["submission_count"] == 2 and job["local_status"] == "SUBMITTED"
        with store.begin() as c:
            p = json.loads(c.execute(select(claim_submission.c.payload).where(
                claim_submission.c.claim_no == job["claim_no"], claim_submission.c.submission_count == 2)).scalar())
        assert p["WarrantyClaim"]["WarrantyClaimHeader"]["ClaimSubmissionCountNumeric"] == 2


def test_claims_carry_a_master_reference_and_no_personal_data(store, tmp_path):
    with portal(tmp_path) as url:
        claims.push(store, client_for(url), TODAY, WINDOW)
    with store.begin() as c:
        payloads = c.execute(select(claim_submission.c.payload)).scalars().all()
        names = {n for n in c.execute(select(master_customer.c.name)).scalars() if n}
    assert payloads
    for p in payloads:
        assert not re.search(r"1[3-9]\d{9}", p) and not re.search(r"\d{17}[\dX]", p)
        assert not any(n in p for n in names)
    assert any('"MasterCustomerID": "M' in p for p in payloads)


def test_local_validation_and_deadlines(store, tmp_path):
    with portal(tmp_path) as url:
        out = claims.push(store, client_for(url), TODAY, 30)
    assert out["validation_failed"] > 0
    failed = [j for j in jobs(store) if j["local_status"] == "VALIDATION_FAILED"]
    codes = {e["ErrorCode"] for j in failed for e in json.loads(j["errors"])}
    assert codes <= {"CLAIM_WINDOW_EXPIRED", "MANDATORY_FIELD_MISSING", "INVALID_VIN", "MAIN_PART_MISSING",
                     "MULTIPLE_MAIN_PARTS", "INVALID_REFERENCE"} and "CLAIM_WINDOW_EXPIRED" in codes
    with store.begin() as c:
        c.execute(update(warranty_claim_job).where(warranty_claim_job.c.id == failed[0]["id"])
                  .values(deadline=date(2026, 11, 25)))
        near = claims.approaching_deadline(c, TODAY, 5)
    assert [(x["claim_no"], x["days_left"]) for x in near] == [(failed[0]["claim_no"], 2)]   # expired ones are not "approaching"


def _surveys_in_store(store, tmp_path):
    from dealersync.sandbox.crm import create_app as crm_app
    from dealersync.connectors.crm import CrmClient, CrmSettings
    from dealersync.services import crm_sync
    from dealersync.services.followups import Rules
    with serving(crm_app(tmp_path / "crm.db", seed_leads=0)) as curl:
        cc = CrmClient(CrmSettings(url=curl + "/crm/v1", token="sandbox-token"))
        crm_sync.push(store, cc, TODAY, Rules())
        crm_sync.pull(store, cc)


def test_surveys_masked_only_shareable_and_once(store, tmp_path):
    _surveys_in_store(store, tmp_path)
    with portal(tmp_path) as url:
        client = client_for(url)
        out = surveys.push_surveys(store, client)
        assert out["sent"] > 0 and out["skipped"] > 0
        assert surveys.push_surveys(store, client)["sent"] == 0
        assert stats(url)["surveys"] == out["sent"] + out["replayed"]
    from dealersync.store.tables import survey_push
    with store.begin() as c:
        rows = c.execute(select(survey_push.c.payload, survey_push.c.master_id, survey_push.c.status)).all()
        consent = dict(c.execute(select(master_customer.c.master_id, master_customer.c.marketing_consent)).all())
    for payload, mid, status in rows:
        if status == "SENT":
            assert consent[mid] is True
            assert not re.search(r"1[3-9]\d{9}", payload)
            masked = json.loads(payload)["CustomerSurveyResult"]["Respondent"].get("MaskedMobile")
            assert masked is None or re.fullmatch(r"1[3-9]\d\*{4}\d{4}", masked)
        else:
            assert consent.get(mid) is not True


def test_monthly_csi_report_xlsx_and_idempotent_upload(store, tmp_path):
    _surveys_in_store(store, tmp_path)
    month = date.today().strftime("%Y-%m")
    with portal(tmp_path) as url:
        client = client_for(url)
        first = surveys.monthly_csi(store, client, month, tmp_path / "reports", "GZ0012", outbox=tmp_path / "outbox")
        assert first["upload"]["status"] == 201 and first["responses"] > 0
        again = surveys.monthly_csi(store, client, month, tmp_path / "reports", "GZ0012", outbox=tmp_path / "outbox")
        assert again["sha256"] == first["sha256"] and again["upload"]["status"] == "already uploaded"
        with store.begin() as c:   # a corrected month supersedes the earlier file
            c.execute(update(master_customer).values(marketing_consent=False))
            from dealersync.store.tables import crm_activity
            c.execute(crm_activity.delete().where(crm_activity.c.activity_id.in_(
                select(crm_activity.c.activity_id).where(crm_activity.c.type == "SURVEY").limit(1).scalar_subquery())))
        third = surveys.monthly_csi(store, client, month, tmp_path / "reports", "GZ0012")
        assert third["sha256"] != first["sha256"] and third["upload"]["supersedes"] == first["upload"]["reportId"]
        assert stats(url)["reports"] == 2
    wb = openpyxl.load_workbook(first["file"])
    assert {"满意度概览", "不满意客户", "趋势"} <= set(wb.sheetnames)
    # the surveys all fall in one month: one point, so a sentence instead of an empty chart
    assert any("至少两个数据点" in str(v) for row in wb["趋势"].iter_rows(values_only=True) for v in row if v)
    mobiles = [str(v) for row in wb["不满意客户"].iter_rows(min_row=2, values_only=True) for v in row if v]
    assert not any(re.fullmatch(r"1[3-9]\d{9}", v) for v in mobiles)
    assert (tmp_path / "outbox" / f"GZ0012_CSIMONTH_{month.replace('-', '')}.xlsx").exists()
