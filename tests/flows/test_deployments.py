"""prefect.yaml: every deployment points at a real flow, runs in Asia/Shanghai with concurrency 1, and
carries no secret in its parameters."""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_entrypoint_is_a_flow_with_a_shanghai_schedule():
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    names = set()
    for d in doc["deployments"]:
        path, fn = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, fn), Flow), d["name"]
        assert d["concurrency_limit"] == 1
        assert d["schedules"] and all(s["timezone"] == "Asia/Shanghai" for s in d["schedules"])
        assert not any(k for k in d.get("parameters", {}) if any(w in k.lower() for w in ("secret", "token", "password")))
        names.add(fn)
    assert {"ingest_dms_exports", "pull_sftp_drops", "push_sftp_reports", "resolve_customers", "pull_crm",
            "push_crm", "push_warranty_claims", "poll_claim_status", "push_survey_results", "monthly_csi_report",
            "sanbao_monitor"} <= names


def test_serve_builds_every_deployment_with_its_schedule():
    from dealersync.flows.deploy import deployments_from_yaml
    deps = deployments_from_yaml()
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    assert [d.name for d in deps] == [d["name"] for d in doc["deployments"]]
    monthly = next(d for d in deps if d.name == "monthly-csi-report")
    assert monthly.schedules[0].schedule.cron == "0 9 2 * *"
    assert monthly.schedules[0].schedule.timezone == "Asia/Shanghai"


def test_prefect_deploy_all_against_a_real_server(tmp_path):
    from tests.flows.prefect_server import prefect, prefect_server
    with prefect_server(tmp_path / "prefect") as (api, env):
        prefect(env, "work-pool", "create", "dealersync", "--type", "process")
        prefect(env, "--no-prompt", "deploy", "--all", cwd=ROOT)
        import requests
        got = requests.post(api + "/deployments/filter", json={"limit": 200}, timeout=10).json()
        # a backfill through the deployment, twice: one flow run per day, the second time nothing new
        import subprocess
        import sys
        for _ in range(2):
            r = subprocess.run([sys.executable, "-m", "dealersync.cli.main", "backfill", "sanbao_monitor", "--from",
                                "2026-11-01", "--to", "2026-11-03", "--no-wait"], env={**env, "DEALERSYNC_DATA_DIR":
                                str(tmp_path / "data")}, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr[-2000:]
            assert "[3/3] sanbao_monitor" in r.stderr
        runs = requests.post(api + "/flow_runs/filter", json={"limit": 200}, timeout=10).json()
        backfilled = [fr for fr in runs if (fr.get("idempotency_key") or "").startswith("backfill:")]
        assert sorted(fr["parameters"]["day"] for fr in backfilled) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    by_name = {d["name"]: d for d in got}
    assert set(by_name) == {d["name"] for d in doc["deployments"]}
    for d in doc["deployments"]:
        dep = by_name[d["name"]]
        limit = dep.get("concurrency_limit") or (dep.get("global_concurrency_limit") or {}).get("limit")
        assert dep["work_pool_name"] == "dealersync" and limit == 1, dep
        assert [s["schedule"]["cron"] for s in dep["schedules"]] == [s["cron"] for s in d["schedules"]]
