"""Backfills and serving: run a flow over past windows, and every deployment of ``prefect.yaml``
(shipped as package data of ``dealersync.flows``) as ``RunnerDeployment`` objects for ``prefect.serve``."""
from __future__ import annotations

import importlib
import json
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments import run_deployment

from dealersync.errors import ConfigurationError
from dealersync.privacy import render_exception
from dealersync.flows import crm, oem


# ------------------------------------------------------------------------------------ backfill

def _day_params(flow: str, day: date) -> dict:
    if flow == "pull_crm":
        return {"modified_since": f"{day.isoformat()}T00:00:00+08:00", "stateless": True}
    if flow == "monthly_csi_report":
        return {"month": day.strftime("%Y-%m")}
    return {"day": day.isoformat()}


BACKFILL_FLOWS = ("push_crm", "push_warranty_claims", "sanbao_monitor", "pull_crm", "monthly_csi_report")


def windows(flow: str, start: date, end: date) -> list[tuple[str, dict]]:
    """One window per day (per month for the monthly report), oldest first."""
    if flow not in BACKFILL_FLOWS:
        raise ConfigurationError(f"backfill: {flow!r} takes no date window; one of {', '.join(BACKFILL_FLOWS)}")
    if end < start:
        raise ConfigurationError(f"backfill: --to {end} is before --from {start}")
    out, seen = [], set()
    d = start
    while d <= end:
        p = _day_params(flow, d)
        key = json.dumps(p, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append((d.isoformat() if flow != "monthly_csi_report" else p["month"], p))
        d += timedelta(days=1)
    return out


def run_backfill(flow: str, start: date, end: date, *, concurrency: int = 1, dry_run: bool = False,
                 deployment: str | None = None, progress=print, wait: bool = True) -> list[dict]:
    """Run each window through the deployment when a Prefect server is configured (``deployment`` =
    "flow-name/deployment-name"), locally otherwise. Stateless: incremental watermarks never move.
    Idempotent: every flow is, through its ledgers; deployment runs carry an idempotency key per window."""
    plan = windows(flow, start, end)
    if dry_run:
        for i, (label, params) in enumerate(plan, 1):
            progress(f"[{i}/{len(plan)}] {flow} {label}: would run with {params}")
        return [{"window": label, "parameters": params, "status": "dry-run"} for label, params in plan]
    results: list[dict] = []

    def one(label, params):
        if deployment:
            fr = run_deployment(deployment, parameters=params, idempotency_key=f"backfill:{flow}:{label}",
                                timeout=None if wait else 0)
            state = fr.state.name if fr.state else "?"
            scheduled = bool(fr.state and fr.state.is_scheduled())   # Scheduled, or Late while no worker took it
            return {"window": label, "status": "Completed" if not wait and scheduled else state,
                    "state": state, "flow_run": str(fr.id)}
        module = oem if flow in ("push_warranty_claims", "sanbao_monitor", "monthly_csi_report") else crm
        out = getattr(module, flow)(**params)
        return {"window": label, "status": "Completed", "result": _short(out)}
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        futs = {pool.submit(one, label, params): label for label, params in plan}
        for i, f in enumerate(as_completed(futs), 1):
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001 - one failed window never hides the others
                r = {"window": futs[f], "status": "Failed", "error": render_exception(e)}
            results.append(r)
            progress(f"[{i}/{len(plan)}] {flow} {r['window']}: {r['status']}"
                     + (f" {r.get('result') or ''}" if r.get("result") else "") + (f" {r['error']}" if r.get("error") else ""))
    return sorted(results, key=lambda r: r["window"])


def _short(out) -> str:
    s = json.dumps(out, default=str, ensure_ascii=False)
    return s if len(s) <= 160 else s[:157] + "..."


# ------------------------------------------------------------------------------------ serve

def deployments_from_yaml(path: Path | None = None) -> list:
    """Every deployment of prefect.yaml as a ``RunnerDeployment`` for ``prefect.serve`` (no work pool)."""
    text = path.read_text(encoding="utf-8") if path else (resources.files("dealersync.flows") / "prefect.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    out = []
    for d in doc["deployments"]:
        mod, fn = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(mod), fn)
        out.append(flow.to_deployment(
            name=d["name"], description=d.get("description"), parameters=d.get("parameters") or {},
            schedules=[CronSchedule(cron=s["cron"], timezone=s.get("timezone", "Asia/Shanghai"))
                       for s in d.get("schedules", []) if s.get("active", True)],
            concurrency_limit=d.get("concurrency_limit")))
    return out
