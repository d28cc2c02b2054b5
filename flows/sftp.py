"""Flows ``pull_sftp_drops`` and ``push_sftp_reports``."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from dealersync.connectors.sftp import SftpConnector, SftpSettings
from dealersync.services import sftp_jobs
from dealersync.store.db import make_engine, upgrade

from .common import SFTP_SETTINGS, settings_with_privacy, transient_only


def _setup():
    s = settings_with_privacy()
    s.require(*SFTP_SETTINGS)   # the OEM's folders are named by our dealer code: no default
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    return s, engine, SftpConnector(SftpSettings.from_settings(s))


@task(name="sftp-pull", retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def pull_task() -> list[dict]:
    s, engine, connector = _setup()
    return sftp_jobs.pull_all(engine, connector, s)


@task(name="sftp-push", retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
def push_task(files: list[str]) -> list[dict]:
    s, engine, connector = _setup()
    return sftp_jobs.push(engine, connector, [Path(f) for f in files], dealer=s.dealer_code)


@flow(name="pull_sftp_drops")
def pull_sftp_drops() -> list[dict]:
    """Download the OEM's (and the DMS's) new drops and ingest them; the transfer ledger makes a
    retry safe."""
    results = pull_task()
    create_table_artifact(key="sftp-pull", table=[
        {"file": r["file"], "bytes": r["size"], "status": (r["ingest"] or {}).get("status"),
         "read": (r["ingest"] or {}).get("rows_read"), "quarantined": (r["ingest"] or {}).get("rows_quarantined")}
        for r in results] or [{"file": "(nothing new)"}])
    return results


@flow(name="push_sftp_reports")
def push_sftp_reports(files: list[str] | None = None) -> list[dict]:
    """Upload reports (default: the outbox) to /inbound/<dealer>/; identical bytes are not resent."""
    s = settings_with_privacy()
    files = files or [str(p) for p in sorted(s.outbox.glob("*")) if p.is_file()]
    results = push_task(files)
    create_table_artifact(key="sftp-push", table=results or [{"file": "(nothing to send)"}])
    return results
