"""The master-record tables in SQL: source records (``customer_record``), masters, contact points,
vehicles, review and household links, manual decisions, the audit and the model's parameters.

Every function takes the connection first and never commits (one resolution run is the caller's one
transaction). Writes are idempotent where the table has a natural key: source records upsert on
(source, source_id), links are inserted once per (kind, record_a, record_b). Rows go in and come out
as plain dicts and tuples (no pandas here: ``dealersync.resolution`` builds its frames).

Over 400 lines on purpose: one aggregate (the master records), whose writes share one run's
transaction and its id/lineage conventions; splitting it by table would spread one invariant over files.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update

from dealersync.store.tables import (FEED_TABLES, MATCH_COLUMNS, LinkStatus, MasterStatus,
                                     crm_lead, customer_record, master_audit,
                                     master_contact, master_customer, master_vehicle, match_decision, match_link,
                                     match_model)

ACTIVE = MasterStatus.ACTIVE.value
LINEAGE = ("source_table", "source_file", "source_row", "load_id")
CHUNK = 5000


def _rows(result) -> list[dict]:
    return [dict(r) for r in result.mappings()]


def _chunks(seq: Sequence, n: int = CHUNK):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# ------------------------------------------------------------------------------------ source feeds

def dms_customers(conn: Connection) -> list[dict]:
    cust = FEED_TABLES["customers"]
    return _rows(conn.execute(select(
        cust.c.dealer_code, cust.c.customer_id, cust.c.customer_type, cust.c.name, cust.c.mobile, cust.c.phone,
        cust.c.id_number, cust.c.email, cust.c.address, cust.c.marketing_consent, cust.c.created_date,
        cust.c.business_date, cust.c.source_file, cust.c.source_row, cust.c.load_id)))


def owned_vehicles(conn: Connection) -> list[dict]:
    """One VIN and plate per (dealer, owner) (the smallest), for the DMS customer records."""
    veh = FEED_TABLES["vehicles"]
    return _rows(conn.execute(select(veh.c.dealer_code, veh.c.owner_customer_id, func.min(veh.c.vin).label("vin"),
                                     func.min(veh.c.plate).label("plate"))
                              .group_by(veh.c.dealer_code, veh.c.owner_customer_id)))


def vehicle_sale_buyers(conn: Connection) -> list[dict]:
    sales = FEED_TABLES["vehicle_sales"]
    return _rows(conn.execute(select(sales.c.dealer_code, sales.c.sale_no, sales.c.customer_name, sales.c.mobile,
                                     sales.c.id_number, sales.c.vin, sales.c.order_date, sales.c.business_date,
                                     sales.c.source_file, sales.c.source_row, sales.c.load_id)))


def repair_order_senders(conn: Connection) -> list[dict]:
    ro = FEED_TABLES["repair_orders"]
    return _rows(conn.execute(select(ro.c.dealer_code, ro.c.ro_number, ro.c.sender_name, ro.c.sender_mobile,
                                     ro.c.vin, ro.c.plate, ro.c.opened_at, ro.c.source_file, ro.c.source_row,
                                     ro.c.load_id)
                              .where(or_(ro.c.sender_name.is_not(None), ro.c.sender_mobile.is_not(None)))))


def crm_leads(conn: Connection) -> list[dict]:
    return _rows(conn.execute(select(crm_lead.c.lead_id, crm_lead.c.name, crm_lead.c.mobile, crm_lead.c.modified_at)))


# ------------------------------------------------------------------------------------ source records

def record_keys(conn: Connection) -> list[dict]:
    """id, source, source_id, content_hash, load_id, source_row of every source record."""
    cr = customer_record
    return _rows(conn.execute(select(cr.c.id, cr.c.source, cr.c.source_id, cr.c.content_hash, cr.c.load_id,
                                     cr.c.source_row)))


def move_lineage(conn: Connection, rows: list[dict]) -> None:
    """``rows``: ``{"id": .., source_table, source_file, source_row, load_id}`` (same content, newer load)."""
    if rows:
        conn.execute(update(customer_record).where(customer_record.c.id == bindparam("rid"))
                     .values(**{k: bindparam(f"v_{k}") for k in LINEAGE}),
                     [{"rid": r["id"], **{f"v_{k}": r[k] for k in LINEAGE}} for r in rows])


def upsert_records(conn: Connection, rows: list[dict], known: dict[tuple[str, str], int] | None = None) -> list[int]:
    """Insert or update source records on their natural key (source, source_id); returns their ids in
    the order given. Running it twice with the same rows leaves the same table. ``known``: the
    caller's fresh ``record_id_map`` (saves reading it again)."""
    if not rows:
        return []
    have = record_id_map(conn) if known is None else known
    new = [r for r in rows if (r["source"], r["source_id"]) not in have]
    old = [r for r in rows if (r["source"], r["source_id"]) in have]
    for part in _chunks(new):
        conn.execute(insert(customer_record), part)
    if old:
        cols = [k for k in old[0] if k not in ("source", "source_id")]
        stmt = update(customer_record).where(customer_record.c.id == bindparam("rid")).values(
            **{c: bindparam(f"v_{c}") for c in cols})
        for part in _chunks(old):
            conn.execute(stmt, [{"rid": have[(r["source"], r["source_id"])], **{f"v_{c}": r[c] for c in cols}}
                                for r in part])
    if new:
        have = record_id_map(conn)
    return [have[(r["source"], r["source_id"])] for r in rows]


def record_id_map(conn: Connection) -> dict[tuple[str, str], int]:
    return {(s, i): rid for rid, s, i in conn.execute(select(customer_record.c.id, customer_record.c.source,
                                                             customer_record.c.source_id))}


def unassigned_record_ids(conn: Connection) -> list[int]:
    return [r[0] for r in conn.execute(select(customer_record.c.id).where(customer_record.c.master_id.is_(None)))]


def count_records(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(customer_record)).scalar_one()


MATCH_RECORD_COLUMNS = ["id", "source", "source_id", "master_id", "raw_customer_type",
                        *[f"m_{c}" for c in MATCH_COLUMNS]]


def match_records(conn: Connection) -> list[tuple]:
    """Every source record's normalised matching columns (``MATCH_RECORD_COLUMNS``), in id order."""
    cols = [customer_record.c[c] for c in MATCH_RECORD_COLUMNS]
    return conn.execute(select(*cols).order_by(customer_record.c.id)).all()


def find_record(conn: Connection, ref: str) -> int | None:
    """``SOURCE:SOURCE_ID`` (e.g. ``DMS:GZ0012:C001``) or a numeric record id -> the record's id."""
    cr = customer_record
    if ref.isdigit():
        row = conn.execute(select(cr.c.id).where(cr.c.id == int(ref))).first()
    else:
        src, _, sid = ref.partition(":")
        row = conn.execute(select(cr.c.id).where(cr.c.source == src.upper(), cr.c.source_id == sid)).first()
    return None if row is None else int(row[0])


def members(conn: Connection, master_id: str) -> list[int]:
    return [r[0] for r in conn.execute(select(customer_record.c.id).where(customer_record.c.master_id == master_id))]


def master_of(conn: Connection, record_id: int) -> str | None:
    return conn.execute(select(customer_record.c.master_id).where(customer_record.c.id == record_id)).scalar()


def masters_of(conn: Connection, record_ids: Iterable[int]) -> dict[int, str | None]:
    ids = sorted({int(i) for i in record_ids})
    out: dict[int, str | None] = {}
    for part in _chunks(ids):
        out.update(conn.execute(select(customer_record.c.id, customer_record.c.master_id)
                                .where(customer_record.c.id.in_(part))).all())
    return out


def assign_records(conn: Connection, record_ids: Sequence[int], master_id: str, *, at: datetime, model_version: str,
                   rule: str) -> None:
    for part in _chunks([int(x) for x in record_ids]):
        conn.execute(update(customer_record).where(customer_record.c.id.in_(part))
                     .values(master_id=master_id, decided_at=at, model_version=model_version, match_rule=rule))


def assign_many(conn: Connection, pairs: list[tuple[int, str]], *, at: datetime, model_version: str,
                rule: str) -> None:
    """(record id, master id) pairs: each record to its master, one statement per chunk."""
    if not pairs:
        return
    stmt = update(customer_record).where(customer_record.c.id == bindparam("rid")).values(
        master_id=bindparam("mid"), decided_at=at, model_version=model_version, match_rule=rule)
    for part in _chunks(pairs):
        conn.execute(stmt, [{"rid": int(r), "mid": m} for r, m in part])


def set_match_weights(conn: Connection, weights: list[tuple[int, float]]) -> None:
    if weights:
        conn.execute(update(customer_record).where(customer_record.c.id == bindparam("rid"))
                     .values(match_weight=bindparam("w")), [{"rid": int(r), "w": w} for r, w in weights])


def records_of_masters(conn: Connection, master_ids: Sequence[str]) -> list[dict]:
    """Every column of the source records of these masters."""
    out: list[dict] = []
    for part in _chunks(sorted(master_ids)):
        out += _rows(conn.execute(select(customer_record).where(customer_record.c.master_id.in_(part))))
    return out


# ------------------------------------------------------------------------------------ model parameters

def model_params(conn: Connection, version: str) -> str | None:
    """The stored parameters (JSON text) of a model version, if trained."""
    row = conn.execute(select(match_model.c.params).where(match_model.c.version == version)).first()
    return None if row is None else row[0]


def save_model_params(conn: Connection, version: str, params_json: str, *, records: int, at: datetime) -> None:
    conn.execute(delete(match_model).where(match_model.c.version == version))
    conn.execute(insert(match_model).values(version=version, trained_at=at, records=records, params=params_json))


# ------------------------------------------------------------------------------------ masters

def count_active(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(master_customer)
                        .where(master_customer.c.status == MasterStatus.ACTIVE.value)).scalar_one()


def master_seqs(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(master_customer.c.master_id, master_customer.c.seq)).all())


def master_id_of(seq: int) -> str:
    return f"M{seq:09d}"


def new_master(conn: Connection, ctype: str | None, at: datetime) -> str:
    seq = next_seq(conn)
    mid = master_id_of(seq)
    conn.execute(insert(master_customer).values(master_id=mid, seq=seq, status=ACTIVE, customer_type=ctype,
                                                created_at=at, updated_at=at, record_count=0))
    return mid


def next_seq(conn: Connection) -> int:
    return (conn.execute(select(func.max(master_customer.c.seq))).scalar() or 0) + 1


def add_masters(conn: Connection, rows: list[dict]) -> None:
    """New masters ``{"master_id", "seq", "customer_type"}`` (ACTIVE, no records yet), in one statement
    per chunk; ``new_master`` for one."""
    for part in _chunks(rows):
        conn.execute(insert(master_customer), [dict(r, status=MasterStatus.ACTIVE.value, record_count=0) for r in part])


def set_status(conn: Connection, master_ids: Sequence[str], status: str, *, at: datetime,
               merged_into: str | None = None) -> None:
    values = {"status": MasterStatus(status).value, "updated_at": at}
    if merged_into is not None:
        values["merged_into"] = merged_into
    conn.execute(update(master_customer).where(master_customer.c.master_id.in_(list(master_ids))).values(**values))


def master_type(conn: Connection, master_id: str) -> str | None:
    return conn.execute(select(master_customer.c.customer_type).where(master_customer.c.master_id == master_id)).scalar()


def snapshot(conn: Connection, master_ids: list[str]) -> dict:
    """Status, name, company and member records of masters (the audit's ``before``)."""
    rows = conn.execute(select(master_customer).where(master_customer.c.master_id.in_(master_ids))).mappings().all()
    out = {}
    for r in rows:
        recs = [f"{s}:{i}" for s, i in conn.execute(
            select(customer_record.c.source, customer_record.c.source_id)
            .where(customer_record.c.master_id == r["master_id"]).order_by(customer_record.c.id))]
        out[r["master_id"]] = {"status": r["status"], "name": r["name"], "company": r["company"], "records": recs}
    return out


def resolve_master_id(conn: Connection, master_id: str) -> str:
    """Follow MERGED pointers to the surviving master."""
    seen = set()
    while master_id not in seen:
        seen.add(master_id)
        row = conn.execute(select(master_customer.c.status, master_customer.c.merged_into)
                           .where(master_customer.c.master_id == master_id)).first()
        if row is None or row[0] != MasterStatus.MERGED.value or not row[1]:
            return master_id
        master_id = row[1]
    return master_id


def clear_derived(conn: Connection, master_ids: Sequence[str]) -> None:
    """Drop the contact points and vehicles of masters (recomputed next) and zero retired ones' counts."""
    for part in _chunks(sorted(master_ids)):
        conn.execute(delete(master_contact).where(master_contact.c.master_id.in_(part)))
        conn.execute(delete(master_vehicle).where(master_vehicle.c.master_id.in_(part)))
        conn.execute(update(master_customer).where(master_customer.c.master_id.in_(part),
                                                   master_customer.c.status != ACTIVE).values(record_count=0))


GOLDEN_COLUMNS = ["customer_type", "name", "company", "gender", "birth_date", "id_number", "address", "province",
                  "city", "district", "primary_mobile", "primary_email", "marketing_consent", "record_count"]


def write_golden(conn: Connection, rows: list[dict], *, at: datetime) -> None:
    """``rows``: ``{"master_id", *GOLDEN_COLUMNS, "golden_sources"}``."""
    if not rows:
        return
    stmt = update(master_customer).where(master_customer.c.master_id == bindparam("mid")).values(
        **{c: bindparam(f"v_{c}") for c in GOLDEN_COLUMNS}, golden_sources=bindparam("v_src"),
        updated_at=bindparam("v_now"))
    payload = [{"mid": r["master_id"], **{f"v_{c}": r[c] for c in GOLDEN_COLUMNS}, "v_src": r["golden_sources"],
                "v_now": at} for r in rows]
    for part in _chunks(payload):
        conn.execute(stmt, part)


def insert_contacts(conn: Connection, rows: list[dict]) -> None:
    for part in _chunks(rows):
        conn.execute(insert(master_contact), part)


def insert_vehicles(conn: Connection, rows: list[dict]) -> None:
    for part in _chunks(rows):
        conn.execute(insert(master_vehicle), part)


def master_row(conn: Connection, master_id: str) -> dict | None:
    m = conn.execute(select(master_customer).where(master_customer.c.master_id == master_id)).mappings().first()
    return None if m is None else dict(m)


def master_rows(conn: Connection, master_ids: Sequence[str]) -> dict[str, dict]:
    out = {}
    for part in _chunks(sorted(set(master_ids))):
        for r in conn.execute(select(master_customer).where(master_customer.c.master_id.in_(part))).mappings():
            out[r["master_id"]] = dict(r)
    return out


def master_records(conn: Connection, master_id: str) -> list[dict]:
    cr = customer_record
    return _rows(conn.execute(select(cr.c.id, cr.c.source, cr.c.source_id, cr.c.dealer_code, cr.c.raw_name,
                                     cr.c.match_weight, cr.c.match_rule, cr.c.model_version, cr.c.decided_at,
                                     cr.c.seen_at, cr.c.source_table, cr.c.source_file, cr.c.source_row, cr.c.load_id)
                              .where(cr.c.master_id == master_id).order_by(cr.c.id)))


def master_contacts(conn: Connection, master_ids: Sequence[str]) -> list[dict]:
    return _rows(conn.execute(select(master_contact).where(master_contact.c.master_id.in_(list(master_ids)))
                              .order_by(master_contact.c.master_id, master_contact.c.kind,
                                        master_contact.c.is_primary.desc(), master_contact.c.value)))


def master_vehicles(conn: Connection, master_ids: Sequence[str]) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(select(master_vehicle.c.master_id, master_vehicle.c.vin)
                                           .where(master_vehicle.c.master_id.in_(list(master_ids))))]


def master_audit_rows(conn: Connection, master_id: str) -> list[dict]:
    return _rows(conn.execute(select(master_audit).where(or_(master_audit.c.master_id == master_id,
                                                             master_audit.c.other_ids.like(f'%"{master_id}"%')))
                              .order_by(master_audit.c.id)))


def record_summaries(conn: Connection, master_ids: Sequence[str]) -> list[dict]:
    """Per source record of these masters: source, plate, address and last seen (the review sheet)."""
    cr = customer_record
    out: list[dict] = []
    for part in _chunks(sorted(set(master_ids))):
        out += _rows(conn.execute(select(cr.c.id, cr.c.master_id, cr.c.source, cr.c.raw_plate, cr.c.m_plate,
                                         cr.c.raw_address, cr.c.raw_name, cr.c.seen_at)
                                  .where(cr.c.master_id.in_(part)).order_by(cr.c.id)))
    return out


# ------------------------------------------------------------------------------------ audit, decisions

def audit_row(action: str, master_id: str | None, *, at: datetime, model_version: str, others: Sequence[str] = (),
              before=None, after=None, reason: str | None = None, actor: str = "resolve") -> dict:
    return dict(at=at, action=action, master_id=master_id, other_ids=json.dumps(list(others)),
                before=json.dumps(before, ensure_ascii=False, default=str) if before is not None else None,
                after=json.dumps(after, ensure_ascii=False, default=str) if after is not None else None,
                reason=reason, model_version=model_version, actor=actor)


def audit(conn: Connection, action: str, master_id: str | None, **kw) -> None:
    conn.execute(insert(master_audit).values(**audit_row(action, master_id, **kw)))


def add_audits(conn: Connection, rows: list[dict]) -> None:
    """``audit_row`` dicts, in their order."""
    for part in _chunks(rows):
        conn.execute(insert(master_audit), part)


def decisions(conn: Connection) -> list[dict]:
    """Every manual decision, oldest first (side_a, side_b as lists of record ids)."""
    out = []
    for d in conn.execute(select(match_decision).order_by(match_decision.c.id)).mappings():
        out.append({**d, "side_a": json.loads(d["side_a"]), "side_b": json.loads(d["side_b"])})
    return out


def add_decision(conn: Connection, kind: str, side_a: list[int], side_b: list[int], *, at: datetime,
                 reason: str | None, actor: str, review_id: int | None = None) -> None:
    conn.execute(insert(match_decision).values(kind=kind, side_a=json.dumps(side_a), side_b=json.dumps(side_b),
                                               reason=reason, decided_by=actor, decided_at=at, review_id=review_id))


# ------------------------------------------------------------------------------------ links

def add_links(conn: Connection, rows: list[dict]) -> list[dict]:
    """Insert review / household links not yet recorded (key: kind, record_a, record_b); returns the
    rows inserted."""
    if not rows:
        return []
    have = {(k, a, b) for k, a, b in conn.execute(select(match_link.c.kind, match_link.c.record_a,
                                                         match_link.c.record_b))}
    new = [r for r in rows if (r["kind"], r["record_a"], r["record_b"]) not in have]
    for part in _chunks(new):
        conn.execute(insert(match_link), part)
    return new


def review_links(conn: Connection, status: str = LinkStatus.OPEN.value, limit: int | None = None) -> list[dict]:
    """Review links with both records' source, name and current master, best weight first."""
    a, b = customer_record.alias("a"), customer_record.alias("b")
    q = (select(match_link.c.id, match_link.c.weight, match_link.c.evidence, match_link.c.status,
                match_link.c.record_a, match_link.c.record_b, match_link.c.created_at,
                a.c.source.label("a_source"), a.c.source_id.label("a_source_id"), a.c.raw_name.label("a_name"),
                a.c.master_id.label("a_master"), b.c.source.label("b_source"), b.c.source_id.label("b_source_id"),
                b.c.raw_name.label("b_name"), b.c.master_id.label("b_master"))
         .join(a, a.c.id == match_link.c.record_a).join(b, b.c.id == match_link.c.record_b)
         .where(match_link.c.kind == "REVIEW", match_link.c.status == status)
         .order_by(match_link.c.weight.desc(), match_link.c.id))
    if limit:
        q = q.limit(limit)
    return _rows(conn.execute(q))


def review_link(conn: Connection, link_id: int) -> dict | None:
    row = conn.execute(select(match_link).where(match_link.c.id == link_id, match_link.c.kind == "REVIEW")).mappings().first()
    return None if row is None else dict(row)


def set_link_status(conn: Connection, link_ids: Sequence[int], status: str, *, at: datetime) -> None:
    conn.execute(update(match_link).where(match_link.c.id.in_([int(i) for i in link_ids]))
                 .values(status=LinkStatus(status).value, decided_at=at))


def open_reviews_between(conn: Connection, master_a: str, master_b: str) -> list[int]:
    """Ids of the OPEN review links whose records lie in these two masters (one on each side)."""
    a, b = customer_record.alias("a"), customer_record.alias("b")
    pair = [master_a, master_b]
    return [r[0] for r in conn.execute(
        select(match_link.c.id).join(a, a.c.id == match_link.c.record_a).join(b, b.c.id == match_link.c.record_b)
        .where(match_link.c.kind == "REVIEW", match_link.c.status == LinkStatus.OPEN.value, a.c.master_id.in_(pair),
               b.c.master_id.in_(pair), a.c.master_id != b.c.master_id))]
