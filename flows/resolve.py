"""Flow ``resolve_customers``: source records in the store -> master customer records."""
from __future__ import annotations

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from dealersync.services import jobs

from .common import context, flow, task, task_runner


@task(name="normalise-partition")
def normalise_partition(fn, part):
    return fn(part)


def _mapper(fn, parts):
    """Normalisation partitions as tasks on the flow's task runner (threads, or Dask at group scale)."""
    return [f.result() for f in [normalise_partition.submit(fn, p) for p in parts]]


@flow(name="resolve_customers", log_prints=True)
def resolve_customers(full: bool = False) -> dict:
    """Match new and changed customer records into master records (``full``: re-score everything)."""
    stats = _resolve_on_runner.with_options(task_runner=task_runner())(full)
    words = (f"新建客户主档 {stats['created']} 个，合并 {stats['merged']} 个，拆分 {stats['split']} 个；"
             f"{stats['review_links']} 对待人工确认（`dealersync master review`），家庭关联 {stats['household_links']} 对。")
    create_table_artifact(key="resolve-summary", table=[{"客户主档": stats.get("masters"), "来源记录": stats.get("records"),
                                                          "新建": stats["created"], "合并": stats["merged"],
                                                          "拆分": stats["split"], "待确认": stats["review_links"],
                                                          "家庭关联": stats["household_links"]}], description=words)
    create_markdown_artifact(key="resolve-merges", markdown=f"### 客户主档匹配\n\n{words}\n", description=words)
    return stats


@flow(name="resolve_customers_run")
def _resolve_on_runner(full: bool) -> dict:
    """One transaction (a retry, from the UI too, starts again from the committed state); new records'
    normalisation fans out in partitions through this flow's task runner."""
    with context() as ctx:
        return jobs.resolve(ctx, full=full, mapper=_mapper, progress=artifact_progress())


def artifact_progress():
    """A progress callback for ``service.resolve``: one Prefect progress artifact for the run, updated
    with the share done and a line in Chinese (records normalised, pairs scored, masters written, ETA);
    the same line goes to the flow's log."""
    artifact = create_progress_artifact(progress=0.0, key="resolve-progress", description="客户主档匹配：开始")

    def report(event) -> None:
        update_progress_artifact(artifact, progress=event.percent, description=event.line_zh())
        print(event.line())
    return report
