"""Flows ``pull_crm`` and ``push_crm``: thin wrappers over dealersync.services.jobs (crm_sync)."""
from __future__ import annotations

from prefect.artifacts import create_table_artifact

from dealersync.services import jobs
from dealersync.services.context import parse_day

from .common import RETRY, context, finish, flow, task


@task(name="crm-pull", **RETRY)
def pull_task(modified_since: str | None = None, stateless: bool = False) -> dict:
    with context() as ctx:
        return jobs.crm_pull(ctx, modified_since=modified_since, stateless=stateless)


@task(name="crm-push-contacts", **RETRY)
def push_contacts_task(day: str) -> dict:
    with context(day) as ctx:
        return jobs.crm_push_contacts(ctx)


@task(name="crm-plan-tasks", **RETRY)
def plan_tasks_task(day: str) -> dict:
    with context(day) as ctx:
        return jobs.plan_followups(ctx)


@task(name="crm-push-tasks", **RETRY)
def push_tasks_task() -> dict:
    with context() as ctx:
        return jobs.crm_push_tasks(ctx)


@flow(name="pull_crm", log_prints=True)
def pull_crm(modified_since: str | None = None, stateless: bool = False) -> dict:
    """Leads, contacts and activities changed since the persisted watermark (``stateless``: from
    ``modified_since``, leaving the watermark alone: a backfill)."""
    with context() as ctx:
        ctx.crm   # an unset CRM URL or token stops here, before the store is touched
    out = pull_task(modified_since, stateless)
    names = {"leads": "意向客户", "contacts": "联系人", "activities": "活动"}
    create_table_artifact(key="crm-pull", table=[{"数据": names.get(k, k), "条数": v.get("items"), "页数": v.get("pages")}
                                                 for k, v in out.items()],
                          description="从 CRM 取回：" + "，".join(f"{names.get(k, k)} {v.get('items', 0)} 条"
                                                             for k, v in out.items()) + "。")
    return out


@flow(name="push_crm", log_prints=True)
def push_crm(day: str | None = None):
    """Master customers (changed ones only) and the day's follow-up tasks (``day``, default: today by
    the context's clock) to the CRM. Ends ``Failed`` (counts as data, and a notification) when the CRM
    refused contacts or tasks."""
    with context(parse_day(day, "day")) as ctx:
        ctx.crm   # an unset CRM URL or token stops here, before the store is touched
        s, day = ctx.settings, ctx.today().isoformat()
    contacts = push_contacts_task(day)
    planned = plan_tasks_task(day)
    tasks = push_tasks_task()
    create_table_artifact(key="crm-push", table=[
        {"数据": "客户 contacts", "发送": contacts.get("sent"), "新建": contacts.get("created"),
         "更新": contacts.get("updated"), "拒收": contacts.get("errors"), "删除": contacts.get("deleted")},
        {"数据": "跟进任务 tasks", "发送": tasks.get("sent"), "新建": tasks.get("created"), "更新": tasks.get("updated"),
         "拒收": tasks.get("errors"), "删除": None}],
        description=f"{day} 推送 CRM：客户 {contacts.get('sent', 0)} 条，跟进任务 {tasks.get('sent', 0)} 条；"
                    f"新生成任务 {planned['created']} 项，改挂 {planned['repointed']} 项。")
    out = {"contacts": contacts, "tasks_planned": planned, "tasks": tasks}
    problems = [f"{d['errors']} {what} refused by the CRM" for what, d in (("contact(s)", contacts), ("task(s)", tasks))
                if d.get("errors")]
    return finish("push_crm", out, problems, s, {"contacts_refused": contacts.get("errors", 0),
                                                 "tasks_refused": tasks.get("errors", 0)})
