"""Survey results sent to the OEM portal (``survey_push``, one row per CRM survey activity) and the
report upload ledger (``report_upload``, one row per report type, period and content): the store's
side of ``services/surveys.py`` and ``services/reports/publish.py``.

Every function takes a ``Connection`` first and never commits; a ledger row is created once per
natural key (survey: its document id; report: type, period, SHA-256) with insert on conflict do
nothing, so two runs at the same time write one row and both read it; answers are values.
"""
from __future__ import annotations

import json

from sqlalchemy import Connection, select, update

from .db import dialect_insert, upsert
from .ledger import now
from .tables import SurveyPushStatus, crm_activity, report_upload, survey_push

FINISHED = tuple(s.value for s in (SurveyPushStatus.SENT, SurveyPushStatus.SKIPPED, SurveyPushStatus.REJECTED))


# ------------------------------------------------------------------------------------ survey results

def unsent_surveys(conn: Connection) -> list[dict]:
    """SURVEY activities not yet SENT, SKIPPED or REJECTED, by time."""
    done = set(conn.execute(select(survey_push.c.document_id).where(survey_push.c.status.in_(FINISHED))).scalars())
    return [dict(a) for a in conn.execute(select(crm_activity).where(crm_activity.c.type == "SURVEY")
                                          .order_by(crm_activity.c.occurred_at)).mappings()
            if a["activity_id"] not in done]


def survey(conn: Connection, document_id: str) -> dict | None:
    r = conn.execute(select(survey_push).where(survey_push.c.document_id == document_id)).mappings().first()
    return dict(r) if r else None


def save_survey(conn: Connection, *, document_id: str, **values) -> None:
    """Upsert a survey's push row (natural key: its document id)."""
    upsert(conn, survey_push, dict(document_id=document_id, **values), ["document_id"])


def survey_answered(conn: Connection, document_id: str, status: str, answer: dict, reasons: list[str]) -> bool:
    """The portal's answer to a survey result (its body kept, 2000 characters at most)."""
    return conn.execute(update(survey_push).where(survey_push.c.document_id == document_id).values(
        status=status, answer=json.dumps(answer, ensure_ascii=False)[:2000], reason=",".join(reasons) or None,
        updated_at=now())).rowcount > 0


def survey_answers(conn: Connection) -> list[dict]:
    """activity_id, contact_external_id, occurred_at, answers (JSON text) of every SURVEY activity."""
    c = crm_activity.c
    return [dict(r) for r in conn.execute(select(c.activity_id, c.contact_external_id, c.occurred_at, c.answers)
                                          .where(c.type == "SURVEY")).mappings()]


# ------------------------------------------------------------------------------------ report uploads

def _where(report_type: str, period: str, sha256: str):
    c = report_upload.c
    return c.report_type == report_type, c.period == period, c.sha256 == sha256


def upload(conn: Connection, report_type: str, period: str, sha256: str) -> dict | None:
    """The ledger row of one report content, or None."""
    r = conn.execute(select(report_upload).where(*_where(report_type, period, sha256))).mappings().first()
    return dict(r) if r else None


def add_upload(conn: Connection, *, report_type: str, period: str, sha256: str, **values) -> dict:
    """The ledger row of one report content, created (``values``) unless it exists: idempotent on
    (type, period, SHA-256); the row another process wrote first is returned as it is."""
    ins = dialect_insert(conn, report_upload).values(report_type=report_type, period=period, sha256=sha256, **values)
    conn.execute(ins.on_conflict_do_nothing(index_elements=["report_type", "period", "sha256"]))
    return upload(conn, report_type, period, sha256)


def set_upload(conn: Connection, upload_id: int, **values) -> bool:
    """Write the portal's answer (status, receipt, uploaded_at) or the SFTP status to one ledger row."""
    return conn.execute(update(report_upload).where(report_upload.c.id == upload_id).values(**values)).rowcount > 0
