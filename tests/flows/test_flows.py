"""The flows are thin wrappers; these tests run them for real on the ephemeral server and check
their results and the artifacts the UI shows."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    monkeypatch.setenv("DEALERSYNC_STABLE_SECONDS", "0")   # the files a test writes are complete
    monkeypatch.chdir(tmp_path)
    from dealersync.config import get_settings
    from dealersync.services.context import upgrade_store
    upgrade_store(get_settings())   # as `db upgrade`, `serve` and `run` do: the flows never migrate
    return tmp_path


def _out(flow, *args, **kw):
    """A flow's result whatever its final state: a run whose items need a person ends Failed with
    ``ItemsFailed`` carrying the result (issue 15)."""
    from dealersync.errors import ItemsFailed
    r = flow(*args, return_state=True, **kw).result(raise_on_failure=False)
    return r.result if isinstance(r, ItemsFailed) else r


def _artifacts(key):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    with get_client(sync_client=True) as c:
        return c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def _text(artifact) -> str:
    """An artifact's data as text, Chinese unescaped (table artifacts are stored as JSON)."""
    try:
        return json.dumps(json.loads(artifact.data), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(artifact.data)


def _task_runs(name):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
    with get_client(sync_client=True) as c:
        return [t for t in c.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)))]


def test_ingest_flow_one_task_per_new_file_and_artifact(prefect_server, settings_env):
    from dealersync.services.sample import generate
    from dealersync.flows.ingest import ingest_dms_exports
    drop = settings_env / "drop"
    generate(drop, rows=40, seed=2)
    (drop / "export_from_someone.csv").write_text("a,b\n1,2\n", encoding="utf-8")   # not a known feed name
    import pytest
    from dealersync.errors import ItemsFailed
    with pytest.raises(ItemsFailed, match="1 file.s. rejected .export_from_someone.csv") as e:   # not plain green
        ingest_dms_exports(folders=[str(drop)])
    first = e.value.result
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    with get_client(sync_client=True) as c:   # what the Prefect UI shows: red, with the reason
        runs = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="")), limit=200)
    assert any(r.state and r.state.is_failed() and "export_from_someone.csv" in (r.state.message or "") for r in runs)
    assert sorted(r["status"] for r in first) == ["loaded"] * 7 + ["rejected"]   # the others still load
    first = [r for r in first if r["status"] == "loaded"]
    assert all(r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] for r in first)
    assert ingest_dms_exports(folders=[str(drop)]) == []   # a retry or re-run changes nothing
    data = [_text(a) for a in _artifacts("ingest-summary")]
    assert any("主要原因" in d and "repair_orders" in d for d in data)
    assert any("(nothing new)" in d for d in data)


def test_resolve_flow_creates_masters_once_and_publishes_artifacts(prefect_server, settings_env):
    from dealersync.services.sample import generate
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.resolve import resolve_customers
    drop = settings_env / "drop"
    generate(drop, rows=30, seed=4)
    _out(ingest_dms_exports, folders=[str(drop)])
    import os
    os.environ["DEALERSYNC_RESOLUTION_PARTITION_ROWS"] = "100"   # normalisation fans out in partitions
    try:
        first = resolve_customers()
    finally:
        del os.environ["DEALERSYNC_RESOLUTION_PARTITION_ROWS"]
    assert first["created"] == first["masters"] > 0 and first["records"] > first["masters"]
    assert len(_task_runs("normalise-partition")) >= 2
    again = resolve_customers()   # a re-run (or a retry from the UI) changes nothing
    assert again["created"] == again["merged"] == again["scored_records"] == 0
    assert again["masters"] == first["masters"]
    assert any("review" in str(a.data) for a in _artifacts("resolve-merges"))
    # the progress artifact of the first run ends at 100 % with the last stage's counts in words
    prog = _artifacts("resolve-progress")
    assert prog and any(float(a.data) == 100.0 and "写入完成" in (a.description or "") for a in prog)


def test_crm_flows_pull_and_push_once(prefect_server, settings_env, monkeypatch):
    from dealersync.services.sample import generate
    from dealersync.flows.crm import pull_crm, push_crm
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.resolve import resolve_customers
    from dealersync.sandbox.crm import create_app
    from tests.sandbox.server import serving
    drop = settings_env / "drop"
    generate(drop, rows=30, seed=4)
    _out(ingest_dms_exports, folders=[str(drop)])
    with serving(create_app(settings_env / "crm.db", seed_leads=10)) as url:
        monkeypatch.setenv("DEALERSYNC_CRM_URL", url + "/crm/v1")
        monkeypatch.setenv("DEALERSYNC_CRM_TOKEN", "sandbox-token")
        pulled = pull_crm()
        assert pulled["leads"]["items"] == 10
        stats = resolve_customers()
        first = _out(push_crm, day="2026-11-05")
        assert first["contacts"]["created"] == stats["masters"]
        again = _out(push_crm, day="2026-11-05")   # a re-run or a UI retry sends nothing
        assert again["contacts"]["sent"] == 0 and again["tasks"]["sent"] == 0
    assert any("contacts" in str(a.data) for a in _artifacts("crm-push"))


def test_oem_flows_claims_status_and_report_once(prefect_server, settings_env, monkeypatch):
    import time

    from dealersync.services.sample import generate
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.oem import monthly_csi_report, poll_claim_status, push_warranty_claims, sanbao_monitor
    from dealersync.flows.resolve import resolve_customers
    from dealersync.sandbox.portal import Clock, create_app
    from tests.sandbox.server import serving
    drop = settings_env / "drop"
    generate(drop, rows=30, seed=4)
    _out(ingest_dms_exports, folders=[str(drop)])
    resolve_customers()
    monkeypatch.setenv("DEALERSYNC_CLAIM_WINDOW_DAYS", "400")
    clock = Clock(review_after=0.1, decide_after=0.2, settle_after=0.3, claim_window_days=400)
    with serving(create_app(settings_env / "portal.db", clock=clock)) as url:
        monkeypatch.setenv("DEALERSYNC_OEM_URL", url + "/api/v1")
        for k, v in {"CLIENT_ID": "dealersync", "CLIENT_SECRET": "sandbox-secret", "DEALER_NUMBER": "GZ0012"}.items():
            monkeypatch.setenv(f"DEALERSYNC_OEM_{k}", v)
        first = _out(push_warranty_claims)
        assert first["accepted"] == first["queued"] > 0
        assert _out(push_warranty_claims)["sent"] == 0   # a re-run or UI retry sends nothing
        time.sleep(0.5)
        assert poll_claim_status()["changes"] > 0
        report = monthly_csi_report(month="2026-10")
        assert report["upload"]["status"] in (200, 201)
    assert isinstance(sanbao_monitor(), list)
    assert _artifacts("claims-by-status") and _artifacts("csi-report")


def test_dealer_group_fans_out_per_dealer(prefect_server, settings_env, monkeypatch):
    from dealersync.services.sample import generate
    from dealersync.flows.ingest import ingest_dealer_group
    dealers = []
    for code, seed in (("AAA001", 1), ("BBB002", 2)):
        generate(settings_env / code, rows=20, seed=seed, dealer=code)
        dealers.append({"dealer": code, "folders": [str(settings_env / code)]})
    out = ingest_dealer_group(dealers)
    assert set(out) == {"AAA001", "BBB002"} and all(len(v) == 7 for v in out.values())
    assert all(r["status"] == "loaded" for v in out.values() for r in v)
    assert ingest_dealer_group(dealers) == {"AAA001": [], "BBB002": []}   # nothing twice
    monkeypatch.setenv("DEALERSYNC_TASK_RUNNER", "dask")
    import importlib.util
    if importlib.util.find_spec("prefect_dask") is None:   # behind a setting, with a clear message
        import pytest
        from dealersync.errors import ConfigurationError
        with pytest.raises(ConfigurationError, match="prefect-dask"):
            ingest_dealer_group(dealers)


def test_sftp_flows(prefect_server, settings_env, monkeypatch):
    from dealersync.sandbox.sshd import start_sshd, stop_sshd
    from tests.dealersync.test_sftp_jobs import RECALL
    sshd = start_sshd()
    try:
        for k, v in {"SFTP_HOST": "127.0.0.1", "SFTP_PORT": str(sshd.port), "SFTP_USER": "dsftp",
                     "SFTP_KEY_FILE": str(sshd.user_key), "SFTP_KNOWN_HOSTS": str(sshd.known_hosts),
                     "SFTP_REMOTE_ROOT": str(sshd.root), "SFTP_STABLE_SECONDS": "0", "DEALER_CODE": "GZ0012"}.items():
            monkeypatch.setenv(f"DEALERSYNC_{k}", v)
        sshd.write_remote("outbound/GZ0012/GZ0012_RECALL_20261103.csv", RECALL)
        from dealersync.flows.sftp import pull_sftp_drops, push_sftp_reports
        got = pull_sftp_drops()
        assert [r["ingest"]["rows_loaded"] for r in got] == [1]
        assert pull_sftp_drops() == []
        outbox = settings_env / "data" / "outbox"
        outbox.mkdir(parents=True)
        (outbox / "GZ0012_SALESDAY_20261103.csv").write_text("d,n\r\n2026-11-03,3\r\n")
        assert [r["status"] for r in push_sftp_reports()] == ["uploaded"]
        assert [r["status"] for r in push_sftp_reports()] == ["skipped"]
        assert any("uploaded" in str(a.data) for a in _artifacts("sftp-push"))
    finally:
        stop_sshd(sshd)


def test_report_flows_publish_once_and_their_artifacts_read(prefect_server, settings_env, monkeypatch):
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.reports import (complaint_month_report, maintenance_solicitation_list, rvweek_report,
                                          salesday_report, showroom_statistics)
    from dealersync.sandbox.portal import create_app
    from dealersync.services.sample import generate
    from tests.sandbox.server import serving
    drop = settings_env / "drop"
    generate(drop, rows=30, seed=4)
    ingest_dms_exports(folders=[str(drop)])
    monkeypatch.setenv("DEALERSYNC_DEALER_CODE", "GZ0012")
    with serving(create_app(settings_env / "portal.db")) as url:
        monkeypatch.setenv("DEALERSYNC_OEM_URL", url + "/api/v1")
        for k, v in {"CLIENT_ID": "dealersync", "CLIENT_SECRET": "sandbox-secret", "DEALER_NUMBER": "GZ0012"}.items():
            monkeypatch.setenv(f"DEALERSYNC_OEM_{k}", v)
        first = salesday_report(day="2026-11-03")
        again = salesday_report(day="2026-11-03")   # a re-run or a retry from the UI uploads nothing
    assert first["upload"]["sent_now"] == ["portal"] and again["upload"]["sent_now"] == []
    outs = [rvweek_report(week="2026-W44"), complaint_month_report(month="2026-10"),
            maintenance_solicitation_list(month="2026-11"), showroom_statistics(week="2026-W44")]
    for out in [first, *outs]:
        md = [str(a.data) for a in _artifacts(f"report-{out['report']}")]
        assert md and out["summary"] in md[-1] and "file://" in md[-1] and "**上传**" in md[-1]
        assert "{" not in md[-1]   # words, not a dict
        table = _artifacts(f"report-{out['report']}-table")
        data = table[-1].data
        rows = json.loads(data) if isinstance(data, str) else data
        assert rows and all(ord(k[0]) > 0x2E80 for k in rows[0])   # Chinese labels
