"""Flow ``resolve_customers``: source records in the store -> master customer records."""
from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from resolution import service
from store.db import make_engine, upgrade

from .common import settings_with_privacy, transient_only


@task(name="resolve-customers", retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=transient_only)
def resolve_task(full: bool = False) -> dict:
    """One transaction: a retry after a crash starts again from the committed state."""
    s = settings_with_privacy()
    engine = make_engine(s.effective_database_url)
    with engine.begin() as conn:
        return service.resolve(conn, full=full, precedence=s.resolution_source_precedence).as_dict()


@flow(name="resolve_customers", log_prints=True)
def resolve_customers(full: bool = False) -> dict:
    """Match new and changed customer records into master records (``full``: re-score everything)."""
    s = settings_with_privacy()
    upgrade(make_engine(s.effective_database_url))
    stats = resolve_task(full)
    create_table_artifact(key="resolve-summary", table=[{k: v for k, v in stats.items() if k != "timings"}],
                          description="master customer resolution")
    create_markdown_artifact(key="resolve-merges", markdown=(
        f"**{stats['created']}** masters created, **{stats['merged']}** merged into older ones, "
        f"**{stats['split']}** split; **{stats['review_links']}** pairs queued for review "
        f"(`dealersync master review`), **{stats['household_links']}** household links."))
    return stats
