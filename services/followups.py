"""Customer segments and the day's follow-up tasks, computed from the store. Plain functions over a
SQLAlchemy ``Connection``; none commits.

Segments (the seeds' definitions): VIP (``vip_min_vehicles`` or more vehicles bought here), NEW (bought
within ``new_months``), LOST (owns a vehicle, no service visit for ``lost_months``), BASE (owns a vehicle
bought or serviced here), DEFEATED (a lead lost to a competitor), POTENTIAL (a lead with no purchase), in
that order of precedence.

Tasks get stable external ids built from what they are about (RV-<dealer>-<RO>, MR-<VIN>-<last RO>,
FS-<VIN>, LC-<master>-<last service>, CF-<activity>, TG-<VIN>-<rule>, BD-<master>-<year>), so re-running
a day creates no second task; a task done (in the CRM, or by a recorded return-visit call) stays done.
Marketing tasks (maintenance, first-service and lost-customer reminders, birthday greetings) only for
customers whose marketing consent is an explicit yes.
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import json
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection

from dealersync.privacy import consented, mask_text
from dealersync.resolution.service import resolve_master_id
from dealersync.services.xlsx import Col, Sheet, write_workbook
from dealersync.store import crm as store_crm
from dealersync.store import dms
from dealersync.store import followups as store_followups
from dealersync.store import customers
from dealersync.store.tables import MasterStatus, TaskStatus

MARKETING = {"MAINTENANCE_REMINDER", "FIRST_SERVICE_REMINDER", "LOST_CUSTOMER_RECOVERY", "BIRTHDAY_GREETING"}
SUBJECTS = {"RETURN_VISIT": "售后回访", "MAINTENANCE_REMINDER": "保养提醒", "FIRST_SERVICE_REMINDER": "首保提醒",
            "LOST_CUSTOMER_RECOVERY": "流失客户召回", "COMPLAINT_FOLLOW_UP": "投诉跟进",
            "THREE_GUARANTEE_ALERT": "三包预警", "BIRTHDAY_GREETING": "生日关怀"}
CLOSED_RO = ("已完工", "已结算", "已交车")


@dataclass
class Rules:
    return_visit_min_hours: int = 24
    return_visit_max_hours: int = 72
    maintenance_months: int = 6
    maintenance_km: int = 5000
    first_service_months: int = 3
    reminder_lead_days: int = 7
    lost_months: int = 12
    new_months: int = 12
    vip_min_vehicles: int = 2
    birthday_lookahead_days: int = 7
    default_km_per_day: float = 40.0

    @classmethod
    def from_settings(cls, s) -> "Rules":
        return cls(**{k: getattr(s, k) for k in cls.__dataclass_fields__ if hasattr(s, k)})


def _local(iso: str) -> pd.Timestamp:
    """A CRM timestamp (UTC) as naive Asia/Shanghai time, like the DMS's."""
    t = pd.Timestamp(iso)
    return t.tz_convert("Asia/Shanghai").tz_localize(None) if t.tzinfo else t


def km_per_day(visits: pd.DataFrame, km_column: str, default: float) -> float:
    """A vehicle's km driven per day, from its first and last visit with a mileage (``visits`` sorted by
    ``opened_at``); ``default`` unless they lie more than 30 days apart with the mileage grown."""
    km = visits.dropna(subset=[km_column])
    if len(km) >= 2:
        days = (km["opened_at"].iloc[-1] - km["opened_at"].iloc[0]).days
        if days > 30 and km[km_column].iloc[-1] > km[km_column].iloc[0]:
            return float(km[km_column].iloc[-1] - km[km_column].iloc[0]) / days
    return default


def _months(d: date, n: int) -> date:
    return (pd.Timestamp(d) + pd.DateOffset(months=n)).date()


# ------------------------------------------------------------------------------------ segments

def master_facts(conn: Connection) -> pd.DataFrame:
    """Per active master: vehicles bought, last purchase, last service, vehicles owned, lead statuses."""
    recs = pd.DataFrame(customers.linked_records(conn), columns=["master_id", "source", "source_id", "m_vin", "seen_at"])
    masters = pd.DataFrame(customers.active_ids(conn), columns=["master_id"]).set_index("master_id")
    recs["seen_at"] = pd.to_datetime(recs["seen_at"])
    sales = recs[recs["source"] == "SALES"]
    service = recs[recs["source"] == "SERVICE"]
    masters["bought"] = sales.groupby("master_id")["m_vin"].nunique()
    masters["last_purchase"] = sales.groupby("master_id")["seen_at"].max()
    masters["last_service"] = service.groupby("master_id")["seen_at"].max()
    owned = pd.DataFrame(customers.vehicles(conn), columns=["master_id", "vin"])
    masters["vehicles"] = owned.groupby("master_id")["vin"].nunique()
    leads = pd.DataFrame(customers.lead_statuses(conn), columns=["master_id", "status"])
    masters["lead_open"] = leads[leads["status"] != "DEFEATED"].groupby("master_id").size()
    masters["lead_defeated"] = leads[leads["status"] == "DEFEATED"].groupby("master_id").size()
    return masters.fillna({"bought": 0, "vehicles": 0, "lead_open": 0, "lead_defeated": 0})


def segments(facts: pd.DataFrame, today: date, rules: Rules) -> pd.Series:
    t = pd.Timestamp(today)
    seg = pd.Series("POTENTIAL", index=facts.index, dtype=object)
    seg[facts["lead_defeated"] > 0] = "DEFEATED"
    owns = (facts["vehicles"] > 0) | (facts["bought"] > 0)
    seg[owns] = "BASE"
    last_visit = facts["last_service"].fillna(facts["last_purchase"])
    lost = owns & (last_visit.isna() | (last_visit < t - pd.DateOffset(months=rules.lost_months)))
    seg[lost] = "LOST"
    seg[facts["last_purchase"] >= t - pd.DateOffset(months=rules.new_months)] = "NEW"
    seg[facts["bought"] >= rules.vip_min_vehicles] = "VIP"
    return seg


# ------------------------------------------------------------------------------------ tasks

def _record_map(conn: Connection, source: str) -> dict[str, tuple[int, str]]:
    return customers.record_map(conn, source)


def generate_tasks(conn: Connection, day: date, rules: Rules) -> list[dict]:
    """The tasks due for ``day`` (and the reminders that fall due within the lead time), as dicts for
    ``followup_task``. Pure computation: nothing is written."""
    tasks: list[dict] = []
    masters = pd.DataFrame(customers.active_profiles(conn),
                           columns=["master_id", "consent", "birth", "name"]).set_index("master_id")
    service = _record_map(conn, "SERVICE")
    ro_columns = ["dealer_code", "ro_number", "vin", "opened_at", "closed_at", "mileage_km", "status", "advisor",
                  "repair_type", "complaint"]
    ros = pd.DataFrame(dms.repair_orders(conn, *ro_columns), columns=ro_columns)
    calls = store_crm.reached_calls(conn)
    t_day = pd.Timestamp(day)

    def add(ext, ttype, key_record, due, subject, related=None, assignee=None, status=TaskStatus.OPEN.value,
            master=None):
        rid, mid = key_record if key_record else (None, master)
        if mid is None:
            return
        mid = resolve_master_id(conn, mid)
        if ttype in MARKETING and not (mid in masters.index and consented(masters.at[mid, "consent"])):
            return
        tasks.append(dict(external_id=ext, type=ttype, master_id=mid, record_id=rid, due_date=due,
                          subject=subject, related_document=related, assignee=assignee, status=status,
                          marketing=ttype in MARKETING))

    if len(ros):
        ros["opened_at"] = pd.to_datetime(ros["opened_at"])
        ros["closed_at"] = pd.to_datetime(ros["closed_at"])
        # RETURN_VISIT: ROs closed in the window that ends today
        closed = ros[ros["status"].isin(CLOSED_RO) & ros["closed_at"].notna()]
        win = closed[(closed["closed_at"] + pd.Timedelta(hours=rules.return_visit_min_hours) <= t_day + pd.Timedelta(days=1))
                     & (closed["closed_at"] + pd.Timedelta(hours=rules.return_visit_max_hours) >= t_day)]
        for r in win.itertuples(index=False):
            start = (r.closed_at + pd.Timedelta(hours=rules.return_visit_min_hours)).date()
            due = (r.closed_at + pd.Timedelta(hours=rules.return_visit_max_hours)).date()
            add(f"RV-{r.dealer_code}-{r.ro_number}", "RETURN_VISIT", service.get(f"{r.dealer_code}:{r.ro_number}"), due,
                f"{SUBJECTS['RETURN_VISIT']} {r.ro_number}: {start} ~ {due}", r.ro_number, r.advisor,
                status=(TaskStatus.DONE if r.ro_number in calls else TaskStatus.OPEN).value)
        # MAINTENANCE_REMINDER: next service by months or by km (from the VIN's mileage history)
        valid = ros[ros["status"] != "作废"].sort_values("opened_at")
        for vin, g in valid.groupby("vin"):
            last = g.iloc[-1]
            per_day = km_per_day(g, "mileage_km", rules.default_km_per_day)
            by_months = _months(last["opened_at"].date(), rules.maintenance_months)
            by_km = (last["opened_at"] + pd.Timedelta(days=rules.maintenance_km / max(per_day, 1.0))).date()
            due = min(by_months, by_km)
            remind = due - timedelta(days=rules.reminder_lead_days)
            if remind <= day <= due:
                add(f"MR-{vin}-{last['ro_number']}", "MAINTENANCE_REMINDER",
                    service.get(f"{last['dealer_code']}:{last['ro_number']}"), due,
                    f"{SUBJECTS['MAINTENANCE_REMINDER']} {vin}：{due} 到期（日均约 {per_day:.0f} 公里）", vin, last["advisor"])
    # FIRST_SERVICE_REMINDER: delivered vehicles with no service visit since
    sales_map = _record_map(conn, "SALES")
    sale_columns = ["dealer_code", "sale_no", "vin", "delivery_date", "salesperson"]
    sold = pd.DataFrame(dms.vehicle_sales(conn, *sale_columns), columns=sale_columns).dropna(subset=["delivery_date"])
    serviced = set(ros["vin"]) if len(ros) else set()
    for r in sold.itertuples(index=False):
        due = _months(r.delivery_date, rules.first_service_months)
        if r.vin not in serviced and due - timedelta(days=rules.reminder_lead_days) <= day <= due:
            add(f"FS-{r.vin}", "FIRST_SERVICE_REMINDER", sales_map.get(f"{r.dealer_code}:{r.sale_no}"), due,
                f"{SUBJECTS['FIRST_SERVICE_REMINDER']} {r.vin}：{due} 到期", r.vin, r.salesperson)
    # LOST_CUSTOMER_RECOVERY
    facts = master_facts(conn)
    seg = segments(facts, day, rules)
    for mid in seg[seg == "LOST"].index:
        last = facts.at[mid, "last_service"]
        tag = "never" if pd.isna(last) else pd.Timestamp(last).strftime("%Y%m%d")
        add(f"LC-{mid}-{tag}", "LOST_CUSTOMER_RECOVERY", None, day,
            f"{SUBJECTS['LOST_CUSTOMER_RECOVERY']}：" + ("从未进厂" if tag == "never" else f"自 {pd.Timestamp(last):%Y-%m-%d} 起未进厂"), None, master=mid)
    # COMPLAINT_FOLLOW_UP: respond within 24 h, resolve within 48 h, overdue flagged
    for a in store_crm.activities(conn, "COMPLAINT"):
        c = json.loads(a["complaint"] or "{}")
        raw = c.get("openedAt") or a["occurred_at"]
        if not raw:
            continue
        opened = _local(raw)
        if opened > t_day + pd.Timedelta(days=1):
            continue
        respond, resolve_by = opened + pd.Timedelta(hours=24), opened + pd.Timedelta(hours=48)
        done = bool(c.get("resolvedAt"))
        overdue = not done and t_day.normalize() > resolve_by.normalize()
        add(f"CF-{a['activity_id']}", "COMPLAINT_FOLLOW_UP", None, resolve_by.date(),
            f"{'【逾期】' if overdue else ''}{SUBJECTS['COMPLAINT_FOLLOW_UP']} {c.get('category', '')}："
            f"{respond:%Y-%m-%d %H:%M} 前响应，{resolve_by:%Y-%m-%d %H:%M} 前解决",
            a["related_document"], status=(TaskStatus.DONE if done else TaskStatus.OPEN).value,
            master=a["contact_external_id"])
        if tasks and tasks[-1]["external_id"] == f"CF-{a['activity_id']}":
            tasks[-1]["overdue"] = overdue
    # THREE_GUARANTEE_ALERT: from the 三包 monitor
    from dealersync.services.sanbao import alerts
    vin_owner = {v: m for m, v in customers.vehicles(conn)}
    for al in alerts(conn, day):
        mid = vin_owner.get(al["vin"])
        if mid:
            add(f"TG-{al['vin']}-{al['rule']}", "THREE_GUARANTEE_ALERT", None, day,
                f"{SUBJECTS['THREE_GUARANTEE_ALERT']} {al['vin']}：{al['message']}", al["vin"], master=mid)
    # BIRTHDAY_GREETING
    for mid, row in masters.dropna(subset=["birth"]).iterrows():
        b = row["birth"]
        try:
            this_year = b.replace(year=day.year)
        except ValueError:  # 29 February
            this_year = date(day.year, 3, 1)
        if day <= this_year <= day + timedelta(days=rules.birthday_lookahead_days):
            add(f"BD-{mid}-{day.year}", "BIRTHDAY_GREETING", None, this_year,
                f"{SUBJECTS['BIRTHDAY_GREETING']} {this_year:%m-%d}", None, master=mid)
    for t in tasks:
        t.setdefault("overdue", False)
    return tasks


def save_tasks(conn: Connection, tasks: list[dict], day: date) -> dict:
    """Insert new tasks; an existing task keeps its status once DONE or CANCELLED (never reopened),
    follows its customer to the surviving master, and takes a new due date or subject."""
    now = dealer_clock.now()
    have = {r["external_id"]: r for r in store_followups.all_tasks(conn)}
    created = updated = 0
    for t in tasks:
        old = have.get(t["external_id"])
        if old is None:
            created += store_followups.add_task(conn, **t, created_for=day, created_at=now, updated_at=now)
            continue
        status = old["status"] if old["status"] in (TaskStatus.DONE.value, TaskStatus.CANCELLED.value) else t["status"]
        new = {k: t[k] for k in ("master_id", "due_date", "subject", "overdue")} | {"status": status}
        if any(old[k] != v for k, v in new.items()):
            store_followups.update_task(conn, t["external_id"], **new)
            updated += 1
    repointed = repoint_tasks(conn)
    return {"created": created, "updated": updated, "repointed": repointed}


def repoint_tasks(conn: Connection) -> int:
    """Tasks whose master was merged or split follow their customer: the master of the record the task
    came from, or the survivor of a merge."""
    stale = store_followups.tasks_of_inactive_masters(conn)
    n = 0
    for ext, mid, rid in stale:
        new = None
        if rid is not None:
            new = customers.master_of_record(conn, rid)
        new = resolve_master_id(conn, new or mid)
        status = customers.status(conn, new)
        if new != mid and status == MasterStatus.ACTIVE.value:
            store_followups.update_task(conn, ext, master_id=new)
            n += 1
    return n


def due_list(conn: Connection, day: date) -> pd.DataFrame:
    """The day's work: open tasks created up to ``day`` (reminders are created when their reminder day
    comes), with the customer's golden name and primary mobile (in clear: the caller masks)."""
    df = pd.DataFrame(store_followups.due(conn, day),
                      columns=["type", "due_date", "overdue", "external_id", "master_id", "name", "company",
                               "primary_mobile", "related_document", "subject", "assignee"])
    df["overdue"] = df["overdue"].astype(bool) | (pd.to_datetime(df["due_date"]) < pd.Timestamp(day))
    return df


def customer_name(name, company) -> str:
    """The name to show: the person's, else the company's, else ``（未登记姓名）`` (never blank)."""
    for v in (name, company):
        if isinstance(v, str) and v.strip():
            return v
    return "（未登记姓名）"


FOLLOWUP_COLUMNS = [Col("到期日 Due", "date"), Col("逾期 Overdue"), Col("客户 Customer"), Col("手机 Mobile"),
                    Col("单据 Document"), Col("内容 Subject", width=46), Col("负责人 Assignee"),
                    Col("客户编号 Master"), Col("任务编号 Task")]


def followup_sheets(df: pd.DataFrame, day: date, unmasked: bool = False) -> list[Sheet]:
    """The information officer's list as sheets: a summary (tasks by type, overdue) and one sheet per
    type, named in Chinese; mobiles masked unless ``unmasked``; companies named."""
    total, overdue = len(df), int(df["overdue"].sum()) if len(df) else 0
    summary = Sheet("汇总", [Col("类型 Type"), Col("任务数 Tasks", "int"), Col("逾期 Overdue", "int")],
                    title=f"跟进任务一览 {day:%Y-%m-%d}",
                    notes=[f"今日共 {total} 项跟进任务，其中 {overdue} 项已逾期。"])
    sheets = [summary]
    for ttype, g in df.groupby("type", sort=True):
        label = SUBJECTS.get(ttype, ttype)
        summary.rows.append([label, len(g), int(g["overdue"].sum())])
        rows = []
        for r in g.itertuples(index=False):
            mobile = r.primary_mobile if unmasked or not isinstance(r.primary_mobile, str) else mask_text(r.primary_mobile)
            rows.append([r.due_date, "是" if r.overdue else "", customer_name(r.name, r.company), mobile,
                         r.related_document, r.subject, r.assignee, r.master_id, r.external_id])
        sheets.append(Sheet(label, FOLLOWUP_COLUMNS, rows, title=f"{label} {day:%Y-%m-%d}",
                            notes=[f"{len(g)} 项，其中 {int(g['overdue'].sum())} 项逾期（红色）。"],
                            marked=[bool(x) for x in g["overdue"]]))
    summary.rows.append(["合计", total, overdue])
    return sheets


def write_xlsx(df: pd.DataFrame, path, day: date, unmasked: bool = False) -> bytes:
    """Write the day's list (:func:`followup_sheets`) to ``path``; returns the bytes."""
    return write_workbook(path, followup_sheets(df, day, unmasked), f"跟进任务 {day:%Y-%m-%d}")
