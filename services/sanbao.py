"""三包 monitor: per-VIN counters from the repair orders and alerts at the thresholds of China's 2021
provisions on the repair, replacement and return of household automobiles (in force 2022-01-01),
within the 三包 validity period (2 years or 50,000 km, whichever comes first):

- SERIOUS_7D: a serious fault (engine, transmission, power battery, drive motor) within 7 days of sale;
- MAJOR_60D: a fault of steering, brakes, body cracking, fuel leak or battery fire within 60 days or
  3,000 km;
- REPAIR_DAYS_30: more than 30 cumulative repair days;
- SAME_FAULT_4: 4 or more repairs of the same fault.

Maintenance visits (首保, 定保, 保养) are not repairs. Faults are recognised from the complaint text.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection

from dealersync.store import dms

SERIOUS = r"发动机|引擎|变速箱|变速器|波箱|动力电池|驱动电机"
MAJOR = r"转向|方向机|制动|刹车|车身开裂|车身裂|燃油泄漏|漏油|燃油泄露|电池起火|起火|自燃"
MAINTENANCE = ("首保", "定保", "保养", "二保")
VALIDITY_DAYS, VALIDITY_KM = 730, 50_000


def counters(conn: Connection, day: date) -> pd.DataFrame:
    ro_columns = ["vin", "ro_number", "opened_at", "closed_at", "mileage_km", "repair_type", "complaint", "status"]
    ros = pd.DataFrame(dms.repair_orders(conn, *ro_columns), columns=ro_columns)
    if ros.empty:
        return pd.DataFrame(columns=["vin", "sale_date", "days_since_sale", "km", "repairs", "repair_days",
                                     "max_same_fault", "same_fault", "serious_7d", "major_60d"])
    sale = pd.DataFrame(dms.vehicles(conn, "vin", "sale_date"), columns=["vin", "sale_date"])
    sale2 = pd.DataFrame(dms.vehicle_sales(conn, "vin", "delivery_date", "invoice_date"),
                         columns=["vin", "delivery_date", "invoice_date"])
    sale2["sale_date"] = sale2["delivery_date"].fillna(sale2["invoice_date"])
    sales = pd.concat([sale.dropna(), sale2[["vin", "sale_date"]].dropna()]).groupby("vin")["sale_date"].min()
    ros = ros[ros["status"] != "作废"].copy()
    ros["opened_at"] = pd.to_datetime(ros["opened_at"])
    ros["closed_at"] = pd.to_datetime(ros["closed_at"])
    ros["sale_date"] = pd.to_datetime(ros["vin"].map(sales))
    repairs = ros[~ros["repair_type"].isin(MAINTENANCE) & ros["opened_at"].notna()].copy()
    end = repairs["closed_at"].fillna(pd.Timestamp(day))
    repairs["days"] = ((end.dt.normalize() - repairs["opened_at"].dt.normalize()).dt.days + 1).clip(lower=1)
    since = (repairs["opened_at"] - repairs["sale_date"]).dt.days
    km = repairs["mileage_km"]
    # each period ends at whichever comes first, days or km; before the sale (bad data) is outside
    in_validity = repairs["sale_date"].isna() | ((since >= 0) & (since <= VALIDITY_DAYS) & (km.fillna(0) <= VALIDITY_KM))
    repairs, since, km = repairs[in_validity], since[in_validity], km[in_validity]
    fault = repairs["complaint"].fillna("").str.replace(r"\s", "", regex=True)
    repairs["fault"] = fault.where(fault != "")
    repairs["serious_7d"] = repairs["complaint"].fillna("").str.contains(SERIOUS) & since.between(0, 7)
    repairs["major_60d"] = repairs["complaint"].fillna("").str.contains(MAJOR) & since.between(0, 60) & (
        km.fillna(0) <= 3000)
    g = repairs.groupby("vin")
    out = pd.DataFrame({"repairs": g.size(), "repair_days": g["days"].sum(),
                        "serious_7d": g["serious_7d"].any(), "major_60d": g["major_60d"].any()})
    same = repairs.dropna(subset=["fault"]).groupby(["vin", "fault"]).size()
    if len(same):
        top = same.sort_values().groupby(level=0).tail(1)
        out["max_same_fault"] = top.droplevel(1)
        out["same_fault"] = pd.Series({v: f for v, f in top.index})
    else:
        out["max_same_fault"], out["same_fault"] = 0, None
    out["km"] = ros.groupby("vin")["mileage_km"].max()
    out["sale_date"] = out.index.map(sales)
    out["days_since_sale"] = (pd.Timestamp(day) - pd.to_datetime(out["sale_date"])).dt.days
    return out.fillna({"max_same_fault": 0}).reset_index().rename(columns={"index": "vin"})


def alerts(conn: Connection, day: date) -> list[dict]:
    c = counters(conn, day)
    out = []
    for r in c.itertuples(index=False):
        if r.serious_7d:
            out.append({"vin": r.vin, "rule": "SERIOUS_7D", "message": "售车 7 日内出现严重性能故障："
                        "可能需换车或退车"})
        if r.major_60d:
            out.append({"vin": r.vin, "rule": "MAJOR_60D", "message": "60 日或 3000 公里内转向、制动、车身、"
                        "燃油或起火类故障"})
        if r.repair_days > 30:
            out.append({"vin": r.vin, "rule": "REPAIR_DAYS_30", "message": f"累计修理 {int(r.repair_days)} 日（超过 30 日）"})
        if r.max_same_fault >= 4:
            out.append({"vin": r.vin, "rule": "SAME_FAULT_4", "message": f"同一故障（{r.same_fault}）已修理 "
                        f"{int(r.max_same_fault)} 次"})
    return out
