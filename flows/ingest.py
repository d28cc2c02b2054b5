"""Flow ``ingest_dms_exports``: a folder in, each new file ingested in its own task."""
from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from dealersync.errors import BadSourceData
from dealersync.privacy import render_exception
from dealersync.services.worklists import reason_zh
from dealersync.services.ingest import FileResult
from dealersync.services.jobs import ingest_path, pending

from .common import RETRY, context, flow, task, finish, task_runner


@task(name="ingest-file", task_run_name="ingest {path}", **RETRY)
def ingest_one(path: str, feed: str | None = None, profile: str | None = None, dealer: str | None = None) -> dict:
    with context() as ctx:
        try:
            return ingest_path(ctx, path, feed=feed, profile=profile, dealer=dealer).to_json()
        except BadSourceData as e:  # one bad file never stops the others
            return FileResult(file=Path(path).name, path=path, status="rejected", message=render_exception(e)).to_json()


@flow(name="ingest_dms_exports", log_prints=True)
def ingest_dms_exports(folders: list[str] | None = None, feed: str | None = None, profile: str | None = None,
                       dealer: str | None = None, stable_seconds: float | None = None):
    """Ingest every export file in ``folders`` (default: the configured drop folders) not yet in the ledger,
    once complete (its ``.done`` marker when the profile asks for one; unchanged for ``stable_seconds``,
    default: the setting). Ends ``Failed`` (the per-file results as data, and a notification) when a file
    was rejected or failed, or had more than ``quarantine_alert_ratio`` of its rows quarantined; the other
    files are loaded all the same."""
    with context() as ctx:
        s = ctx.settings
        files = pending(ctx, folders or [str(p) for p in s.effective_drop_dirs], stable_seconds)
    progress = create_progress_artifact(progress=0.0, description=f"{len(files)} file(s) to ingest") if files else None
    results = []
    for i, f in enumerate(files, 1):
        results.append(ingest_one(str(f), feed, profile, dealer))
        if progress:
            update_progress_artifact(progress, progress=100.0 * i / len(files))
    create_table_artifact(key="ingest-summary", table=summary_rows(results) or [{"说明": "没有新文件 (nothing new)"}],
                          description=summary_words(results))
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
    return [{"文件": r["file"], "数据类型": r["feed"], "状态": STATUS_ZH.get(r["status"], r["status"]), "读取": r["rows_read"],
             "入库": r["rows_loaded"], "隔离": r["rows_quarantined"], "被后行替代": r["rows_superseded"],
             "值问题": r["value_issues"],
             "主要原因": "，".join(f"{reason_zh(k)} {v}" for k, v in (r.get("top_reasons") or {}).items())}
            for r in results]


STATUS_ZH = {"loaded": "已入库", "skipped": "相同文件已入库过", "rejected": "整个文件被拒"}


def summary_words(results: list[dict]) -> str:
    """One line in words: files, rows loaded and quarantined, where to look."""
    if not results:
        return "没有新文件需要入库。"
    n = lambda k: sum(r.get(k) or 0 for r in results)   # noqa: E731
    rejected = sum(r["status"] == "rejected" for r in results)
    return (f"处理 {len(results)} 个文件（{rejected} 个被拒），入库 {n('rows_loaded')} 行，隔离 {n('rows_quarantined')} 行"
            f"（`dealersync quarantine list --xlsx 隔离行.xlsx`），值问题 {n('value_issues')} 个。")


@task(name="ingest-dealer", task_run_name="dealer {dealer}")
def ingest_dealer(dealer: str, folders: list[str]) -> list[dict]:
    """One dealer's files, in order (a dealer's days must not race each other)."""
    with context() as ctx:
        files = pending(ctx, folders)
    return [ingest_one.fn(str(f), None, None, dealer) for f in files]


@flow(name="ingest_dealer_group", log_prints=True)
def ingest_dealer_group(dealers: list[dict]) -> dict:
    """A dealer group's exports: one task per dealer (``{"dealer": code, "folders": [...]}``), fanned out
    through the configured task runner (threads, or Dask with ``task_runner = "dask"``)."""
    runner_flow = _fan_out.with_options(task_runner=task_runner())
    out = runner_flow(dealers)
    create_table_artifact(key="ingest-dealer-group", table=[
        {"经销商": d, "文件数": len(rs), "入库行数": sum(r["rows_loaded"] for r in rs),
         "隔离行数": sum(r["rows_quarantined"] for r in rs)} for d, rs in out.items()] or [{"说明": "没有经销商的文件"}],
        description=summary_words([r for rs in out.values() for r in rs]))
    return out


@flow(name="ingest_dealer_group_fan_out")
def _fan_out(dealers: list[dict]) -> dict:
    futures = {d["dealer"]: ingest_dealer.submit(d["dealer"], d["folders"]) for d in dealers}
    return {dealer: f.result() for dealer, f in futures.items()}
