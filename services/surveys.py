"""Survey results to the OEM and the monthly CSI report.

Survey results come from the CRM's SURVEY activities. Each goes to ``/survey-results`` once (BODID
derived from the survey's id and stored before sending), with the master customer id and a masked
mobile only, and only for customers whose data may be shared: an explicit yes on record. Others are
recorded as SKIPPED with the reason.

The monthly CSI report is an XLSX (per-factor scores, response counts, dissatisfied customers and the
resolution of their complaints, the lost-customer rate, a six-month trend chart) written with fixed
timestamps, so the same data gives the same bytes: a re-run re-uploads nothing new (the portal answers
200 with its first receipt), and a corrected month supersedes the earlier file.
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import hashlib
import json
import uuid
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from dealersync.connectors.oem import OemClient
from dealersync.resolution.service import resolve_master_id
from dealersync.services.xlsx import Chart, Col, Sheet, workbook_bytes
from dealersync.store import dms
from dealersync.store import followups as store_followups
from dealersync.store import customers
from dealersync.store import surveys as store_surveys
from dealersync.store.tables import SurveyPushStatus, UploadStatus

from dealersync.errors import TransientError
from dealersync.privacy import consented, mask_name, mask_text, scrub_fields

NS = uuid.UUID("1b0d9c6a-8f1e-4b52-a5d4-6a7c3e9f2b10")
CSI_FACTORS = ["SERVICE_INITIATION", "SERVICE_ADVISOR", "SERVICE_FACILITY", "VEHICLE_PICKUP", "SERVICE_QUALITY"]
FACTOR_NAMES = {"SERVICE_INITIATION": "服务启动", "SERVICE_ADVISOR": "服务顾问", "SERVICE_FACILITY": "服务设施",
                "VEHICLE_PICKUP": "车辆交付", "SERVICE_QUALITY": "服务质量", "OVERALL": "总体", "NPS": "推荐度"}
OEM_FACTORS = {"OVERALL", "NPS", "SERVICE_INITIATION", "SERVICE_ADVISOR", "SERVICE_FACILITY", "VEHICLE_PICKUP",
               "SERVICE_QUALITY", "SALES_INITIATION", "SALESPERSON", "DEAL", "DEALER_FACILITY", "DELIVERY_PROCESS",
               "VERBATIM"}
SCALE = 10            # every numeric answer is on the survey's 10-point scale (1 worst, 10 best)
DISSATISFIED_AT = 6   # a respondent whose overall satisfaction is at or below this (out of 10) is dissatisfied
NOT_SATISFACTION = {"NPS", "VERBATIM"}   # likelihood to recommend and free text: not a satisfaction factor
DEFINITION = (f"受访者总体满意度＝总体满意度题（OVERALL）得分，未问此题时取各因子得分的平均（满分 {SCALE} 分，"
              f"不含推荐度 NPS）；总体满意度 ≤ {DISSATISFIED_AT} 分为不满意，单个因子低分而总体满意者不计。")


def overall_score(answers) -> float | None:
    """A respondent's overall satisfaction on the 10-point scale, from ``(factor code, score)`` pairs: the
    answer to the overall question (``OVERALL``) when the survey asked it, else the mean of the factor
    scores (NPS, a likelihood to recommend, is not one). None without a numeric answer. The respondent
    is dissatisfied when this is at or below :data:`DISSATISFIED_AT` (common CSI practice: one low
    factor with a good overall score is a point to improve, not a dissatisfied customer)."""
    pairs = [(f, float(s)) for f, s in answers if s is not None and f not in NOT_SATISFACTION]
    asked = [s for f, s in pairs if f == "OVERALL"]
    scores = asked or [s for _, s in pairs]
    return round(sum(scores) / len(scores), 2) if scores else None


def is_dissatisfied(overall: float | None) -> bool:
    return overall is not None and overall <= DISSATISFIED_AT


def _now() -> datetime:
    return dealer_clock.now()


def _iso_z(t) -> str:
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("Asia/Shanghai")
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _masked(mobile: str | None) -> str | None:
    if not mobile or len(mobile) != 11 or not mobile.isdigit():
        return None
    return f"{mobile[:3]}****{mobile[-4:]}"


def _trigger(conn: Connection, master_id: str, related: str | None, occurred: str) -> dict:
    """The RO the survey is about: the related document if it is one, else the master's latest closed
    RO before the survey."""
    if related:
        r = dms.repair_order(conn, related)
        if r:
            return {"EventTypeCode": "RO_CLOSED", "DocumentID": r["ro_number"],
                    "EventDateTime": _iso_z(r["closed_at"] or occurred)}
    vins = customers.vins_of(conn, master_id)
    if related and related not in vins:
        vins.append(related)
    if vins:
        r = dms.last_closed_ro(conn, vins)
        if r:
            return {"EventTypeCode": "RO_CLOSED", "DocumentID": r["ro_number"], "EventDateTime": _iso_z(r["closed_at"])}
    return {"EventTypeCode": "RO_CLOSED", "DocumentID": related or "UNKNOWN", "EventDateTime": occurred}


def build_survey(conn: Connection, act: dict, client: OemClient) -> tuple[dict | None, str | None, str | None]:
    """(payload, master id, reason not sent)."""
    mid = resolve_master_id(conn, act["contact_external_id"]) if act["contact_external_id"] else None
    m = customers.get(conn, mid) if mid else None
    if m is None:
        return None, mid, "UNKNOWN_CUSTOMER"
    if not consented(m["marketing_consent"]):
        return None, mid, "NO_CONSENT_TO_SHARE"
    answers = [{"QuestionID": a["questionId"], "FactorCode": a["factorCode"],
                **({"NumericValue": a["numericValue"]} if a.get("numericValue") is not None else {}),
                **({"TextValue": a["textValue"]} if a.get("textValue") else {})}
               for a in json.loads(act["answers"] or "[]") if a.get("factorCode") in OEM_FACTORS]
    if not answers:
        return None, mid, "NO_ANSWERS"
    b = str(uuid.uuid5(NS, f"survey:{act['activity_id']}"))
    respondent = {"MasterCustomerID": mid}
    masked = _masked(m["primary_mobile"])
    if masked:
        respondent["MaskedMobile"] = masked
    vins = customers.vins_of(conn, mid, limit=1)
    payload = {"ApplicationArea": client.application_area(b, _iso_z(act["occurred_at"])),
               "CustomerSurveyResult": {
                   "DocumentID": act["activity_id"], "SurveyTypeCode": act["survey_type"] or "CSI",
                   "ChannelCode": "PHONE", "TriggerEvent": _trigger(conn, mid, act["related_document"], act["occurred_at"]),
                   "CompletedDateTime": act["occurred_at"], "Respondent": respondent, "Answer": answers,
                   **({"VehicleRef": {"VIN": vins[0]}} if vins else {})}}
    return payload, mid, None


def push_surveys(engine: Engine, client: OemClient) -> dict:
    out = {"sent": 0, "replayed": 0, "skipped": 0, "rejected": 0, "failed": 0}
    with engine.begin() as conn:
        acts = store_surveys.unsent_surveys(conn)
    for act in acts:
        with engine.begin() as conn:   # the key and payload are on disk before the request
            prior = store_surveys.survey(conn, act["activity_id"])
            if prior is not None and prior["payload"]:
                payload, mid, why = json.loads(prior["payload"]), prior["master_id"], None
                scrubbed = prior["scrubbed"]
            else:
                payload, mid, why = build_survey(conn, act, client)
                # a verbatim answer leaves without the phone, ID or e-mail the customer said (issue #16 item 2)
                scrubbed = scrub_fields(payload, {"TextValue"}) if payload else None
            row = dict(master_id=mid,
                       bodid=payload["ApplicationArea"]["BODID"] if payload else str(uuid.uuid5(NS, act["activity_id"])),
                       payload=json.dumps(payload, ensure_ascii=False) if payload else None,
                       status=(SurveyPushStatus.SKIPPED if why else SurveyPushStatus.PREPARED).value,
                       reason=why, updated_at=_now(), scrubbed=scrubbed)
            store_surveys.save_survey(conn, document_id=act["activity_id"], **row)
        if why:
            out["skipped"] += 1
            continue
        try:
            ans = client.submit_survey(payload, row["bodid"])
        except TransientError:
            out["failed"] += 1
            continue
        status = (SurveyPushStatus.SENT if ans.status in (200, 202) else SurveyPushStatus.REJECTED).value
        out["sent" if ans.status == 202 else "replayed" if ans.status == 200 else "rejected"] += 1
        with engine.begin() as conn:
            store_surveys.survey_answered(conn, act["activity_id"], status, ans.body, ans.error_codes)
    return out


# ------------------------------------------------------------------------------------ monthly CSI report

def _surveys_frame(conn: Connection) -> pd.DataFrame:
    rows = store_surveys.survey_answers(conn)
    recs = []
    for r in rows:
        for a in json.loads(r["answers"] or "[]"):
            if a.get("numericValue") is not None:
                recs.append({"activity_id": r["activity_id"], "contact": r["contact_external_id"],
                             "month": pd.Timestamp(r["occurred_at"]).tz_convert("Asia/Shanghai").strftime("%Y-%m")
                             if pd.Timestamp(r["occurred_at"]).tzinfo else pd.Timestamp(r["occurred_at"]).strftime("%Y-%m"),
                             "factor": a.get("factorCode"), "score": float(a["numericValue"])})
    return pd.DataFrame(recs, columns=["activity_id", "contact", "month", "factor", "score"])


def _customers(conn: Connection, contacts) -> dict[str, dict]:
    """contact external id -> the surviving master's name, mobile and consent; contacts that are not
    a master customer (a lead, a deleted or unknown id) are left out."""
    out = {}
    for c in {c for c in contacts if isinstance(c, str) and c}:
        mid = resolve_master_id(conn, c)
        m = customers.contact_card(conn, mid)
        if m is not None:
            out[c] = {"master_id": mid, "name": m["name"], "mobile": m["primary_mobile"],
                      "consent": consented(m["marketing_consent"])}
    return out


def _respondents(df: pd.DataFrame) -> pd.DataFrame:
    """One row per survey answered: month, contact, overall satisfaction (:func:`overall_score`) and the
    lowest factor score."""
    rows = [(a, c, m, overall_score(zip(g["factor"], g["score"])), float(g["score"].min()))
            for (a, c, m), g in df.groupby(["activity_id", "contact", "month"], sort=True)]
    return pd.DataFrame(rows, columns=["activity_id", "contact", "month", "overall", "lowest"])


def csi_figures(conn: Connection, month: str, today: date | None = None) -> dict:
    """The month's CSI figures for the OEM. Only survey activities whose contact is a master customer
    count (a lead or an unknown contact is not a customer); dissatisfied customers are named, masked
    (张**, 138****5678), only when their consent to share is an explicit yes (PIPL art. 23: a transfer
    to another handler needs consent); the others appear as a row without identity."""
    from dealersync.services.followups import Rules, master_facts, segments
    df = _surveys_frame(conn)
    known = _customers(conn, df["contact"].unique())
    df = df[df["contact"].isin(list(known))]
    cur = df[df["month"] == month]
    factors = cur.groupby("factor")["score"].agg(["mean", "count"]).reindex(CSI_FACTORS)
    responses = int(cur["activity_id"].nunique())
    per = _respondents(df)
    now = per[per["month"] == month]
    dis = now[now["overall"].map(is_dissatisfied).astype(bool)]
    dissatisfied = []
    for r in dis.itertuples(index=False):
        k = known[r.contact]
        mid = k["master_id"]
        t = store_followups.complaint_statuses(conn, mid)
        status = "已解决 RESOLVED" if t and all(x == "DONE" for x in t) else "处理中 OPEN" if t else "待回访 TO CALL"
        shared = k["consent"]
        dissatisfied.append({"survey": r.activity_id, "master_id": mid if shared else None,
                             "name": mask_name(k["name"]) if shared else None,
                             "mobile": mask_text(k["mobile"]) if shared and k["mobile"] else None,
                             "overall": r.overall, "lowest_score": r.lowest, "resolution": status})
    months = pd.period_range(end=pd.Period(month, "M"), periods=6, freq="M").strftime("%Y-%m").tolist()
    trend = per[per["month"].isin(months)].groupby("month")["overall"].mean().reindex(months)
    facts = master_facts(conn)
    seg = segments(facts, today or (pd.Period(month, "M").end_time.date()), Rules())
    owners = int(((facts["vehicles"] > 0) | (facts["bought"] > 0)).sum())
    lost = int((seg == "LOST").sum())
    return {"month": month, "responses": responses,
            "factors": [{"factor": f, "name": FACTOR_NAMES[f], "score": None if pd.isna(x["mean"]) else round(float(x["mean"]), 2),
                         "responses": int(0 if pd.isna(x["count"]) else x["count"])} for f, x in factors.iterrows()],
            "overall": None if now["overall"].dropna().empty else round(float(now["overall"].mean()), 2),
            "dissatisfied": dissatisfied, "lost_customers": lost, "owners": owners,
            "lost_rate": round(lost / owners, 4) if owners else 0.0,
            "trend": [{"month": m, "score": None if pd.isna(v) else round(float(v), 2)} for m, v in trend.items()]}


def csi_sheets(fig: dict, dealer: str) -> list[Sheet]:
    """The monthly CSI report as sheets (spec section 4, ``CSIMONTH``): overview with factor scores,
    the dissatisfied customers (as :func:`csi_figures` lists them, mobiles masked) and the 6-month trend
    (a chart only with two or more months of data)."""
    overall = "无" if fig["overall"] is None else f"{fig['overall']:.2f}"
    overview = Sheet("满意度概览", [Col("因子 Factor"), Col("因子代码 Code"), Col("得分 Score", "decimal"),
                                 Col("样本 Responses", "int")],
                     [[f["name"], f["factor"], f["score"], f["responses"]] for f in fig["factors"]],
                     title=f"售后满意度月报 {dealer} {fig['month']}",
                     notes=[f"本月回访样本 {fig['responses']} 份，总体得分 {overall}（满分 10），"
                            f"不满意客户 {len(fig['dissatisfied'])} 位；基盘客户 {fig['owners']} 位，"
                            f"流失 {fig['lost_customers']} 位，流失率 {fig['lost_rate']:.1%}。", DEFINITION])
    dis = Sheet("不满意客户", [Col("问卷 Survey"), Col("客户编号 Master"), Col("客户 Customer"), Col("手机 Mobile"),
                           Col("总体满意度 Overall", "decimal"), Col("最低因子分 Lowest", "decimal"),
                           Col("处理状态 Resolution")],
                [[x["survey"], x["master_id"],
                  "（未同意共享，不列身份）" if x["master_id"] is None else x.get("name") or x.get("company") or "（未登记姓名）",
                  x["mobile"],
                  x.get("overall"), x["lowest_score"], x["resolution"]] for x in fig["dissatisfied"]],
                title=f"不满意客户 {fig['month']}",
                notes=[f"共 {len(fig['dissatisfied'])} 位（总体满意度 ≤ {DISSATISFIED_AT} 分）。", DEFINITION])
    points = [x for x in fig["trend"] if x["score"] is not None]
    trend = Sheet("趋势", [Col("月份 Month"), Col("得分 Score", "decimal")],
                  [[x["month"], x["score"]] for x in fig["trend"]], title="近 6 个月满意度趋势",
                  notes=[f"有数据的月份 {len(points)} 个。"], chart=Chart("满意度趋势", 0, 1, "得分"))
    return [overview, dis, trend]


def write_csi_xlsx(fig: dict, dealer: str) -> bytes:
    """Deterministic XLSX bytes of :func:`csi_sheets`."""
    return workbook_bytes(csi_sheets(fig, dealer), f"售后满意度月报 {dealer} {fig['month']}")


def monthly_csi(engine: Engine, client: OemClient | None, month: str, out_dir: Path, dealer: str,
                outbox: Path | None = None) -> dict:
    """Generate the month's report, upload it to /reports (once per distinct content) and queue it for the
    SFTP CSIMONTH inbox when ``outbox`` is given."""
    with engine.begin() as conn:
        fig = csi_figures(conn, month)
    data = write_csi_xlsx(fig, dealer)
    sha = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"CSI_MONTHLY_{dealer}_{month}.xlsx"
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    key = str(uuid.uuid5(NS, f"report:CSI_MONTHLY:{dealer}:{month}:{sha}"))
    with engine.begin() as conn:
        row = store_surveys.add_upload(conn, report_type="CSI_MONTHLY", period=month, sha256=sha, path=str(path),
                                       bodid=key, status=UploadStatus.PREPARED.value, created_at=_now())
    result = {"month": month, "file": str(path), "sha256": sha, "responses": fig["responses"],
              "overall": fig["overall"], "dissatisfied": len(fig["dissatisfied"]), "lost_rate": fig["lost_rate"]}
    if client is not None and row["status"] != UploadStatus.UPLOADED.value:
        ans = client.upload_report("CSI_MONTHLY", month, path.name, data, key)
        with engine.begin() as conn:
            store_surveys.set_upload(conn, row["id"], 
                status=(UploadStatus.UPLOADED if ans.status in (200, 201) else UploadStatus.REJECTED).value,
                                     receipt=json.dumps(ans.body, ensure_ascii=False), uploaded_at=_now())
        result["upload"] = {"status": ans.status, **{k: ans.body.get(k) for k in ("reportId", "supersedes")}}
    elif row["status"] == UploadStatus.UPLOADED.value:
        result["upload"] = {"status": "already uploaded", **json.loads(row["receipt"] or "{}")}
    if outbox is not None:
        outbox.mkdir(parents=True, exist_ok=True)
        target = outbox / f"{dealer}_CSIMONTH_{month.replace('-', '')}.xlsx"
        if not target.exists() or target.read_bytes() != data:
            t2 = target.with_suffix(".part")
            t2.write_bytes(data)
            t2.replace(target)
        result["sftp_outbox"] = str(target)
    return result


def previous_month(today: date) -> str:
    return (pd.Period(today, "M") - 1).strftime("%Y-%m")

