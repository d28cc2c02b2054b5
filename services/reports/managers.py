"""Reports for the dealership's own managers (not uploaded): the periodic-maintenance solicitation list
(定保招揽一览表) and the showroom traffic / lead follow-up statistics (展厅来店 / 来电统计, 意向顾客跟进).

Maintenance: a vehicle's next periodic maintenance is due ``maintenance_months`` after its last visit
or after ``maintenance_km`` more kilometres at its own pace (km per day from its mileage history, at
least 30 days apart, else ``default_km_per_day``), whichever comes first (the follow-up rules of
``services/followups.py``). The list holds vehicles due in the month or overdue by up to three months,
of customers whose marketing consent is an explicit yes (PIPL: solicitation is marketing); the summary
says how many were left out for want of consent.

Showroom: CRM leads created in the period by source (展厅 = walk-ins, 电话 = calls, 网络, 车展) and
intent level; per salesperson the open leads, won and defeated in the period, and the open leads whose
follow-up is overdue at the period's end (last change older than ``FOLLOW_UP_DAYS`` of their level).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pandas as pd
from sqlalchemy import Connection

from dealersync.privacy import mask_text
from dealersync.services.followups import Rules, _months, km_per_day
from dealersync.services.xlsx import Col, Sheet
from dealersync.store import crm as store_crm
from dealersync.store import dms
from dealersync.store import customers

from .people import masked_name
from .periods import Period, local

LEVELS = ["O", "H", "A", "B", "C"]
FOLLOW_UP_DAYS = {"O": 3, "H": 2, "A": 7, "B": 14, "C": 30}
SOURCES = ["展厅", "电话", "网络", "车展"]


def maintenance_due(conn: Connection, month: Period, rules: Rules | None = None) -> dict:
    rules = rules or Rules()
    ros = pd.DataFrame([(r["vin"], r["opened_at"], r["mileage_km"], r["advisor"])
                        for r in dms.repair_orders(conn, "vin", "opened_at", "mileage_km", "advisor", valid_only=True)],
                       columns=["vin", "opened_at", "km", "advisor"])
    owners = {v: m for m, v in customers.vehicles(conn)}
    cars = {r["vin"]: r for r in dms.vehicles(conn, "vin", "plate", "model")}
    masters = customers.contact_cards(conn)
    items, no_consent = [], 0
    earliest = month.start - timedelta(days=90)
    for vin, g in ros.dropna(subset=["opened_at"]).sort_values("opened_at").groupby("vin"):
        last = g.iloc[-1]
        per_day = km_per_day(g, "km", rules.default_km_per_day)
        last_day = pd.Timestamp(last["opened_at"]).date()
        due = min(_months(last_day, rules.maintenance_months),
                  last_day + timedelta(days=rules.maintenance_km / max(per_day, 1.0)))
        if not earliest <= due <= month.end:
            continue
        m = masters.get(owners.get(vin))
        if m is None or m["marketing_consent"] is not True:
            no_consent += 1
            continue
        car = cars.get(vin)
        last_km = None if pd.isna(last["km"]) else int(last["km"])
        items.append({"due": due, "overdue": due < month.start, "vin": vin, "plate": car["plate"] if car else None,
                      "model": car["model"] if car else None,
                      "name": masked_name(m["name"], m["company"], m["customer_type"]),
                      "mobile": mask_text(m["primary_mobile"]) if m["primary_mobile"] else None, "last_visit": last_day,
                      "last_km": last_km, "per_day": round(per_day), "advisor": last["advisor"],
                      "est_km": None if last_km is None else int(last_km + per_day * (month.start - last_day).days)})
    items.sort(key=lambda x: (x["due"], x["vin"]))
    return {"month": month.label, "items": items, "no_consent": no_consent}


def maintenance_summary(fig: dict) -> str:
    over = sum(x["overdue"] for x in fig["items"])
    return (f"{fig['month']} 定保到期需招揽 {len(fig['items'])} 台（其中逾期未回厂 {over} 台）；"
            f"另有 {fig['no_consent']} 台的车主未明确同意营销联系，未列入。")


def maintenance_sheets(fig: dict, dealer: str) -> list[Sheet]:
    return [Sheet("定保招揽", [Col("到期日 Due", "date"), Col("逾期 Overdue"), Col("车架号 VIN"), Col("车牌 Plate"),
                             Col("车型 Model"), Col("客户 Customer"), Col("手机 Mobile"), Col("上次进厂 Last visit", "date"),
                             Col("上次里程 Last km", "int"), Col("日均公里 km/day", "int"), Col("预计里程 Est. km", "int"),
                             Col("服务顾问 Advisor")],
                  [[x["due"], "是" if x["overdue"] else "", x["vin"], x["plate"], x["model"], x["name"], x["mobile"],
                    x["last_visit"], x["last_km"], x["per_day"], x["est_km"], x["advisor"]] for x in fig["items"]],
                  title=f"定保招揽一览表 {dealer} {fig['month']}", notes=[maintenance_summary(fig)],
                  marked=[x["overdue"] for x in fig["items"]])]


def showroom(conn: Connection, period: Period) -> dict:
    leads = store_crm.leads(conn)
    by_source: dict[str, dict] = defaultdict(lambda: {"new": 0, **dict.fromkeys(LEVELS, 0), "won": 0, "defeated": 0})
    by_person: dict[str, dict] = defaultdict(lambda: {"new": 0, "open": 0, "won": 0, "defeated": 0, "overdue": 0})
    overdue = []
    end = pd.Timestamp(period.end) + pd.Timedelta(days=1)
    for ld in leads:
        created, touched = local(ld["created_at"]), local(ld["modified_at"])
        person = ld["salesperson"] or "（未分配）"
        if created is not None and period.contains(created.date()):
            s = by_source[ld["lead_source"] if ld["lead_source"] in SOURCES else "其他"]
            s["new"] += 1
            s[ld["intent_level"] if ld["intent_level"] in LEVELS else "C"] += 1
            by_person[person]["new"] += 1
            if ld["status"] == "WON":
                s["won"] += 1
            elif ld["status"] == "DEFEATED":
                s["defeated"] += 1
        if ld["status"] in ("WON", "DEFEATED") and touched is not None and period.contains(touched.date()):
            by_person[person]["won" if ld["status"] == "WON" else "defeated"] += 1
        if ld["status"] == "OPEN" and created is not None and created < end:
            by_person[person]["open"] += 1
            late = (end - pd.Timestamp(touched or created)).days
            if late > FOLLOW_UP_DAYS.get(ld["intent_level"] or "C", 30):
                by_person[person]["overdue"] += 1
                overdue.append({"lead": ld["lead_id"], "name": masked_name(ld["name"]),
                                "mobile": mask_text(ld["mobile"]) if ld["mobile"] else None, "level": ld["intent_level"],
                                "model": ld["interested_model"], "salesperson": person,
                                "touched": touched or created, "days": late})
    overdue.sort(key=lambda x: (-x["days"], x["lead"]))
    return {"period": period.label, "sources": {k: by_source[k] for k in sorted(by_source, key=_source_order)},
            "people": {k: by_person[k] for k in sorted(by_person)}, "overdue": overdue}


def _source_order(s: str) -> tuple:
    return (SOURCES.index(s) if s in SOURCES else len(SOURCES), s)


def showroom_summary(fig: dict) -> str:
    src = fig["sources"]
    new = sum(v["new"] for v in src.values())
    walk, call = src.get("展厅", {}).get("new", 0), src.get("电话", {}).get("new", 0)
    won = sum(v["won"] for v in fig["people"].values())
    return (f"{fig['period']} 新增意向客户 {new} 位（展厅来店 {walk}、来电 {call}），成交 {won} 位；"
            f"{len(fig['overdue'])} 位意向客户跟进已逾期。")


def showroom_sheets(fig: dict, dealer: str) -> list[Sheet]:
    src = Sheet("来店来电统计", [Col("来源 Source"), Col("新增 New", "int")] + [Col(f"{lv}级", "int") for lv in LEVELS]
                + [Col("成交 Won", "int"), Col("战败 Defeated", "int")],
                [[k, v["new"], *(v.get(lv, 0) for lv in LEVELS), v["won"], v["defeated"]] for k, v in fig["sources"].items()],
                title=f"展厅来店 / 来电统计 {dealer} {fig['period']}", notes=[showroom_summary(fig)])
    ppl = Sheet("顾问跟进", [Col("销售顾问 Salesperson"), Col("新增 New", "int"), Col("跟进中 Open", "int"),
                         Col("成交 Won", "int"), Col("战败 Defeated", "int"), Col("逾期未跟进 Overdue", "int")],
                [[k, v["new"], v["open"], v["won"], v["defeated"], v["overdue"]] for k, v in fig["people"].items()],
                title=f"意向顾客跟进 {fig['period']}",
                notes=["逾期：距上次跟进超过 " + "、".join(f"{k} 级 {d} 天" for k, d in FOLLOW_UP_DAYS.items()) + "。"])
    late = Sheet("逾期跟进", [Col("线索 Lead"), Col("客户 Customer"), Col("手机 Mobile"), Col("级别 Level"),
                          Col("意向车型 Model"), Col("销售顾问 Salesperson"), Col("上次跟进 Last touch", "datetime"),
                          Col("间隔天数 Days", "int")],
                 [[x["lead"], x["name"], x["mobile"], x["level"], x["model"], x["salesperson"], x["touched"], x["days"]]
                  for x in fig["overdue"]], title=f"逾期未跟进的意向客户 {fig['period']}",
                 marked=[True] * len(fig["overdue"]))
    return [src, ppl, late]

