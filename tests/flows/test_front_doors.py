"""The two front doors cannot disagree (issue 14 item 3): each job (ingest, CRM pull, resolution, CRM
push with the day's follow-up tasks, claims submit, survey results, a report) runs once through the
CLI and once through its Prefect flow, each on a store of its own (the same kind: SQLite) against its
own sandbox CRM and OEM portal, from the same export files and for the same day; what the two leave
in their stores (ledger rows, states, counts) is the same. One Prefect server for the module."""
from __future__ import annotations

import sqlalchemy as sa

from dealersync.services.context import Clock

DAY = "2026-11-05"          # the follow-up plan's day
REPORT_DAY = "2026-11-03"   # the sales report's day
DEALER = "GZ0012"

# what each job leaves in the store, as (query, what it is); no generated ids, no times
FACTS = [
    ("select file_name, feed, status, rows_read, rows_loaded, rows_quarantined from ingest_file", "ingest ledger"),
    ("select count(*) from quarantine", "quarantined rows"),
    ("select count(*) from crm_lead", "CRM leads pulled"),
    ("select feed, cursor is not null from crm_cursor", "CRM cursors"),
    ("select status, count(*) from master_customer group by status", "master records"),
    ("select count(*) from customer_record", "source records"),
    ("select kind, status, result, count(*) from crm_push group by kind, status, result", "CRM push ledger"),
    ("select type, due_date, status, count(*) from followup_task group by type, due_date, status", "follow-up tasks"),
    ("select claim_no, local_status, submission_count from warranty_claim_job", "claim states"),
    ("select dealer_code, claim_no, submission_count, state, http_status from claim_submission", "claim submissions"),
    ("select status, count(*) from survey_push group by status", "survey results"),
    ("select report_type, period, sha256, status from report_upload", "report uploads"),
]


def _facts(url: str) -> dict:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return {what: sorted(tuple(map(str, r)) for r in c.execute(sa.text(q))) for q, what in FACTS}
    finally:
        eng.dispose()


def _side(tmp_path, name, monkeypatch, crm_url, oem_url, drop):
    data = tmp_path / name
    env = {"DATA_DIR": str(data), "DROP_DIRS": str(drop), "DEALER_CODE": DEALER, "STABLE_SECONDS": "0",
           "CLAIM_WINDOW_DAYS": "400", "CRM_URL": crm_url + "/crm/v1", "CRM_TOKEN": "sandbox-token",
           "OEM_URL": oem_url + "/api/v1", "OEM_CLIENT_ID": "dealersync", "OEM_CLIENT_SECRET": "sandbox-secret",
           "OEM_DEALER_NUMBER": DEALER}
    for k, v in env.items():
        monkeypatch.setenv(f"DEALERSYNC_{k}", v)
    monkeypatch.delenv("DEALERSYNC_DATABASE_URL", raising=False)
    return f"sqlite:///{data / 'dealersync.db'}"


def _serving(tmp_path, name):
    import contextlib

    from dealersync.sandbox.crm import create_app as crm_app
    from dealersync.sandbox.portal import create_app as portal_app
    from tests.sandbox.server import serving
    stack = contextlib.ExitStack()
    crm = stack.enter_context(serving(crm_app(tmp_path / f"{name}-crm.db", seed_leads=10)))
    oem = stack.enter_context(serving(portal_app(tmp_path / f"{name}-portal.db")))
    return stack, crm, oem


def test_each_job_through_the_cli_and_through_its_flow_leaves_the_same_store(prefect_server, tmp_path, monkeypatch):
    from dealersync.cli.main import main
    from dealersync.config import get_settings
    from dealersync.errors import ItemsFailed
    from dealersync.flows.crm import pull_crm, push_crm
    from dealersync.flows.ingest import ingest_dms_exports
    from dealersync.flows.oem import push_survey_results, push_warranty_claims
    from dealersync.flows.reports import salesday_report
    from dealersync.flows.resolve import resolve_customers
    from dealersync.services.context import upgrade_store
    from dealersync.services.sample import generate
    monkeypatch.chdir(tmp_path)
    drop = tmp_path / "drop"
    generate(drop, rows=30, seed=4, dealer=DEALER)
    today = Clock().today().isoformat()   # the claim window's day, given to both doors

    stack, crm, oem = _serving(tmp_path, "cli")
    with stack:
        cli_url = _side(tmp_path, "cli", monkeypatch, crm, oem, drop)
        for argv in (["ingest", str(drop)], ["crm", "pull"], ["resolve"], ["crm", "push", "--date", DAY],
                     ["followups", "--date", DAY], ["claims", "submit", "--date", today], ["surveys", "push"],
                     ["report", "salesday", "--date", REPORT_DAY]):
            assert main(argv) in (0, 2), argv   # 2: the sample's dirty files are rejected, as in the flow

    def out(flow, *a, **kw):
        r = flow(*a, return_state=True, **kw).result(raise_on_failure=False)
        assert not isinstance(r, BaseException) or isinstance(r, ItemsFailed), r
        return r

    stack, crm, oem = _serving(tmp_path, "flow")
    with stack:
        flow_url = _side(tmp_path, "flow", monkeypatch, crm, oem, drop)
        upgrade_store(get_settings())   # `run` and `serve` migrate at start-up; the flows never do
        out(ingest_dms_exports)
        out(pull_crm)
        out(resolve_customers)
        out(push_crm, day=DAY)
        out(push_warranty_claims, today=today)
        out(push_survey_results)
        out(salesday_report, day=REPORT_DAY)

    cli, flow = _facts(cli_url), _facts(flow_url)
    assert cli["ingest ledger"] and cli["master records"] and cli["claim states"] and cli["follow-up tasks"]
    assert cli["report uploads"] and cli["CRM push ledger"]
    for _, what in FACTS:
        assert cli[what] == flow[what], what


def test_the_main_job_is_one_flow_run_with_a_subflow_run_per_stage(prefect_server, tmp_path, monkeypatch):
    """``dealersync run``'s flow: one ``dealersync_run`` flow run whose stages are its subflow runs (what
    the Prefect UI shows); with no CRM or portal configured those stages fail on their own, each in one
    line, and the others still run; the run ends Failed with the stages as its data."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from dealersync.config import get_settings
    from dealersync.flows.main import run_main_job
    from dealersync.services.context import upgrade_store
    for k in ("DATABASE_URL", "CRM_URL", "OEM_URL", "SFTP_HOST"):
        monkeypatch.delenv(f"DEALERSYNC_{k}", raising=False)
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEALERSYNC_DROP_DIRS", str(tmp_path / "drop"))
    (tmp_path / "drop").mkdir()
    upgrade_store(get_settings())
    stages = run_main_job()
    assert [(s.name, s.status) for s in stages] == [
        ("DMS ingest", "ok"), ("CRM pull", "failed"), ("customer resolution", "ok"), ("CRM push", "failed"),
        ("warranty claims", "failed"), ("claim status", "failed"), ("CRM pull (call-centre answers)", "failed"),
        ("survey results", "failed")]
    assert all(s.detail.startswith("configuration: ") for s in stages if s.status == "failed")
    with get_client(sync_client=True) as c:
        runs = [r for r in c.read_flow_runs(limit=200) if r.name and r.flow_id and r.state and r.state.is_failed()
                and "dealersync run: CRM pull: failed" in (r.state.message or "")]
        assert len(runs) == 1
        children = c.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[runs[0].id])), limit=50)
        flows = {c.read_flow(r.flow_id).name for r in children}
    assert flows == {"ingest_dms_exports", "pull_crm", "resolve_customers", "push_crm", "push_warranty_claims",
                     "poll_claim_status", "push_survey_results"}
