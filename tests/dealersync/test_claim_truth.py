"""What leaves for the portal and what the claim record says after a resubmission, over real HTTP
against the sandbox portal, on SQLite and PostgreSQL: free text scrubbed of phone, ID and e-mail
patterns with the count stored (issue #16 item 2); a resubmitted RETURNED claim starts fresh OEM
figures, the returned submission's kept in its history (issue #15)."""
from __future__ import annotations

import json
import re
import sqlite3
import time

from sqlalchemy import insert, select, update

from dealersync.services import claims, surveys
from dealersync.store.tables import (FEED_TABLES, claim_submission, crm_activity, master_customer, survey_push,
                                     warranty_claim_job)
from tests.dealersync.test_claims import TODAY, WINDOW, client_for, jobs, portal, store  # noqa: F401 (fixture)

PII = re.compile(r"1[3-9]\d{9}|\d{17}[\dXx]|[\w.]+@[\w.]+\.cn")
SAID = "客户13912345678反映异响, 身份证11010519491231002X, 邮件 wang.li@example.cn"


def test_a_claims_free_text_reaches_the_portal_scrubbed_and_the_count_is_kept(store, tmp_path):  # noqa: F811
    wc = FEED_TABLES["warranty_claims"]
    with store.begin() as c:
        c.execute(update(wc).values(complaint=SAID, cause="来电 020-87654321 说明"))
    with portal(tmp_path) as url:
        out = claims.push(store, client_for(url), TODAY, WINDOW)
    assert out["queued"] >= 1
    with store.begin() as c:
        subs = c.execute(select(claim_submission.c.payload, claim_submission.c.scrubbed)).all()
    assert subs and all(n == 4 for _, n in subs)
    assert not any(PII.search(p) or "87654321" in p for p, _ in subs)
    assert all("反映异响" in p for p, _ in subs)                    # the fault itself still travels
    sent = [p for (p,) in sqlite3.connect(tmp_path / "p.db").execute("SELECT payload FROM claims")]
    assert sent and not any(PII.search(p) for p in sent)


def test_a_survey_verbatim_reaches_the_portal_scrubbed(store, tmp_path):  # noqa: F811
    with store.begin() as c:
        mid = c.execute(select(master_customer.c.master_id).limit(1)).scalar()
        c.execute(update(master_customer).where(master_customer.c.master_id == mid).values(marketing_consent=True))
        c.execute(insert(crm_activity).values(
            activity_id="ACT-V1", type="SURVEY", contact_external_id=mid, related_document=None,
            occurred_at="2026-11-20T08:00:00Z", modified_at="2026-11-20T08:00:00Z", outcome="REACHED",
            survey_type="CSI", pulled_at=TODAY,
            answers=json.dumps([{"questionId": "Q1", "factorCode": "SERVICE_ADVISOR", "numericValue": 5},
                                {"questionId": "Q9", "factorCode": "VERBATIM", "textValue": "有事打我 13912345678"}])))
    with portal(tmp_path) as url:
        out = surveys.push_surveys(store, client_for(url))
    assert out["sent"] == 1
    with store.begin() as c:
        row = c.execute(select(survey_push).where(survey_push.c.document_id == "ACT-V1")).mappings().one()
    assert row["scrubbed"] == 1 and "有事打我" in row["payload"] and not PII.search(row["payload"])


def test_a_resubmitted_claim_starts_fresh_oem_figures_and_keeps_its_history(store, tmp_path):  # noqa: F811
    with portal(tmp_path) as url:
        client = client_for(url)
        claims.push(store, client, TODAY, WINDOW)
        time.sleep(0.8)
        claims.poll_status(store, client)
        returned = [j for j in jobs(store) if j["oem_status"] == "RETURNED"][0]
        no, wc = returned["claim_no"], FEED_TABLES["warranty_claims"]
        with store.begin() as c:   # the returned submission carried figures (as a settled one would)
            c.execute(update(warranty_claim_job).where(warranty_claim_job.c.claim_no == no).values(
                to_be_paid=321.0, payment_cycle="PC202611", settlement_date=TODAY))
            c.execute(update(wc).where(wc.c.claim_no == no).values(claim_amount="888.50"))   # the correction
        claims.resubmit(store, no)
        assert claims.push(store, client, TODAY, WINDOW)["accepted"] == 1
        claims.poll_status(store, client)
    job = [j for j in jobs(store) if j["claim_no"] == no][0]
    assert job["submission_count"] == 2 and job["oem_status"] in ("SUBMITTED", "UNDER_REVIEW")
    assert job["to_be_paid"] is None and job["payment_cycle"] is None and job["settlement_date"] is None
    assert float(job["claimed_amount"]) == 888.50
    with store.begin() as c:
        history = claims.show_claim(c, no)
    assert (1, "RETURNED") in {(s["submission_count"], s["status_code"]) for s in history["statuses"]}
    assert {s["submission_count"] for s in history["submissions"]} == {1, 2}
