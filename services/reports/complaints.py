"""COMPLAINTMONTH: the monthly complaint-resolution report to the OEM (``dms-exports.md`` section 4),
XLSX, by the 3rd of the following month.

A complaint is a CRM COMPLAINT activity, counted in the month its ``openedAt`` falls in (Asia/Shanghai).
Resolved within 24 h / 48 h: ``resolvedAt`` at most 24 / 48 hours after ``openedAt`` (within 24 h counts
in both); open: no ``resolvedAt``. Department: 售后服务部 when the complaint's document is a repair order
or a VIN with repair orders, 销售部 for a sale or a VIN only sold here, else 客户服务部. The customer's
reaction is the first CRM contact after the resolution (a survey's lowest score, or the return-visit
call's outcome); customers are masked (surname, 138****5678).
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection

from dealersync.services.surveys import is_dissatisfied, overall_score
from dealersync.services.xlsx import Col, Sheet
from dealersync.store import dms

from . import people
from .periods import Period, local

OUTCOMES = {"REACHED": "已回访，客户接受", "NOT_REACHED": "回访未接通", "REFUSED": "客户拒绝回访"}


def _department(conn: Connection, doc: str | None) -> str:
    if not doc:
        return "客户服务部"
    if dms.is_service_document(conn, doc):
        return "售后服务部"
    if dms.is_sales_document(conn, doc):
        return "销售部"
    return "客户服务部"


def _reaction(later: list[dict], contact: str, resolved) -> str:
    for a in later:
        at = local(a["occurred_at"])
        if a["contact_external_id"] != contact or at is None or at < resolved:
            continue
        overall = overall_score((x.get("factorCode"), x.get("numericValue")) for x in a["answers"])
        if overall is not None:   # the same overall satisfaction as the CSI and RVWEEK reports
            return f"满意度回访总体 {overall:g} 分" + ("（不满意）" if is_dissatisfied(overall) else "")
        return OUTCOMES.get(a["outcome"] or "", a["outcome"] or "")
    return "尚未回访"


def figures(conn: Connection, month: Period) -> dict:
    later = sorted(people.activities(conn, "SURVEY") + people.activities(conn, "RETURN_VISIT_CALL"),
                   key=lambda a: a["occurred_at"] or "")
    items = []
    for act in people.activities(conn, "COMPLAINT"):
        c = act["complaint"]
        opened = local(c.get("openedAt") or act["occurred_at"])
        if opened is None or not month.contains(opened.date()):
            continue
        resolved = local(c.get("resolvedAt"))
        hours = round((resolved - opened).total_seconds() / 3600, 1) if resolved else None
        who = people.customer(conn, act["contact_external_id"])
        items.append({"id": act["activity_id"], "opened": opened, "category": c.get("category") or "其他",
                      "department": _department(conn, act["related_document"]), "resolved": resolved, "hours": hours,
                      "within_24h": hours is not None and hours <= 24, "within_48h": hours is not None and hours <= 48,
                      "name": who["name"], "mobile": who["mobile"], "document": act["related_document"],
                      "resolution": f"已解决，用时 {hours:g} 小时" if resolved else "处理中",
                      "reaction": _reaction(later, act["contact_external_id"], resolved) if resolved else "—"})
    groups: dict[tuple, dict[str, int]] = defaultdict(lambda: {"received": 0, "within_24h": 0, "within_48h": 0, "open": 0})
    for x in items:
        g = groups[(x["category"], x["department"])]
        g["received"] += 1
        g["within_24h"] += x["within_24h"]
        g["within_48h"] += x["within_48h"]
        g["open"] += x["resolved"] is None
    rows = [{"category": k[0], "department": k[1], **v} for k, v in sorted(groups.items())]
    totals = {k: sum(r[k] for r in rows) for k in ("received", "within_24h", "within_48h", "open")}
    return {"month": month.label, "rows": rows, "totals": totals, "items": items}


def summary(fig: dict) -> str:
    t = fig["totals"]
    if not t["received"]:
        return f"{fig['month']} 未收到客户投诉。"
    return (f"{fig['month']} 共受理投诉 {t['received']} 件，24 小时内解决 {t['within_24h']} 件、48 小时内解决 "
            f"{t['within_48h']} 件（{t['within_48h'] / t['received']:.0%}），仍在处理 {t['open']} 件。")


def sheets(fig: dict, dealer: str) -> list[Sheet]:
    t = fig["totals"]
    rows = [[r["category"], r["department"], r["received"], r["within_24h"], r["within_48h"], r["open"]] for r in fig["rows"]]
    rows.append(["合计", "", t["received"], t["within_24h"], t["within_48h"], t["open"]])
    overview = Sheet("投诉月报", [Col("类别 Category"), Col("部门 Department"), Col("受理 Received", "int"),
                              Col("24小时内解决 ≤24h", "int"), Col("48小时内解决 ≤48h", "int"), Col("未解决 Open", "int")],
                     rows, title=f"客户投诉处理月报 {dealer} {fig['month']}", notes=[summary(fig)])
    detail = Sheet("投诉明细", [Col("编号 Id"), Col("受理时间 Opened", "datetime"), Col("类别 Category"),
                            Col("部门 Department"), Col("客户 Customer"), Col("手机 Mobile"), Col("单据 Document"),
                            Col("解决时间 Resolved", "datetime"), Col("处理结果 Resolution"), Col("客户反馈 Reaction")],
                   [[x["id"], x["opened"], x["category"], x["department"], x["name"], x["mobile"], x["document"],
                     x["resolved"], x["resolution"], x["reaction"]] for x in fig["items"]],
                   title=f"投诉明细 {fig['month']}", notes=["客户姓名与手机已脱敏。"])
    return [overview, detail]
