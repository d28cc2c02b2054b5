"""One entry point per report for the CLI and the flows: compute the figures for a period, write the
file (deterministic bytes), publish it (:mod:`.publish`) and return what a person needs to read: a
one-line summary in words, the file, the upload state and a small table with Chinese labels."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine

from dealersync.connectors.oem import OemClient
from dealersync.services.xlsx import workbook_bytes

from . import complaints, managers, periods, rvweek, salesday
from .publish import publish, write_atomic


@dataclass
class Target:
    """Where a report goes: ``dealer`` code, local ``out_dir``; the OEM portal ``client`` and the SFTP
    ``outbox`` (with ``push`` to send a file now) for the OEM's reports."""
    dealer: str
    out_dir: Path
    client: OemClient | None = None
    outbox: Path | None = None
    push: Callable[[Path], list[dict]] | None = None


@dataclass(frozen=True)
class ReportDef:
    name: str        # CLI and flow name
    kind: str        # ledger type, file token
    title: str       # Chinese
    period: str      # date, week or month
    to_oem: bool


REPORTS = {r.name: r for r in [
    ReportDef("salesday", "SALESDAY", "销售及库存日报", "date", True),
    ReportDef("rvweek", "RVWEEK", "售后回访周报", "week", True),
    ReportDef("complaints", "COMPLAINTMONTH", "客户投诉处理月报", "month", True),
    ReportDef("maintenance", "PM_SOLICIT", "定保招揽一览表", "month", False),
    ReportDef("showroom", "SHOWROOM", "展厅来店 / 来电统计与意向顾客跟进", "week", False),
]}


def period_for(name: str, value: str | None = None, *, week: str | None = None, month: str | None = None) -> periods.Period:
    """The report's period from ``--date`` (``value``), ``--week`` or ``--month``; the default is the
    previous day / week / month (Asia/Shanghai), the current month for the maintenance list."""
    d = REPORTS[name]
    if name == "maintenance" and not month:   # a solicitation list looks ahead: the current month
        return periods.month(periods.today().strftime("%Y-%m"))
    if month or (d.period == "month" and not week):
        return periods.month(month)
    if week or d.period == "week":
        return periods.week(week)
    return periods.day(value, default=periods.today() - timedelta(days=1))


def run_report(engine: Engine, name: str, period: periods.Period, target: Target) -> dict:
    """Build, write and publish one report; returns ``{"report", "title", "period", "summary", "file",
    "upload", "table"}``."""
    d = REPORTS[name]
    with engine.begin() as conn:
        if name == "salesday":
            fig = salesday.figures(conn, period.start, target.dealer)
            data, ext = salesday.csv_data(fig), "csv"
            text = salesday.summary(fig, period.start)
            table = [dict(zip(salesday.LABELS[2:], [r[h] for h in salesday.HEADER[2:]])) for r in fig["rows"]]
        elif name == "rvweek":
            fig = rvweek.figures(conn, period)
            data, ext, text = workbook_bytes(rvweek.sheets(fig, target.dealer), d.title), "xlsx", rvweek.summary(fig)
            table = [{"服务顾问": r["advisor"], "应回访": r["due"], "拨打": r["calls"], "接通": r["reached"],
                      "未接通": r["not_reached"], "满意": r["satisfied"], "不满意": r["dissatisfied"]} for r in fig["rows"]]
        elif name == "complaints":
            fig = complaints.figures(conn, period)
            data, ext = workbook_bytes(complaints.sheets(fig, target.dealer), d.title), "xlsx"
            text = complaints.summary(fig)
            table = [{"类别": r["category"], "部门": r["department"], "受理": r["received"], "24小时内解决": r["within_24h"],
                      "48小时内解决": r["within_48h"], "未解决": r["open"]} for r in fig["rows"]]
        elif name == "maintenance":
            fig = managers.maintenance_due(conn, period)
            data, ext = workbook_bytes(managers.maintenance_sheets(fig, target.dealer), d.title), "xlsx"
            text = managers.maintenance_summary(fig)
            table = [{"到期日": str(x["due"]), "车牌": x["plate"], "车型": x["model"], "客户": x["name"],
                      "服务顾问": x["advisor"]} for x in fig["items"][:50]]
        else:
            fig = managers.showroom(conn, period)
            data, ext = workbook_bytes(managers.showroom_sheets(fig, target.dealer), d.title), "xlsx"
            text = managers.showroom_summary(fig)
            table = [{"来源": k, "新增": v["new"], "成交": v["won"], "战败": v["defeated"]} for k, v in fig["sources"].items()]
    filename = f"{target.dealer}_{d.kind}_{period.compact}.{ext}"
    if d.to_oem:
        up = publish(engine, kind=d.kind, period=period.label, dealer=target.dealer, data=data, out_dir=target.out_dir,
                     filename=filename, client=target.client, outbox=target.outbox, push=target.push)
        path = up.pop("file")
    else:
        path, up = str(write_atomic(Path(target.out_dir) / filename, data)), {"sent_now": [], "portal": None, "sftp": None}
    return {"report": name, "title": d.title, "period": period.label, "summary": text, "file": path, "upload": up,
            "table": table}


def upload_words(result: dict) -> str:
    """The upload state in words, for the CLI and the artifact."""
    up = result["upload"]
    if up.get("portal") is None and up.get("sftp") is None:
        return "仅供店内使用，不上传。"
    parts = []
    portal = {"UPLOADED": "厂家门户已接收", "REJECTED": "厂家门户拒收", "PREPARED": "厂家门户待上传",
              "NO_PORTAL": "厂家门户不接收此类报表"}.get(up.get("portal"), "")
    sftp = {"SENT": "已上传 SFTP", "QUEUED": "已放入 SFTP 发件箱，等待上传"}.get(up.get("sftp") or "", "未配置 SFTP")
    parts = [p for p in (portal, sftp) if p]
    again = "本次未重复上传。" if not up["sent_now"] else f"本次上传：{'、'.join(up['sent_now'])}。"
    return "；".join(parts) + "。" + again
