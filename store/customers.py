"""Master customers as the jobs read them (CRM push, follow-ups, surveys, reports): the store's read
side of the master records that ``resolution/`` writes (its own SQL, the write side, is
``store/masters.py``).

Every function takes a ``Connection`` first, never commits and answers plain values (dicts, tuples,
sets). Nothing here writes a master: resolution owns that (``resolution/service.py``).
"""
from __future__ import annotations

from sqlalchemy import Connection, select

from .tables import MasterStatus, crm_lead, customer_record, master_contact, master_customer, master_vehicle

ACTIVE = MasterStatus.ACTIVE.value


def active(conn: Connection) -> list[dict]:
    """Every ACTIVE master, all columns."""
    return [dict(r) for r in conn.execute(select(master_customer).where(master_customer.c.status == ACTIVE)).mappings()]


def active_ids(conn: Connection) -> list[str]:
    return conn.execute(select(master_customer.c.master_id).where(master_customer.c.status == ACTIVE)).scalars().all()


def active_profiles(conn: Connection) -> list[tuple]:
    """(master id, marketing consent, birth date, name) of every ACTIVE master."""
    c = master_customer.c
    return [tuple(r) for r in conn.execute(select(c.master_id, c.marketing_consent, c.birth_date, c.name)
                                           .where(c.status == ACTIVE))]


def get(conn: Connection, master_id: str) -> dict | None:
    """A master's row (any status), or None."""
    r = conn.execute(select(master_customer).where(master_customer.c.master_id == master_id)).mappings().first()
    return dict(r) if r else None


def status(conn: Connection, master_id: str) -> str | None:
    return conn.execute(select(master_customer.c.status).where(master_customer.c.master_id == master_id)).scalar()


def contact_cards(conn: Connection) -> dict[str, dict]:
    """{master id: name, company, customer_type, primary_mobile, marketing_consent} of every master."""
    c = master_customer.c
    return {r["master_id"]: dict(r) for r in conn.execute(
        select(c.master_id, c.name, c.company, c.customer_type, c.primary_mobile, c.marketing_consent)).mappings()}


def contact_card(conn: Connection, master_id: str) -> dict | None:
    """One master's name, company, customer_type, primary_mobile and marketing_consent, or None."""
    c = master_customer.c
    r = conn.execute(select(c.master_id, c.name, c.company, c.customer_type, c.primary_mobile, c.marketing_consent)
                     .where(c.master_id == master_id)).mappings().first()
    return dict(r) if r else None


def vehicles(conn: Connection) -> list[tuple[str, str]]:
    """(master id, VIN) of every master's vehicle."""
    return [tuple(r) for r in conn.execute(select(master_vehicle.c.master_id, master_vehicle.c.vin))]


def vins_of(conn: Connection, master_id: str, limit: int | None = None) -> list[str]:
    q = select(master_vehicle.c.vin).where(master_vehicle.c.master_id == master_id)
    return conn.execute(q.limit(limit) if limit else q).scalars().all()


def primary_phones(conn: Connection) -> list[tuple[str, str]]:
    """(master id, number) of every primary PHONE contact."""
    return [tuple(r) for r in conn.execute(select(master_contact.c.master_id, master_contact.c.value)
                                           .where(master_contact.c.kind == "PHONE", master_contact.c.is_primary))]


# ------------------------------------------------------------------------------------ source records

def linked_records(conn: Connection) -> list[dict]:
    """master_id, source, source_id, m_vin, seen_at of every source record linked to a master."""
    c = customer_record.c
    return [dict(r) for r in conn.execute(select(c.master_id, c.source, c.source_id, c.m_vin, c.seen_at)
                                          .where(c.master_id.is_not(None))).mappings()]


def record_map(conn: Connection, source: str) -> dict[str, tuple[int, str]]:
    """{source id: (record id, master id)} of the linked records of one source (SALES, SERVICE ...)."""
    c = customer_record.c
    return {sid: (rid, mid) for rid, sid, mid in conn.execute(
        select(c.id, c.source_id, c.master_id).where(c.source == source, c.master_id.is_not(None)))}


def master_of_record(conn: Connection, record_id: int) -> str | None:
    return conn.execute(select(customer_record.c.master_id).where(customer_record.c.id == record_id)).scalar()


def lead_statuses(conn: Connection) -> list[tuple[str, str]]:
    """(master id, lead status) of every CRM lead linked to a master."""
    return [tuple(r) for r in conn.execute(
        select(customer_record.c.master_id, crm_lead.c.status)
        .join(crm_lead, customer_record.c.source_id == "LEAD:" + crm_lead.c.lead_id)
        .where(customer_record.c.source == "CRM"))]
