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

from datetime import date, datetime, timedelta

from sqlalchemy import Connection, and_, func, or_, select, update

from .db import dialect_insert, upsert
from .ledger import holder_alive, now
from .tables import (FEED_TABLES, JobStatus, SubmissionState, claim_status_snapshot, claim_submission, customer_record,
                     oem_cursor, warranty_claim_job)

PREPARABLE = (JobStatus.DRAFT.value, JobStatus.VALIDATION_FAILED.value)


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
        # RETURNING, not rowcount: psycopg answers -1 for an executemany INSERT on PostgreSQL
        res = conn.execute(dialect_insert(conn, warranty_claim_job).on_conflict_do_nothing(
            index_elements=["dealer_code", "claim_no"]).returning(warranty_claim_job.c.id), new[i:i + 5000])
        n += len(res.all())
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
    ins = dialect_insert(conn, claim_submission).values(**row).on_conflict_do_nothing()
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


def find_job(conn: Connection, claim_no: str, dealer_code: str | None = None) -> dict | None:
    """The job of ``claim_no`` (of ``dealer_code`` when given), or None."""
    q = select(warranty_claim_job).where(warranty_claim_job.c.claim_no == claim_no)
    if dealer_code:
        q = q.where(warranty_claim_job.c.dealer_code == dealer_code)
    r = conn.execute(q).mappings().first()
    return dict(r) if r else None


def drop_unsent_submission(conn: Connection, dealer_code: str, claim_no: str, submission_count: int) -> int:
    """Delete a submission the portal never acknowledged (a locally failed claim goes again, rebuilt).

    Returns:
        The number of submissions deleted."""
    return conn.execute(claim_submission.delete().where(
        claim_submission.c.dealer_code == dealer_code, claim_submission.c.claim_no == claim_no,
        claim_submission.c.submission_count == submission_count,
        claim_submission.c.state != SubmissionState.ACKED.value)).rowcount


def update_job(conn: Connection, job_id: int, **values) -> bool:
    """Write ``values`` (and ``updated_at``) to one job; True when it exists."""
    q = update(warranty_claim_job).where(warranty_claim_job.c.id == job_id).values(updated_at=now(), **values)
    return conn.execute(q).rowcount > 0


# ------------------------------------------------------------------------------------ building a claim

def claim_sources(conn: Connection, dealer_code: str, claim_no: str) -> tuple[dict, dict | None, list[dict], str | None]:
    """What a claim is built from: the DMS claim, its repair order (or None), the RO's lines in line
    order, and the master customer of the RO (or None)."""
    wc, ro, lines = FEED_TABLES["warranty_claims"], FEED_TABLES["repair_orders"], FEED_TABLES["repair_order_lines"]
    c = dict(conn.execute(select(wc).where(wc.c.dealer_code == dealer_code, wc.c.claim_no == claim_no)).mappings().one())
    o = conn.execute(select(ro).where(ro.c.dealer_code == dealer_code, ro.c.ro_number == c["ro_number"])).mappings().first()
    ls = conn.execute(select(lines).where(lines.c.dealer_code == dealer_code, lines.c.ro_number == c["ro_number"])
                      .order_by(lines.c.line_no)).mappings().all()
    master = conn.execute(select(customer_record.c.master_id).where(
        customer_record.c.source == "SERVICE", customer_record.c.source_id == f"{dealer_code}:{c['ro_number']}")).scalar()
    return c, (dict(o) if o else None), [dict(x) for x in ls], master


def labor_codes(conn: Connection) -> set[str]:
    """The OEM's labor-operation codes as loaded (LABOROPS); empty when none is loaded yet."""
    t = FEED_TABLES["labor_operations"]
    return {r[0] for r in conn.execute(select(t.c.code))}


# ------------------------------------------------------------------------------------ OEM status

def add_snapshot(conn: Connection, **values) -> bool:
    """Store a status the portal reported (idempotent on dealer, claim, count, status and its time).

    Returns:
        True when new; False when the same snapshot was stored already."""
    ins = dialect_insert(conn, claim_status_snapshot).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg answers -1 for this INSERT on PostgreSQL (every snapshot counted old)
    return conn.execute(ins.returning(claim_status_snapshot.c.id)).first() is not None


def job(conn: Connection, dealer_code: str, claim_no: str) -> dict | None:
    """The job of a claim by its natural key, or None."""
    r = conn.execute(select(warranty_claim_job).where(warranty_claim_job.c.dealer_code == dealer_code,
                                                      warranty_claim_job.c.claim_no == claim_no)).mappings().first()
    return dict(r) if r else None


def latest_snapshot_body(conn: Connection, dealer_code: str, claim_no: str, submission_count: int) -> str | None:
    """The body (JSON text) of a submission's latest status by the portal's time (then by arrival)."""
    c = claim_status_snapshot.c
    return conn.execute(select(c.body).where(c.dealer_code == dealer_code, c.claim_no == claim_no,
                                             c.submission_count == submission_count)
                        .order_by(c.updated_at.desc(), c.id.desc()).limit(1)).scalar()


def cursor(conn: Connection, feed: str = "claims") -> dict | None:
    """The portal change feed's cursor and watermark, or None before the first poll."""
    r = conn.execute(select(oem_cursor).where(oem_cursor.c.feed == feed)).mappings().first()
    return dict(r) if r else None


def save_cursor(conn: Connection, cursor: str | None, watermark: str | None, feed: str = "claims") -> None:
    """Upsert the change feed's cursor and watermark (natural key: the feed)."""
    upsert(conn, oem_cursor, dict(feed=feed, cursor=cursor, watermark=watermark, updated_at=now()), ["feed"])


def count_by_oem_status(conn: Connection) -> dict:
    """{OEM status (None when not yet reported): jobs}."""
    return dict(conn.execute(select(warranty_claim_job.c.oem_status, func.count())
                             .group_by(warranty_claim_job.c.oem_status)).all())


# ------------------------------------------------------------------------------------ reading

def list_jobs(conn: Connection, status: str | None = None) -> list[dict]:
    """Jobs by deadline, optionally those whose local or OEM status is ``status``."""
    j = warranty_claim_job.c
    q = select(j.claim_no, j.ro_number, j.vin, j.local_status, j.oem_status, j.oem_status_raw, j.submission_count,
               j.claimed_amount, j.to_be_paid, j.deadline).order_by(j.deadline, j.claim_no)
    if status:
        q = q.where(or_(j.local_status == status.upper(), j.oem_status == status.upper()))
    return [dict(r) for r in conn.execute(q).mappings()]


def near_deadline(conn: Connection, today: date, days: int) -> list[dict]:
    """Jobs not yet SUBMITTED whose deadline falls within ``today`` .. ``today + days``."""
    j = warranty_claim_job.c
    q = (select(j.claim_no, j.ro_number, j.local_status, j.deadline)
         .where(j.local_status != JobStatus.SUBMITTED.value, j.deadline.is_not(None), j.deadline >= today,
                j.deadline <= today + timedelta(days=days))
         .order_by(j.deadline))
    return [dict(r) for r in conn.execute(q).mappings()]


def history(conn: Connection, claim_no: str) -> tuple[list[dict], list[dict]]:
    """(submissions by count, statuses by time) of a claim number."""
    s, t = claim_submission.c, claim_status_snapshot.c
    subs = conn.execute(select(s.submission_count, s.bodid, s.state, s.http_status, s.attempts, s.sent_at, s.acked_at)
                        .where(s.claim_no == claim_no).order_by(s.submission_count)).mappings()
    subs = [dict(x) for x in subs]
    snaps = conn.execute(select(t.submission_count, t.status_code, t.status_raw, t.to_be_paid, t.updated_at, t.body)
                         .where(t.claim_no == claim_no).order_by(t.updated_at, t.id)).mappings()
    return subs, [dict(x) for x in snaps]


def failed(conn: Connection, status: str) -> list[dict]:
    """Jobs whose local or OEM status is ``status``, each with its errors and the DMS claim's columns
    (source file and row included; None when the DMS claim is gone)."""
    dc = FEED_TABLES["warranty_claims"]
    j = warranty_claim_job.c
    q = (select(j.claim_no, j.errors, j.last_error, dc)
         .join(dc, and_(dc.c.dealer_code == j.dealer_code, dc.c.claim_no == j.claim_no), isouter=True)
         .where((j.local_status == status.upper()) | (j.oem_status == status.upper()))
         .order_by(j.claim_no))
    return [dict(r) for r in conn.execute(q).mappings()]


def status_counts(conn: Connection, today: date, warning_days: int) -> dict:
    """{"local": {status: n}, "oem": {status: n}, "approaching_deadline": n} for the status overview."""
    j = warranty_claim_job.c
    local = dict(conn.execute(select(j.local_status, func.count()).group_by(j.local_status)).all())
    oem = dict(conn.execute(select(j.oem_status, func.count()).where(j.oem_status.is_not(None))
                            .group_by(j.oem_status)).all())
    near = conn.execute(select(func.count()).select_from(warranty_claim_job).where(
        j.local_status != JobStatus.SUBMITTED.value, j.deadline >= today,
        j.deadline <= today + timedelta(days=warning_days))).scalar()
    return {"local": local, "oem": oem, "approaching_deadline": near}
