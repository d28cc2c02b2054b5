"""Flow ``ingest_dms_exports``: a folder in, each new file ingested in its own task."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from dealersync.errors import BadSourceData
from dealersync.ingest import FileResult, ingest_file, pending_files
from schemas.profiles import load_profiles
from store.db import make_engine, upgrade

from .common import settings_with_privacy, transient_only


@task(name="ingest-file", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient_only,
      task_run_name="ingest {path}")
def ingest_one(path: str, feed: str | None = None, profile: str | None = None, dealer: str | None = None) -> dict:
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    try:
        return ingest_file(engine, path, feed=feed, profile=profile or s.profile, dealer=dealer,
                           profiles=load_profiles(s.profile_files), chunk_rows=s.chunk_rows,
                           default_dealer=s.dealer_code).to_json()
    except BadSourceData as e:  # one bad file never stops the others
        return FileResult(file=Path(path).name, path=path, status="rejected", message=str(e)).to_json()


@flow(name="ingest_dms_exports", log_prints=True)
def ingest_dms_exports(folders: list[str] | None = None, feed: str | None = None, profile: str | None = None,
                       dealer: str | None = None) -> list[dict]:
    """Ingest every export file in ``folders`` (default: the configured drop folders) not yet in the ledger."""
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    files = pending_files(engine, folders or [str(p) for p in s.effective_drop_dirs], stable_seconds=s.stable_seconds)
    results = [ingest_one(str(f), feed, profile, dealer) for f in files]
    create_table_artifact(key="ingest-summary", table=summary_rows(results) or [{"file": "(nothing new)"}],
                          description=f"{len(results)} file(s) ingested")
    return results


def summary_rows(results: list[dict]) -> list[dict]:
    return [{"file": r["file"], "feed": r["feed"], "status": r["status"], "read": r["rows_read"],
             "loaded": r["rows_loaded"], "quarantined": r["rows_quarantined"], "superseded": r["rows_superseded"],
             "value issues": r["value_issues"],
             "top reasons": ", ".join(f"{k} {v}" for k, v in (r.get("top_reasons") or {}).items())}
            for r in results]
