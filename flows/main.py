"""Flow ``dealersync_run``: the main job (``dealersync run``, and the ``dealersync-run`` deployment) as
one flow run in the Prefect UI, its stages as subflow runs, in order: SFTP drops (when configured), DMS
ingest, CRM pull, resolution, CRM push, claims, claim status, CRM pull again (the call centre's answers
to today's pushes), survey results.

Each stage fails on its own (``services.stages.run_stage``: bounded retries inside, one line out);
the run ends ``Failed`` (the stages as ``ItemsFailed.result``) when one did not end ok. The stages
notify for themselves, so the run adds no notification of its own. Migrations are not run here: the
``run`` command and ``serve`` migrate at start-up.
"""
from __future__ import annotations

from dealersync.errors import ItemsFailed
from dealersync.services.stages import Stage, run_stage

from .common import flow, settings_with_privacy
from .crm import pull_crm, push_crm
from .ingest import ingest_dms_exports
from .oem import poll_claim_status, push_survey_results, push_warranty_claims
from .resolve import resolve_customers
from .sftp import pull_sftp_drops


def run_pipeline(settings, stages: list[Stage], poll_again: bool = False) -> dict:
    """The main job's stages in order, each its own flow; ``poll_again``: read the portal's decisions
    once more at the end (the demo, whose sandbox decides within seconds). Returns the results of the
    stages that produced one, by name."""
    if settings.sftp_host:
        run_stage(stages, "SFTP drops", pull_sftp_drops)
    run_stage(stages, "DMS ingest", ingest_dms_exports, folders=[str(p) for p in settings.effective_drop_dirs])
    run_stage(stages, "CRM pull", pull_crm)
    run_stage(stages, "customer resolution", resolve_customers)
    run_stage(stages, "CRM push", push_crm)
    run_stage(stages, "warranty claims", push_warranty_claims)
    run_stage(stages, "claim status", poll_claim_status)
    run_stage(stages, "CRM pull (call-centre answers)", pull_crm)
    run_stage(stages, "survey results", push_survey_results)
    if poll_again:
        run_stage(stages, "claim status (the portal's decisions)", poll_claim_status)
    return {s.name: s.result for s in stages if s.result is not None}


@flow(name="dealersync_run")
def main_job(poll_again: bool = False):
    """The main job on the configured sources and services, one stage after another."""
    stages: list[Stage] = []
    run_pipeline(settings_with_privacy(), stages, poll_again)
    bad = [s for s in stages if s.status != "ok"]
    if not bad:
        return stages
    from prefect.states import Failed
    message = "dealersync run: " + "; ".join(f"{s.name}: {s.status}" for s in bad)
    return Failed(message=message, data=ItemsFailed(message, result=stages))


def run_main_job(poll_again: bool = False) -> list[Stage]:
    """Run the main job's flow (on the Prefect API in effect) and return its stages, whatever its end."""
    result = main_job(poll_again, return_state=True).result(raise_on_failure=False)
    if isinstance(result, ItemsFailed):
        return result.result
    if isinstance(result, BaseException):
        raise result
    return result
