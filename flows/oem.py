"""Flows to the OEM portal: claims, claim status, survey results, the monthly CSI report, and the 三包
monitor. Thin wrappers over dealersync.services.jobs."""
from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dealersync.services import claims, jobs

from .common import RETRY, context, finish, flow, notify, task

STATUS_ZH = {"DRAFT": "草稿", "VALIDATION_FAILED": "校验未通过", "QUEUED": "待发送", "SUBMITTING": "发送中",
             "SUBMIT_FAILED": "发送失败", "SUBMITTED": "已上报", "UNDER_REVIEW": "审核中", "APPROVED": "已批准",
             "PARTIALLY_APPROVED": "部分批准", "REJECTED": "拒赔", "RETURNED": "退回", "SETTLED": "已结算",
             "CANCELLED": "已作废", "DEBITED": "索赔扣款", "APPEALED": "复判中", "CLOSED": "已关闭"}


@task(name="claims-push", **RETRY)
def push_task(today: str | None = None) -> dict:
    """The claim window is judged as of ``today`` (default: the context's clock, as the portal judges
    it on receipt); the same function as ``dealersync claims submit [--date]``."""
    with context(today) as ctx:
        return jobs.claims_submit(ctx)


@task(name="claims-poll", **RETRY)
def poll_task() -> dict:
    with context() as ctx:
        return jobs.claims_poll(ctx)


@task(name="surveys-push", **RETRY)
def surveys_task() -> dict:
    with context() as ctx:
        return jobs.surveys_push(ctx)


@task(name="csi-report", **RETRY)
def csi_task(month: str | None) -> dict:
    with context() as ctx:
        return jobs.csi_report(ctx, month)


@flow(name="push_warranty_claims", log_prints=True)
def push_warranty_claims(day: str | None = None, today: str | None = None):
    """New DMS warranty claims validated and sent once each; interrupted sends resent under their key.
    ``day`` names the run (a backfill window); the claim window is judged as of ``today`` (default: the
    context's clock), like ``dealersync claims submit --date``. Ends ``Failed`` (with the counts as data,
    and a notification) when claims failed validation or were refused; claims within
    ``claim_deadline_warning_days`` of their window's end are notified too."""
    with context(today) as ctx:
        ctx.portal   # an unset OEM identifier stops here, before any claim is touched
    out = push_task(today)
    with context(today) as ctx:
        s = ctx.settings
        with ctx.engine.begin() as conn:
            rows = claims.claims_table(conn)
        near = jobs.claims_deadlines(ctx)
    by: dict = {}
    for r in rows:
        k = (STATUS_ZH.get(r["local_status"], r["local_status"]), STATUS_ZH.get(r["oem_status"], r["oem_status"] or "—"))
        by[k] = by.get(k, 0) + 1
    words = (f"本次新建索赔 {out.get('new_jobs', 0)} 单，校验通过待发 {out.get('queued', 0)} 单，校验未通过 "
             f"{out.get('validation_failed', 0)} 单（`dealersync claims list --status VALIDATION_FAILED --xlsx 清单.xlsx`），"
             f"厂家接收 {out.get('accepted', 0)} 单；{len(near)} 单的索赔时限将到。")
    create_table_artifact(key="claims-by-status", table=[{"本地状态": a, "厂家状态": b, "索赔单数": n}
                                                         for (a, b), n in sorted(by.items())] or [{"说明": "暂无索赔单"}],
                          description=words)
    create_table_artifact(key="claims-deadlines", table=[{"索赔单号": r["claim_no"], "工单号": r["ro_number"],
                                                          "状态": STATUS_ZH.get(r["local_status"], r["local_status"]),
                                                          "截止日期": str(r["deadline"]), "剩余天数": r["days_left"]}
                                                         for r in near] or [{"说明": "预警期内没有临近时限的索赔单"}],
                          description=f"{len(near)} 单尚未被厂家接收、索赔时限将到")
    deadline_notice(near, s)
    return finish("push_warranty_claims", out, claim_problems(out), s,
                  {k: out.get(k, 0) for k in ("validation_failed", "rejected", "accepted")})


def deadline_notice(near: list[dict], s) -> list:
    """One warning notification for the claims not yet accepted within ``claim_deadline_warning_days``
    of their window's end (count and earliest deadline only); none when there are none."""
    if not near:
        return []
    return notify("warranty claims nearing their deadline",
                  f"{len(near)} claim(s) not yet accepted by the OEM are within {s.claim_deadline_warning_days} days "
                  f"of the end of their submission window (earliest: {min(str(r['deadline']) for r in near)}); "
                  f"list them with `dealersync claims deadlines`", "warning", s, {"claims": len(near)})


def claim_problems(out: dict) -> list[str]:
    """The items of a claims push that need a person (counts only: no PII)."""
    problems = []
    if out.get("validation_failed"):
        problems.append(f"{out['validation_failed']} claim(s) failed validation "
                        f"(`dealersync claims list --status VALIDATION_FAILED`)")
    if out.get("rejected"):
        problems.append(f"{out['rejected']} claim(s) refused by the portal (`dealersync claims list --status "
                        f"VALIDATION_FAILED`)")
    if out.get("failed"):
        problems.append(f"{out['failed']} claim submission(s) not delivered (`dealersync claims list --status "
                        f"SUBMIT_FAILED`; sent again on the next run)")
    return problems


@flow(name="poll_claim_status", log_prints=True)
def poll_claim_status() -> dict:
    out = poll_task()
    create_table_artifact(key="claim-status", table=[{"厂家状态": STATUS_ZH.get(k, k), "索赔单数": v}
                                                     for k, v in out["by_status"].items()] or [{"说明": "暂无状态"}],
                          description=f"从厂家状态接口读到 {out['changes']} 条变化")
    return out


@flow(name="push_survey_results", log_prints=True)
def push_survey_results() -> dict:
    out = surveys_task()
    create_markdown_artifact(key="survey-push", markdown=(
        f"### 满意度回访结果上传\n\n本次上传 {out['sent']} 份，重复请求已确认 {out['replayed']} 份，"
        f"因客户未同意共享未上传 {out['skipped']} 份，厂家拒收 {out['rejected']} 份，失败 {out['failed']} 份。"),
        description=f"满意度回访结果：上传 {out['sent']} 份")
    return out


def _csi_upload_words(up: dict | None) -> str:
    if not up:
        return "未上传厂家门户。"
    if up.get("status") == "already uploaded":
        return "相同文件此前已上传，本次未重复上传。"
    if up.get("status") == 201:
        return f"厂家门户已接收（报表编号 {up.get('reportId')}" + (f"，替代 {up['supersedes']}" if up.get("supersedes")
                                                               else "") + "）。"
    if up.get("status") == 200:
        return "厂家门户已有相同文件，未重复保存。"
    return f"厂家门户未接收（HTTP {up.get('status')}）。"


@flow(name="monthly_csi_report", log_prints=True)
def monthly_csi_report(month: str | None = None) -> dict:
    """The month's CSI report (default: last month), uploaded to the portal and queued for SFTP."""
    out = csi_task(month)
    path = Path(out["file"])
    overall = "无" if out["overall"] is None else f"{out['overall']:.2f}"
    words = (f"{out['month']} 回访样本 {out['responses']} 份，总体得分 {overall}（满分 10），不满意客户 "
             f"{out['dissatisfied']} 位，流失率 {out['lost_rate']:.1%}。")
    create_markdown_artifact(key="csi-report", markdown=(
        f"### 售后满意度月报（{out['month']}）\n\n{words}\n\n**上传**：{_csi_upload_words(out.get('upload'))}\n\n"
        f"**文件**：[{path.name}]({path.resolve().as_uri()})\n"), description=words)
    return out


@flow(name="sanbao_monitor", log_prints=True)
def sanbao_monitor(day: str | None = None) -> list[dict]:
    """VINs at a 三包 threshold as of ``day`` (default: the context's clock)."""
    with context(day) as ctx:
        rows = jobs.sanbao_alerts(ctx)
    create_table_artifact(key="sanbao-alerts", table=[{"车架号": r["vin"], "规则": r["rule"], "说明": r["message"]} for r in rows]
                          or [{"说明": "没有车辆达到三包预警阈值"}], description=f"{len(rows)} 条三包预警")
    return rows
