"""The status overview's figures (``dealersync status``): when each job last did something, read from
each job's own ledger. Read only; a ``Connection`` first; plain values back."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from .tables import claim_submission, crm_cursor, crm_push, customer_record, ingest_file, oem_cursor, sftp_transfer


def last_activity(conn: Connection) -> dict[str, datetime | None]:
    """{job name: the latest time its ledger records} (None: never ran)."""
    def one(q):
        return conn.execute(q).scalar()
    return {
        "ingest_dms_exports": one(select(func.max(ingest_file.c.finished_at)).where(ingest_file.c.source == "DMS")),
        "pull_sftp_drops": one(select(func.max(sftp_transfer.c.finished_at)).where(sftp_transfer.c.direction == "PULL")),
        "push_sftp_reports": one(select(func.max(sftp_transfer.c.finished_at)).where(sftp_transfer.c.direction == "PUSH")),
        "resolve_customers": one(select(func.max(customer_record.c.decided_at))),
        "pull_crm": one(select(func.max(crm_cursor.c.updated_at))),
        "push_crm": one(select(func.max(crm_push.c.pushed_at))),
        "push_warranty_claims": one(select(func.max(claim_submission.c.sent_at))),
        "poll_claim_status": one(select(func.max(oem_cursor.c.updated_at))),
    }


def file_counts(conn: Connection) -> dict:
    """{load status: files} of the ingest ledger."""
    return dict(conn.execute(select(ingest_file.c.status, func.count()).group_by(ingest_file.c.status)).all())
