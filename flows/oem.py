"""Flows to the OEM portal: claims, claim status, survey results, the monthly CSI report, and the 三包
monitor. Thin wrappers over dealersync.services.claims / surveys / sanbao."""
from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dealersync.services import claims, sanbao, surveys
from dealersync.store.db import make_engine, upgrade

from .common import finish, notify, oem_client, settings_with_privacy, transient_only

RETRY = dict(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)


def _ctx():
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    return s, engine, oem_client(s)


@task(name="claims-push", **RETRY)
def push_task(day: str) -> dict:
    """``day`` names the run (a backfill window); the claim window is always judged as of today,
    as the portal judges it on receipt."""
    s, engine, client = _ctx()
    return claims.push(engine, client, max(date.fromisoformat(day), date.today()), s.claim_window_days)


@task(name="claims-poll", **RETRY)
def poll_task() -> dict:
    _, engine, client = _ctx()
    return claims.poll_status(engine, client)


@task(name="surveys-push", **RETRY)
def surveys_task() -> dict:
    _, engine, client = _ctx()
    return surveys.push_surveys(engine, client)


@task(name="csi-report", **RETRY)
def csi_task(month: str) -> dict:
    s, engine, client = _ctx()
    outbox = s.outbox if s.sftp_host else None
    return surveys.monthly_csi(engine, client, month, s.data_dir / "reports", s.oem_dealer_number, outbox)


@flow(name="push_warranty_claims", log_prints=True)
def push_warranty_claims(day: str | None = None):
    """New DMS warranty claims validated and sent once each; interrupted sends resent under their key.
    Ends ``Failed`` (with the counts as data, and a notification) when claims failed validation or were
    refused; claims within ``claim_deadline_warning_days`` of their window's end are notified too."""
    s, engine, _ = _ctx()   # an unset OEM identifier stops here, before any claim is touched
    out = push_task(day or date.today().isoformat())
    with engine.begin() as conn:
        rows = claims.claims_table(conn)
        near = claims.approaching_deadline(conn, date.today(), s.claim_deadline_warning_days)
    by: dict = {}
    for r in rows:
        k = (r["local_status"], r["oem_status"] or "-")
        by[k] = by.get(k, 0) + 1
    create_table_artifact(key="claims-by-status", table=[{"local status": a, "OEM status": b, "claims": n}
                                                         for (a, b), n in sorted(by.items())],
                          description=f"push: {out}")
    create_table_artifact(key="claims-deadlines", table=[{k: str(v) for k, v in r.items()} for r in near]
                          or [{"claim_no": "(none within the warning window)"}],
                          description="claims not yet accepted whose submission window is closing")
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
    create_table_artifact(key="claim-status", table=[{"OEM status": k, "claims": v} for k, v in out["by_status"].items()],
                          description=f"{out['changes']} change(s) read from the portal's feed")
    return out


@flow(name="push_survey_results", log_prints=True)
def push_survey_results() -> dict:
    out = surveys_task()
    create_table_artifact(key="survey-push", table=[out], description="CSI survey results to the OEM")
    return out


@flow(name="monthly_csi_report", log_prints=True)
def monthly_csi_report(month: str | None = None) -> dict:
    """The month's CSI report (default: last month), uploaded to the portal and queued for SFTP."""
    out = csi_task(month or surveys.previous_month(date.today()))
    create_markdown_artifact(key="csi-report", markdown=(
        f"CSI {out['month']}: {out['responses']} responses, overall {out['overall']}, {out['dissatisfied']} "
        f"dissatisfied, lost-customer rate {out['lost_rate']:.1%}; upload {out.get('upload')}"))
    return out


@flow(name="sanbao_monitor", log_prints=True)
def sanbao_monitor(day: str | None = None) -> list[dict]:
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    upgrade(engine)
    with engine.begin() as conn:
        rows = sanbao.alerts(conn, date.fromisoformat(day) if day else date.today())
    create_table_artifact(key="sanbao-alerts", table=rows or [{"vin": "(no alerts)"}], description="三包 thresholds reached")
    return rows
