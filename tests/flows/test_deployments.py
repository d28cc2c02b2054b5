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
