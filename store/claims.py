"""Warranty claim jobs and their submissions: the store's side of ``services/claims.py``.

In the manner of Prefect's server models: every function takes a ``Connection`` first and never
commits; creates are idempotent (insert on conflict do nothing); answers are values (``rowcount > 0``);
status words are :class:`~dealersync.store.tables.JobStatus` and
:class:`~dealersync.store.tables.SubmissionState` (check constraints, migration 0011l).

Status transitions only move forward (issue #15): every status write is a compare-and-set on the
status the caller expects, so a second ``claims submit`` running alongside never moves a claim back
(an acknowledged claim stays SUBMITTED). A submission is sent by exactly one process: it is taken by a
compare-and-set on its state and attempt count, and a SENDING submission whose sender died (same host:
its pid is gone; elsewhere: older than the stale timeout) is taken over and sent again, same BODID.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .ledger import holder_alive, now
from .tables import FEED_TABLES, JobStatus, SubmissionState, claim_submission, warranty_claim_job

PREPARABLE = (JobStatus.DRAFT.value, JobStatus.VALIDATION_FAILED.value)


def _insert(conn: Connection, table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# ------------------------------------------------------------------------------------ jobs

def add_jobs_from_dms(conn: Connection, window_days: int) -> int:
    """A claim job (DRAFT) for every DMS warranty claim not yet known, with the RO's completion day and
    the claim window's last day (completion + ``window_days``). Idempotent: a job another process
    created meanwhile is left alone (insert on conflict do nothing).

    Returns:
        The number of jobs this call created."""
    wc, ro = FEED_TABLES["warranty_claims"], FEED_TABLES["repair_orders"]
    have = {(d, c) for d, c in conn.execute(select(warranty_claim_job.c.dealer_code, warranty_claim_job.c.claim_no))}
    rows = conn.execute(select(wc.c.dealer_code, wc.c.claim_no, wc.c.ro_number, wc.c.vin, wc.c.claim_amount,
                               ro.c.closed_at, ro.c.delivered_at)
                        .join(ro, (ro.c.dealer_code == wc.c.dealer_code) & (ro.c.ro_number == wc.c.ro_number),
                              isouter=True)).mappings().all()
    stamp = now()
    new = []
    for r in rows:
        if (r["dealer_code"], r["claim_no"]) in have:
            continue
        done = r["closed_at"] or r["delivered_at"]
        new.append(dict(dealer_code=r["dealer_code"], claim_no=r["claim_no"], ro_number=r["ro_number"], vin=r["vin"],
                        local_status=JobStatus.DRAFT.value, submission_count=1, claimed_amount=r["claim_amount"],
                        ro_completed=done.date() if done else None,
                        deadline=(done.date() + timedelta(days=window_days)) if done else None,
                        created_at=stamp, updated_at=stamp))
    n = 0
    for i in range(0, len(new), 5000):
        res = conn.execute(_insert(conn, warranty_claim_job).on_conflict_do_nothing(
            index_elements=["dealer_code", "claim_no"]), new[i:i + 5000])
        n += max(res.rowcount, 0)
    return n


def preparable_ids(conn: Connection) -> list[int]:
    """Ids of the jobs waiting to be prepared (DRAFT, VALIDATION_FAILED), in id order."""
    return conn.execute(select(warranty_claim_job.c.id).where(warranty_claim_job.c.local_status.in_(PREPARABLE))
                        .order_by(warranty_claim_job.c.id)).scalars().all()


def preparable_jobs(conn: Connection, ids: list[int]) -> list[dict]:
    """The jobs of ``ids`` that are still DRAFT or VALIDATION_FAILED now (another process may have
    prepared or sent some since the ids were read)."""
    q = select(warranty_claim_job).where(warranty_claim_job.c.id.in_(ids),
                                         warranty_claim_job.c.local_status.in_(PREPARABLE))
    return [dict(r) for r in conn.execute(q.order_by(warranty_claim_job.c.id)).mappings()]


def refresh_completion(conn: Connection, window_days: int) -> int:
    """Jobs not yet sent follow their repair order: completion date and deadline once it closes.
    Returns the number of jobs updated."""
    ro = FEED_TABLES["repair_orders"]
    rows = conn.execute(select(warranty_claim_job.c.id, ro.c.closed_at, ro.c.delivered_at)
                        .join(ro, (ro.c.dealer_code == warranty_claim_job.c.dealer_code)
                              & (ro.c.ro_number == warranty_claim_job.c.ro_number))
                        .where(warranty_claim_job.c.local_status.in_(PREPARABLE),
                               warranty_claim_job.c.ro_completed.is_(None))).all()
    n = 0
    for jid, closed, delivered in rows:
        done = closed or delivered
        if done:
            n += conn.execute(update(warranty_claim_job).where(
                warranty_claim_job.c.id == jid, warranty_claim_job.c.local_status.in_(PREPARABLE)).values(
                ro_completed=done.date(), deadline=done.date() + timedelta(days=window_days))).rowcount
    return n


def set_job_status(conn: Connection, job_id: int, status: JobStatus, expected: tuple[str, ...], **values) -> bool:
    """Compare-and-set a job's local status: only from one of ``expected``.

    Returns:
        True when the job moved; False when it was no longer in an expected status."""
    q = (update(warranty_claim_job)
         .where(warranty_claim_job.c.id == job_id, warranty_claim_job.c.local_status.in_(expected))
         .values(local_status=JobStatus(status).value, updated_at=now(), **values))
    return conn.execute(q).rowcount > 0


def set_claim_status(conn: Connection, dealer_code: str, claim_no: str, status: JobStatus,
                     expected: tuple[str, ...], **values) -> bool:
    """:func:`set_job_status` by the claim's natural key."""
    q = (update(warranty_claim_job)
         .where(warranty_claim_job.c.dealer_code == dealer_code, warranty_claim_job.c.claim_no == claim_no,
                warranty_claim_job.c.local_status.in_(expected))
         .values(local_status=JobStatus(status).value, updated_at=now(), **values))
    return conn.execute(q).rowcount > 0


def acknowledge(conn: Connection, dealer_code: str, claim_no: str, **values) -> bool:
    """The portal acknowledged the claim: SUBMITTED, unless a status poll already moved its OEM status
    beyond SUBMITTED (never move a claim back)."""
    q = (update(warranty_claim_job)
         .where(warranty_claim_job.c.dealer_code == dealer_code, warranty_claim_job.c.claim_no == claim_no,
                or_(warranty_claim_job.c.oem_status.is_(None), warranty_claim_job.c.oem_status == "SUBMITTED",
                    warranty_claim_job.c.local_status != JobStatus.SUBMITTED.value))
         .values(local_status=JobStatus.SUBMITTED.value, oem_status="SUBMITTED", updated_at=now(), **values))
    return conn.execute(q).rowcount > 0


# ------------------------------------------------------------------------------------ submissions

def last_submission(conn: Connection, dealer_code: str, claim_no: str, submission_count: int) -> dict | None:
    """The latest revision of a submission (revision, content_hash, state), or None."""
    r = conn.execute(select(claim_submission.c.revision, claim_submission.c.content_hash, claim_submission.c.state)
                     .where(claim_submission.c.dealer_code == dealer_code, claim_submission.c.claim_no == claim_no,
                            claim_submission.c.submission_count == submission_count)
                     .order_by(claim_submission.c.revision.desc()).limit(1)).mappings().first()
    return dict(r) if r else None


def add_submission(conn: Connection, **values) -> bool:
    """Store a PREPARED submission (idempotent on dealer, claim, count and revision, and on its BODID).

    Returns:
        True when stored; False when the same submission was stored already (by another process)."""
    row = dict(values, state=SubmissionState.PREPARED.value, attempts=0, prepared_at=now())
    ins = _insert(conn, claim_submission).values(**row).on_conflict_do_nothing()
    return conn.execute(ins.returning(claim_submission.c.id)).first() is not None


def due_submissions(conn: Connection, limit: int | None = None) -> list[dict]:
    """Submissions to send: PREPARED, SENDING (an interrupted or concurrent send: see
    :func:`take_submission`) and FAILED without an answer (exhausted retries)."""
    c = claim_submission.c
    q = (select(claim_submission).where(c.state.in_((SubmissionState.PREPARED.value, SubmissionState.SENDING.value))
                                        | ((c.state == SubmissionState.FAILED.value) & c.http_status.is_(None)))
         .order_by(c.id))
    if limit:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def take_submission(conn: Connection, sub: dict, me: str, stale_seconds: float) -> bool:
    """Take ``sub`` (as read by :func:`due_submissions`) for sending by ``me``: compare-and-set on its
    state and attempt count, to SENDING with one more attempt. A SENDING submission is taken only when
    its sender is gone (see :func:`~dealersync.store.ledger.holder_alive`).

    Returns:
        True when this process now holds it; False when another process does."""
    if sub["state"] == SubmissionState.SENDING.value and holder_alive(sub.get("claimed_by"), sub.get("sent_at"),
                                                                      stale_seconds, me):
        return False
    q = (update(claim_submission)
         .where(claim_submission.c.id == sub["id"], claim_submission.c.state == sub["state"],
                claim_submission.c.attempts == sub["attempts"])
         .values(state=SubmissionState.SENDING.value, attempts=claim_submission.c.attempts + 1, sent_at=now(),
                 claimed_by=me))
    return conn.execute(q).rowcount > 0


def record_answer(conn: Connection, sub_id: int, me: str, state: SubmissionState, http_status: int, answer: str,
                  acked_at: datetime | None = None) -> bool:
    """The portal's answer to a submission this process is sending (compare-and-set: SENDING by ``me``)."""
    q = (update(claim_submission)
         .where(claim_submission.c.id == sub_id, claim_submission.c.state == SubmissionState.SENDING.value,
                claim_submission.c.claimed_by == me)
         .values(state=SubmissionState(state).value, http_status=http_status, answer=answer, acked_at=acked_at))
    return conn.execute(q).rowcount > 0
