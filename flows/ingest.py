"""Flow ``ingest_dms_exports``: a folder in, each new file ingested in its own task."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from dealersync.errors import BadSourceData
from dealersync.services.ingest import FileResult, done_marker_required, ingest_file, pending_files
from dealersync.schemas.profiles import load_profiles
from dealersync.store.db import make_engine, upgrade

from .common import finish, settings_with_privacy, task_runner, transient_only


@task(name="ingest-file", retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient_only,
      task_run_name="ingest {path}")
def ingest_one(path: str, feed: str | None = None, profile: str | None = None, dealer: str | None = None) -> dict:
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    try:
        return ingest_file(engine, path, feed=feed, profile=profile or s.profile, dealer=dealer,
                           profiles=load_profiles(s.profile_files), chunk_rows=s.chunk_rows,
                           **({"default_dealer": s.dealer_code} if s.dealer_code else {}),
                           stale_seconds=s.load_stale_seconds).to_json()
    except BadSourceData as e:  # one bad file never stops the others
        return FileResult(file=Path(path).name, path=path, status="rejected", message=str(e)).to_json()


@flow(name="ingest_dms_exports", log_prints=True)
def ingest_dms_exports(folders: list[str] | None = None, feed: str | None = None, profile: str | None = None,
                       dealer: str | None = None, stable_seconds: float | None = None):
    """Ingest every export file in ``folders`` (default: the configured drop folders) not yet in the ledger,
    once complete (its ``.done`` marker when the profile asks for one; unchanged for ``stable_seconds``,
    default: the setting). Ends ``Failed`` (the per-file results as data, and a notification) when a file
    was rejected or failed, or had more than ``quarantine_alert_ratio`` of its rows quarantined; the other
    files are loaded all the same."""
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    stable = s.stable_seconds if stable_seconds is None else stable_seconds
    files = pending_files(engine, folders or [str(p) for p in s.effective_drop_dirs], stable_seconds=stable,
                          require_done_marker=done_marker_required(load_profiles(s.profile_files), s.profile))
    progress = create_progress_artifact(progress=0.0, description=f"{len(files)} file(s) to ingest") if files else None
    results = []
    for i, f in enumerate(files, 1):
        results.append(ingest_one(str(f), feed, profile, dealer))
        if progress:
            update_progress_artifact(progress, progress=100.0 * i / len(files))
    create_table_artifact(key="ingest-summary", table=summary_rows(results) or [{"file": "(nothing new)"}],
                          description=f"{len(results)} file(s) ingested")
    return finish("ingest_dms_exports", results, ingest_problems(results, s.quarantine_alert_ratio), s,
                  {"files": len(results), "rejected": sum(r["status"] == "rejected" for r in results)})


def ingest_problems(results: list[dict], ratio: float) -> list[str]:
    """Files rejected whole, and files with more than ``ratio`` of their rows quarantined (names of
    files and counts only)."""
    out = []
    rejected = [r["file"] for r in results if r["status"] == "rejected"]
    if rejected:
        out.append(f"{len(rejected)} file(s) rejected ({', '.join(rejected[:3])}{'...' if len(rejected) > 3 else ''})")
    failed = [r["file"] for r in results if r["status"] == "failed"]   # a value refused, or changed while read
    if failed:
        out.append(f"{len(failed)} file(s) failed ({', '.join(failed[:3])}{'...' if len(failed) > 3 else ''}; "
                   "`dealersync status`, the ledger says why; tried again on the next run)")
    for r in results:
        read, q = r.get("rows_read") or 0, r.get("rows_quarantined") or 0
        if r["status"] != "rejected" and read and q / read > ratio:
            out.append(f"{r['file']}: {q} of {read} rows quarantined (over {ratio:.0%}; `dealersync quarantine list "
                       f"--file {r['file']}`)")
    return out


def summary_rows(results: list[dict]) -> list[dict]:
    return [{"file": r["file"], "feed": r["feed"], "status": r["status"], "read": r["rows_read"],
             "loaded": r["rows_loaded"], "quarantined": r["rows_quarantined"], "superseded": r["rows_superseded"],
             "value issues": r["value_issues"],
             "top reasons": ", ".join(f"{k} {v}" for k, v in (r.get("top_reasons") or {}).items())}
            for r in results]


@task(name="ingest-dealer", task_run_name="dealer {dealer}")
def ingest_dealer(dealer: str, folders: list[str]) -> list[dict]:
    """One dealer's files, in order (a dealer's days must not race each other)."""
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    files = pending_files(engine, folders, stable_seconds=s.stable_seconds,
                          require_done_marker=done_marker_required(load_profiles(s.profile_files), s.profile))
    return [ingest_one.fn(str(f), None, None, dealer) for f in files]


@flow(name="ingest_dealer_group", log_prints=True)
def ingest_dealer_group(dealers: list[dict]) -> dict:
    """A dealer group's exports: one task per dealer (``{"dealer": code, "folders": [...]}``), fanned out
    through the configured task runner (threads, or Dask with ``task_runner = "dask"``)."""
    s = settings_with_privacy()
    upgrade(make_engine(s.effective_database_url))
    runner_flow = _fan_out.with_options(task_runner=task_runner(s))
    out = runner_flow(dealers)
    create_table_artifact(key="ingest-dealer-group", table=[
        {"dealer": d, "files": len(rs), "loaded": sum(r["rows_loaded"] for r in rs),
         "quarantined": sum(r["rows_quarantined"] for r in rs)} for d, rs in out.items()] or [{"dealer": "(none)"}])
    return out


@flow(name="ingest_dealer_group_fan_out")
def _fan_out(dealers: list[dict]) -> dict:
    futures = {d["dealer"]: ingest_dealer.submit(d["dealer"], d["folders"]) for d in dealers}
    return {dealer: f.result() for dealer, f in futures.items()}
