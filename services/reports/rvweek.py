"""RVWEEK: the weekly return-visit report to the OEM (``dms-exports.md`` section 4), XLSX, every Monday
for the week before (ISO week, Monday to Sunday, Asia/Shanghai).

Per service advisor: return visits due (RETURN_VISIT follow-up tasks due in the week), calls made and
reached / not reachable (RETURN_VISIT_CALL activities: REACHED, or NOT_REACHED / REFUSED), and the
survey answers of the week split satisfied / dissatisfied (the respondent's overall satisfaction,
``surveys.overall_score``, at or below ``DISSATISFIED_AT`` of 10; one low factor with a good overall
score is not dissatisfied). Then the dissatisfied customers, masked (surname, 138****5678), with the
problem (the overall score and the factors scored at or below the line) and its resolution (the
complaint follow-up's state).
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection

from dealersync.services.surveys import DEFINITION, DISSATISFIED_AT, FACTOR_NAMES, is_dissatisfied, overall_score
from dealersync.services.xlsx import Col, Sheet
from dealersync.store import followups as store_followups

from . import people
from .periods import Period, local

FIELDS = ["due", "calls", "reached", "not_reached", "satisfied", "dissatisfied"]


def figures(conn: Connection, week: Period) -> dict:
    per: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for a in store_followups.return_visit_assignees(conn, week.start, week.end):
        per[a or people.UNKNOWN]["due"] += 1
    for act in people.activities(conn, "RETURN_VISIT_CALL"):
        at = local(act["occurred_at"])
        if at is None or not week.contains(at.date()):
            continue
        c = per[people.advisor(conn, act["related_document"], at)]
        c["calls"] += 1
        c["reached" if act["outcome"] == "REACHED" else "not_reached"] += 1
    unhappy = []
    for act in people.activities(conn, "SURVEY"):
        at = local(act["occurred_at"])
        scores = [(a["numericValue"], a.get("factorCode")) for a in act["answers"] if a.get("numericValue") is not None]
        if at is None or not week.contains(at.date()) or not scores:
            continue
        adv = people.advisor(conn, act["related_document"], at)
        overall = overall_score((f, s) for s, f in scores)
        if is_dissatisfied(overall):
            per[adv]["dissatisfied"] += 1
            who = people.customer(conn, act["contact_external_id"])
            problem = "、".join([f"总体 {overall:g} 分"] + [
                f"{FACTOR_NAMES.get(f, f)} {s:g} 分" for s, f in sorted(scores, key=lambda x: x[0])
                if s <= DISSATISFIED_AT and f not in ("OVERALL", "NPS")])
            unhappy.append({"survey": act["activity_id"], "at": at, "advisor": adv, "name": who["name"],
                            "mobile": who["mobile"], "document": act["related_document"], "problem": problem,
                            "resolution": people.complaint_status(conn, who["master_id"])})
        else:
            per[adv]["satisfied"] += 1
    rows = [{"advisor": a, **per[a]} for a in sorted(per)]
    totals = {k: sum(r[k] for r in rows) for k in FIELDS}
    return {"week": week.label, "start": week.start, "end": week.end, "rows": rows, "totals": totals,
            "dissatisfied": unhappy}


def summary(fig: dict) -> str:
    t = fig["totals"]
    rate = f"{t['reached'] / t['calls']:.0%}" if t["calls"] else "无"
    return (f"{fig['week']}（{fig['start']:%m-%d} 至 {fig['end']:%m-%d}）应回访 {t['due']} 次，实际拨打 {t['calls']} 次，"
            f"接通 {t['reached']} 次（接通率 {rate}），未接通 {t['not_reached']} 次；"
            f"满意 {t['satisfied']} 位，不满意 {t['dissatisfied']} 位。")


def sheets(fig: dict, dealer: str) -> list[Sheet]:
    rows = [[r["advisor"], r["due"], r["calls"], r["reached"], r["not_reached"],
             r["reached"] / r["calls"] if r["calls"] else None, r["satisfied"], r["dissatisfied"]] for r in fig["rows"]]
    t = fig["totals"]
    rows.append(["合计", t["due"], t["calls"], t["reached"], t["not_reached"],
                 t["reached"] / t["calls"] if t["calls"] else None, t["satisfied"], t["dissatisfied"]])
    overview = Sheet("回访周报", [Col("服务顾问 Advisor"), Col("应回访 Due", "int"), Col("拨打 Calls", "int"),
                              Col("接通 Reached", "int"), Col("未接通 Not reached", "int"), Col("接通率 Rate", "percent"),
                              Col("满意 Satisfied", "int"), Col("不满意 Dissatisfied", "int")], rows,
                     title=f"售后回访周报 {dealer} {fig['week']}", notes=[summary(fig)])
    dis = Sheet("不满意客户", [Col("问卷 Survey"), Col("时间 Time", "datetime"), Col("服务顾问 Advisor"),
                           Col("客户 Customer"), Col("手机 Mobile"), Col("单据 Document"), Col("问题 Problem", width=40),
                           Col("处理 Resolution")],
                [[x["survey"], x["at"], x["advisor"], x["name"], x["mobile"], x["document"], x["problem"], x["resolution"]]
                 for x in fig["dissatisfied"]], title=f"不满意客户 {fig['week']}",
                notes=[f"共 {len(fig['dissatisfied'])} 位（总体满意度 ≤ {DISSATISFIED_AT} 分），姓名与手机已脱敏。",
                       DEFINITION])
    return [overview, dis]
