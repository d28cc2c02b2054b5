"""Flows ``pull_sftp_drops`` and ``push_sftp_reports``: thin wrappers over dealersync.services.jobs."""
from __future__ import annotations

from prefect.artifacts import create_table_artifact

from dealersync.services import jobs

from .common import RETRY, context, flow, task


@task(name="sftp-pull", **RETRY)
def pull_task() -> list[dict]:
    with context() as ctx:
        return jobs.sftp_pull(ctx)


@task(name="sftp-push", **RETRY)
def push_task(files: list[str] | None = None) -> list[dict]:
    with context() as ctx:
        return jobs.sftp_push(ctx, files)


@flow(name="pull_sftp_drops")
def pull_sftp_drops() -> list[dict]:
    """Download the OEM's (and the DMS's) new drops and ingest them; the transfer ledger makes a
    retry safe."""
    results = pull_task()
    create_table_artifact(key="sftp-pull", table=[
        {"文件": r["file"], "字节": r["size"], "入库状态": (r["ingest"] or {}).get("status"),
         "读取行数": (r["ingest"] or {}).get("rows_read"), "隔离行数": (r["ingest"] or {}).get("rows_quarantined")}
        for r in results] or [{"说明": "没有新文件"}],
        description=f"从厂家 SFTP 取回 {len(results)} 个新文件并入库")
    return results


@flow(name="push_sftp_reports")
def push_sftp_reports(files: list[str] | None = None) -> list[dict]:
    """Upload reports (default: the outbox) to /inbound/<dealer>/; identical bytes are not resent."""
    results = push_task(files)
    sent = sum(r["status"] == "uploaded" for r in results)
    create_table_artifact(key="sftp-push", table=[{"文件": r["file"], "远端路径": r["remote"],
                                                   "状态": "已上传 uploaded" if r["status"] == "uploaded" else "相同文件已上传过，跳过",
                                                   "时间": r["receipt"]} for r in results] or [{"说明": "发件箱为空"}],
                          description=f"上传 {sent} 个文件，{len(results) - sent} 个相同文件此前已上传")
    return results
