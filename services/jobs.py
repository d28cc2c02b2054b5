"""The jobs as both front doors run them: each takes the run context (``services.context``) and calls
the service with the settings, engine, clients and day it holds. A CLI command and its Prefect flow
(or task) call the same function here, so they cannot wire a job differently (issue 14 item 3);
``tests/flows/test_front_doors.py`` runs each job through both and compares what they left in the store.

Prefect-free, like every service. Dates: ``day`` given (``--date``, a flow parameter) or the
context's clock.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from dealersync.resolution import service as resolution
from dealersync.schemas.profiles import load_profiles
from dealersync.services import claims, crm_sync, sanbao, sftp_jobs, surveys
from dealersync.services.context import SFTP_SETTINGS, RunContext
from dealersync.services.followups import Rules
from dealersync.services.ingest import FileResult, done_marker_required, ingest_file, pending_files, read_limits
from dealersync.services.reports.run import Target, run_report
from dealersync.store.locks import RESOLVE, job_lock


# ------------------------------------------------------------------------------------ ingest

def ingest_path(ctx: RunContext, path, *, feed: str | None = None, profile: str | None = None,
                dealer: str | None = None, force: bool = False, progress=None) -> FileResult:
    """One export file into the store (its own transaction); ``BadSourceData`` when it cannot be read."""
    s = ctx.settings
    return ingest_file(ctx.engine, path, feed=feed, profile=profile or s.profile, dealer=dealer,
                       profiles=load_profiles(s.profile_files), chunk_rows=s.chunk_rows,
                       **({"default_dealer": s.dealer_code} if s.dealer_code else {}),
                       force=force, stale_seconds=s.load_stale_seconds, progress=progress,
                       limits=read_limits(s))


def pending(ctx: RunContext, folders, stable_seconds: float | None = None) -> list[Path]:
    """The files of ``folders`` not yet in the ledger and complete (``stable_seconds``: the setting)."""
    s = ctx.settings
    return pending_files(ctx.engine, folders, stable_seconds=s.stable_seconds if stable_seconds is None else stable_seconds,
                         require_done_marker=done_marker_required(load_profiles(s.profile_files), s.profile))


# ------------------------------------------------------------------------------------ master records

def resolve(ctx: RunContext, full: bool = False, mapper=None, progress=None) -> dict:
    """One resolution run, one transaction (a retry starts again from the committed state), one at a
    time on a store (``store.locks.job_lock``: a second waits ``lock_wait_seconds``, or stops saying who runs).
    ``progress``: a callback taking ``resolution.progress.ProgressEvent`` (counts, rate, ETA per stage)."""
    s = ctx.settings
    with job_lock(ctx.engine, RESOLVE, wait_seconds=s.lock_wait_seconds, stale_seconds=s.load_stale_seconds), \
            ctx.engine.begin() as conn:
        return resolution.resolve(conn, full=full, precedence=s.resolution_source_precedence, mapper=mapper,
                                  partition_rows=s.resolution_partition_rows, progress=progress).as_dict()


# ------------------------------------------------------------------------------------ CRM

def crm_pull(ctx: RunContext, modified_since: str | None = None, stateless: bool = False) -> dict:
    return crm_sync.pull(ctx.engine, ctx.crm, modified_since=modified_since, stateless=stateless)


def crm_push_contacts(ctx: RunContext, day: date | None = None) -> dict:
    return crm_sync.push_contacts(ctx.engine, ctx.crm, day or ctx.today(), Rules.from_settings(ctx.settings))


def plan_followups(ctx: RunContext, day: date | None = None) -> dict:
    """The day's follow-up tasks into ``followup_task`` (idempotent)."""
    return crm_sync.plan_tasks(ctx.engine, day or ctx.today(), Rules.from_settings(ctx.settings))


def crm_push_tasks(ctx: RunContext) -> dict:
    return crm_sync.push_tasks(ctx.engine, ctx.crm)


def crm_push(ctx: RunContext, day: date | None = None) -> dict:
    """Changed master customers, then the day's follow-up tasks (planned, then sent)."""
    out = {"contacts": crm_push_contacts(ctx, day), "tasks_planned": plan_followups(ctx, day),
           "tasks": crm_push_tasks(ctx)}
    return {**out, "requests": ctx.crm.requests_sent}


# ------------------------------------------------------------------------------------ OEM portal

def claims_submit(ctx: RunContext, workers: int = 4) -> dict:
    """New claims validated and every queued one sent, the claim window judged as of the context's day."""
    return claims.push(ctx.engine, ctx.portal, ctx.today(), ctx.settings.claim_window_days, workers=workers)


def claims_poll(ctx: RunContext) -> dict:
    return claims.poll_status(ctx.engine, ctx.portal)


def claims_deadlines(ctx: RunContext, days: int | None = None) -> list[dict]:
    with ctx.engine.begin() as conn:
        return claims.approaching_deadline(conn, ctx.today(), days or ctx.settings.claim_deadline_warning_days)


def surveys_push(ctx: RunContext) -> dict:
    return surveys.push_surveys(ctx.engine, ctx.portal)


def csi_report(ctx: RunContext, month: str | None = None, upload: bool = True) -> dict:
    """The month's CSI report (default: last month), uploaded to the portal and queued for SFTP."""
    s = ctx.settings
    s.require("oem_dealer_number")
    return surveys.monthly_csi(ctx.engine, ctx.portal if upload else None, month or surveys.previous_month(ctx.today()),
                               s.data_dir / "reports", s.oem_dealer_number, s.outbox if s.sftp_host else None)


def sanbao_alerts(ctx: RunContext) -> list[dict]:
    with ctx.engine.begin() as conn:
        return sanbao.alerts(conn, ctx.today())


# ------------------------------------------------------------------------------------ SFTP and reports

def sftp_pull(ctx: RunContext) -> list[dict]:
    ctx.settings.require(*SFTP_SETTINGS)   # the OEM's folders are named by our dealer code: no default
    return sftp_jobs.pull_all(ctx.engine, ctx.sftp(), ctx.settings)


def sftp_push(ctx: RunContext, files: list | None = None) -> list[dict]:
    """``files`` (default: everything in the outbox) to /inbound/<dealer>/; identical bytes not resent."""
    s = ctx.settings
    s.require(*SFTP_SETTINGS)
    paths = [Path(f) for f in files] if files else sorted(p for p in s.outbox.glob("*") if p.is_file())
    return sftp_jobs.push(ctx.engine, ctx.sftp(), paths, dealer=s.dealer_code)


def report_target(ctx: RunContext, upload: bool = True) -> Target:
    """Where a report is written and uploaded: files named by ``dealer_code`` (required); the portal
    when ``oem_url`` is set, SFTP when ``sftp_host`` is (neither without ``upload``)."""
    s = ctx.settings
    s.require("dealer_code")
    client = ctx.portal if upload and s.oem_url else None
    push = None
    if upload and s.sftp_host:
        def push(path: Path) -> list[dict]:
            return sftp_push(ctx, [path])
    return Target(s.dealer_code, s.data_dir / "reports", client, s.outbox if upload and s.sftp_host else None, push)


def report(ctx: RunContext, name: str, period, upload: bool = True) -> dict:
    """Build and publish one report (the upload ledger: nothing sent twice)."""
    return run_report(ctx.engine, name, period, report_target(ctx, upload))
