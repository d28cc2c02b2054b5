"""The store modules per aggregate (issue #14 item 4) on SQLite and PostgreSQL: their creates are
idempotent on the natural key, an upsert keeps what it must keep, and nothing commits on its own (the
caller's transaction decides)."""
from __future__ import annotations

import threading
from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from dealersync.store import claims, crm, followups, surveys
from dealersync.store.tables import (FEED_TABLES, claim_status_snapshot, crm_cursor, crm_lead, crm_push, crm_quarantine,
                                     followup_task, oem_cursor, report_upload, survey_push)

T0, T1 = datetime(2026, 11, 1, 9, 0), datetime(2026, 11, 2, 9, 0)


def _count(engine, table) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar()


def _rows(engine, table) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(table)).mappings()]


def _lead(modified: str, name: str) -> dict:
    return {"leadId": "L1", "name": name, "status": "OPEN", "modifiedAt": modified}


def _task(**kw) -> dict:
    return dict(dict(external_id="RV-D1-RO1", type="RETURN_VISIT", master_id="M1", due_date=date(2026, 11, 3),
                     subject="售后回访", status="OPEN", overdue=False, marketing=False, created_for=date(2026, 11, 1),
                     created_at=T0, updated_at=T0), **kw)


# (name, writes in order, table, expected row count, checks on the one row)
CASES = [
    ("lead: a newer version wins", lambda c: [crm.save_lead(c, _lead("2026-11-01T00:00:00Z", "甲"), T0),
                                             crm.save_lead(c, _lead("2026-11-02T00:00:00Z", "乙"), T1)],
     crm_lead, 1, {"name": "乙", "pulled_at": T1}),
    ("lead: an older version never overwrites", lambda c: [crm.save_lead(c, _lead("2026-11-02T00:00:00Z", "乙"), T0),
                                                           crm.save_lead(c, _lead("2026-11-01T00:00:00Z", "甲"), T1)],
     crm_lead, 1, {"name": "乙", "pulled_at": T0}),
    ("CRM quarantine: once per feed, key and reason; first_seen kept",
     lambda c: [crm.quarantine(c, feed="leads", item_key="L9", reason_code="MISSING_FIELD", message=m, data="{}",
                               seen_at=t) for m, t in (("first", T0), ("again", T1))],
     crm_quarantine, 1, {"message": "again", "first_seen": T0, "last_seen": T1}),
    ("CRM cursor: one row per feed", lambda c: [crm.save_cursor(c, "leads", "p1", "w1", T0),
                                               crm.save_cursor(c, "leads", None, "w2", T1)],
     crm_cursor, 1, {"cursor": None, "watermark": "w2"}),
    ("push ledger: one row per kind and external id",
     lambda c: [crm.record_push(c, kind="CONTACT", external_id="M1", content_hash=h, status="SENT", result="created",
                                attempts=n, pushed_at=T0) for n, h in ((1, "a"), (2, "b"))],
     crm_push, 1, {"content_hash": "b", "attempts": 2}),
    ("task: created once, the first kept", lambda c: [followups.add_task(c, **_task()),
                                                     followups.add_task(c, **_task(subject="again"))],
     followup_task, 1, {"subject": "售后回访"}),
    ("survey push: an upsert on the document id",
     lambda c: [surveys.save_survey(c, document_id="A1", master_id="M1", bodid="b", payload=None, status=s,
                                    reason=None, updated_at=T0, scrubbed=None) for s in ("PREPARED", "SKIPPED")],
     survey_push, 1, {"status": "SKIPPED"}),
    ("report upload: created once per type, period and content, the first kept",
     lambda c: [surveys.add_upload(c, report_type="CSI_MONTHLY", period="2026-10", sha256="ab" * 32, path=p,
                                   bodid="k", status="PREPARED", created_at=T0) for p in ("/a", "/b")],
     report_upload, 1, {"path": "/a"}),
    ("claim status snapshot: once per claim, count, status and time",
     lambda c: [claims.add_snapshot(c, dealer_code="D1", claim_no="C1", submission_count=1, status_code="APPROVED",
                                    body="{}", updated_at="2026-11-01T00:00:00Z", received_at=T0) for _ in range(2)],
     claim_status_snapshot, 1, {"status_code": "APPROVED"}),
    ("OEM cursor: one row", lambda c: [claims.save_cursor(c, "c1", "w1"), claims.save_cursor(c, "c2", "w2")],
     oem_cursor, 1, {"cursor": "c2", "watermark": "w2"}),
]


@pytest.mark.parametrize("name,write,table,n,want", CASES, ids=[c[0] for c in CASES])
def test_idempotent_writes(engine, name, write, table, n, want):
    with engine.begin() as conn:
        answers = write(conn)
    assert _count(engine, table) == n
    row = _rows(engine, table)[0]
    assert {k: row[k] for k in want} == want
    if table in (followup_task, claim_status_snapshot):   # creates answer whether they created
        assert answers == [True, False]
    if table is report_upload:                            # both calls answer the one stored row
        assert answers[0] == answers[1] and answers[1]["path"] == "/a"


def test_nothing_commits_on_its_own(engine):
    with engine.connect() as conn:
        with conn.begin() as tx:
            assert followups.add_task(conn, **_task())
            crm.save_cursor(conn, "leads", "p1", "w1", T0)
            tx.rollback()
    assert _count(engine, followup_task) == 0 and _count(engine, crm_cursor) == 0


def test_two_runs_create_one_report_row_at_the_same_time(engine):
    """Two publishers race on the same content: the second waits for the first's transaction and
    reads its row (PostgreSQL: the unique index waits; SQLite: the write lock)."""
    first_in = threading.Event()
    out = {}

    def second():
        first_in.wait(10)
        with engine.begin() as conn:
            out["second"] = surveys.add_upload(conn, report_type="SALESDAY", period="2026-11-01", sha256="cd" * 32,
                                               path="/second", bodid="k2", status="NO_PORTAL", created_at=T1)

    t = threading.Thread(target=second)
    t.start()
    with engine.begin() as conn:
        out["first"] = surveys.add_upload(conn, report_type="SALESDAY", period="2026-11-01", sha256="cd" * 32,
                                          path="/first", bodid="k1", status="NO_PORTAL", created_at=T0)
        first_in.set()
        t.join(0.5)   # the second is waiting on this transaction
    t.join(20)
    assert not t.is_alive()
    assert out["first"]["id"] == out["second"]["id"] and out["second"]["path"] == "/first"
    assert _count(engine, report_upload) == 1


def test_claim_jobs_from_the_dms_counted_as_created(engine):
    """add_jobs_from_dms answers how many jobs it created (push's ``new_jobs``), on both backends; a
    job that exists is left alone and not counted."""
    wc = FEED_TABLES["warranty_claims"]
    lineage = dict(dealer_code="D1", source_file="D1_CLAIM_20261101.csv", load_id=1, ingested_at=T0)
    with engine.begin() as conn:
        conn.execute(wc.insert(), [dict(lineage, claim_no=f"C{i}", ro_number=f"RO{i}", source_row=i + 2)
                                   for i in range(3)])
        assert claims.add_jobs_from_dms(conn, 30) == 3
        conn.execute(wc.insert(), [dict(lineage, claim_no="C9", ro_number="RO9", source_row=9)])
        assert claims.add_jobs_from_dms(conn, 30) == 1
        assert claims.add_jobs_from_dms(conn, 30) == 0
