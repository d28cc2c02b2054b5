"""Flows of the information officer's reports (issue #19 items 4-5): one flow per report, each a thin
wrapper over ``dealersync.services.reports.run``, publishing a markdown artifact (the summary in words,
the upload state, a link to the file) and a table artifact with Chinese labels.

Parameters: ``day`` (YYYY-MM-DD), ``week`` (YYYY-Www) or ``month`` (YYYY-MM); none means the previous
day / week / month in Asia/Shanghai, which is what the schedules in ``prefect.yaml`` rely on.
"""
from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dealersync.services import jobs
from dealersync.services.reports.run import REPORTS, period_for, upload_words

from .common import RETRY, context, flow, task


@task(name="report", **RETRY)
def report_task(name: str, day: str | None = None, week: str | None = None, month: str | None = None) -> dict:
    """Build and publish one report; a retry re-runs against the upload ledger (nothing sent twice)."""
    with context() as ctx:
        return jobs.report(ctx, name, period_for(name, day, week=week, month=month))


def markdown(out: dict) -> str:
    """The artifact a person reads: title, one line in words, the upload in words, the file."""
    path = Path(out["file"])
    return (f"### {out['title']}（{out['period']}）\n\n{out['summary']}\n\n"
            f"**上传**：{upload_words(out)}\n\n**文件**：[{path.name}]({path.resolve().as_uri()})\n")


def publish_artifacts(name: str, out: dict) -> None:
    key = f"report-{name}"
    create_markdown_artifact(key=key, markdown=markdown(out), description=out["summary"])
    create_table_artifact(key=f"{key}-table", table=out["table"] or [{"说明": "本期无数据"}],
                          description=f"{out['title']} {out['period']}：{out['summary']}")


def _run(name: str, **period) -> dict:
    out = report_task(name, **period)
    publish_artifacts(name, out)
    print(f"{out['title']} {out['period']}：{out['summary']} {upload_words(out)}")
    return out


@flow(name="salesday_report", log_prints=True)
def salesday_report(day: str | None = None) -> dict:
    """SALESDAY (default: yesterday): CSV to the portal (SALES_DAILY) and SFTP, once per content."""
    return _run("salesday", day=day)


@flow(name="rvweek_report", log_prints=True)
def rvweek_report(week: str | None = None) -> dict:
    """RVWEEK (default: last week): XLSX to SFTP /inbound/<dealer>/, once per content."""
    return _run("rvweek", week=week)


@flow(name="complaint_month_report", log_prints=True)
def complaint_month_report(month: str | None = None) -> dict:
    """COMPLAINTMONTH (default: last month): XLSX to SFTP /inbound/<dealer>/, once per content."""
    return _run("complaints", month=month)


@flow(name="maintenance_solicitation_list", log_prints=True)
def maintenance_solicitation_list(month: str | None = None) -> dict:
    """定保招揽一览表 for the service manager: vehicles due in ``month`` (default: the current month) or
    overdue by up to three months, consenting customers only."""
    return _run("maintenance", month=month)


@flow(name="showroom_statistics", log_prints=True)
def showroom_statistics(week: str | None = None, month: str | None = None) -> dict:
    """展厅来店 / 来电统计 and lead follow-up for the sales manager (default: last week)."""
    return _run("showroom", week=week, month=month)


FLOWS = {"salesday": salesday_report, "rvweek": rvweek_report, "complaints": complaint_month_report,
         "maintenance": maintenance_solicitation_list, "showroom": showroom_statistics}
assert set(FLOWS) == set(REPORTS)
