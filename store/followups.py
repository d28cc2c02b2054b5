"""Follow-up tasks: the store's side of ``services/followups.py`` (and of the reports and the status
overview that count tasks).

Every function takes a ``Connection`` first and never commits; a task is created once per external id
(insert on conflict do nothing: re-running a day makes no second task); answers are values.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, func, select, update

from .db import dialect_insert
from .ledger import now
from .tables import MasterStatus, TaskStatus, followup_task, master_customer

OPEN = TaskStatus.OPEN.value

t = followup_task.c


def all_tasks(conn: Connection) -> list[dict]:
    """Every task, all columns."""
    return [dict(r) for r in conn.execute(select(followup_task)).mappings()]


def add_task(conn: Connection, **values) -> bool:
    """Create a task (idempotent on its external id).

    Returns:
        True when created; False when a task of that external id exists already."""
    ins = dialect_insert(conn, followup_task)
    # RETURNING, not rowcount: psycopg answers -1 for this INSERT on PostgreSQL
    ins = ins.values(**values).on_conflict_do_nothing(index_elements=["external_id"])
    return conn.execute(ins.returning(followup_task.c.external_id)).first() is not None


def update_task(conn: Connection, external_id: str, **values) -> bool:
    """Write ``values`` (and ``updated_at``) to one task; True when it exists."""
    return conn.execute(update(followup_task).where(t.external_id == external_id)
                        .values(updated_at=now(), **values)).rowcount > 0


def tasks_of_inactive_masters(conn: Connection) -> list[tuple[str, str, int | None]]:
    """(external id, master id, record id) of the tasks whose master is not ACTIVE (merged or split)."""
    active = select(master_customer.c.master_id).where(master_customer.c.status == MasterStatus.ACTIVE.value)
    return [tuple(r) for r in conn.execute(select(t.external_id, t.master_id, t.record_id)
                                           .where(t.master_id.not_in(active)))]


def due(conn: Connection, day: date) -> list[dict]:
    """Open tasks created up to ``day`` with their master's name, company and primary mobile (in clear),
    by type, due date and external id."""
    m = master_customer.c
    q = (select(t.type, t.due_date, t.overdue, t.external_id, t.master_id, m.name, m.company, m.primary_mobile,
                t.related_document, t.subject, t.assignee)
         .join(master_customer, m.master_id == t.master_id)
         .where(t.status == OPEN, t.created_for <= day)
         .order_by(t.type, t.due_date, t.external_id))
    return [dict(r) for r in conn.execute(q).mappings()]


def complaint_statuses(conn: Connection, master_id: str) -> list[str]:
    """The statuses of a master's COMPLAINT_FOLLOW_UP tasks."""
    return conn.execute(select(t.status).where(t.master_id == master_id,
                                               t.type == "COMPLAINT_FOLLOW_UP")).scalars().all()


def return_visit_assignees(conn: Connection, start: date, end: date) -> list[str | None]:
    """The assignee of every RETURN_VISIT task due within ``start`` .. ``end`` (one entry per task)."""
    return conn.execute(select(t.assignee).where(t.type == "RETURN_VISIT", t.due_date >= start,
                                                 t.due_date <= end)).scalars().all()


def open_counts(conn: Connection, today: date) -> tuple[dict[str, int], int]:
    """({type: open tasks created up to ``today``}, open tasks past their due date)."""
    by_type = dict(conn.execute(select(t.type, func.count()).where(t.status == OPEN, t.created_for <= today)
                                .group_by(t.type)).all())
    overdue = conn.execute(select(func.count()).select_from(followup_task)
                           .where(t.status == OPEN, t.due_date < today)).scalar()
    return by_type, overdue
