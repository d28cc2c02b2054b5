"""Manual decisions: a data officer's link (these records are one customer) or split (these are
not), stored and re-applied before the model on every later run, each audited; the review queue
(one entry per pair of masters the model was not sure of) and its decisions."""
from __future__ import annotations

from dealersync import clock as dealer_clock
from datetime import datetime

from sqlalchemy import Connection

from dealersync.errors import ConfigurationError
from dealersync.store import masters as store
from dealersync.store.tables import LinkStatus, MasterStatus

from .clustering import audit
from .golden import recompute_golden
from .models import DEALER
from .run import resolve


def _now() -> datetime:
    return dealer_clock.now()


def record_ids(conn: Connection, refs: list[str]) -> list[int]:
    """``SOURCE:SOURCE_ID`` (e.g. ``DMS:GZ0012:C001``) or a numeric customer_record id -> record ids."""
    out = []
    for ref in refs:
        rid = store.find_record(conn, ref)
        if rid is None:
            raise ConfigurationError(f"no source record {ref!r} (give SOURCE:SOURCE_ID or a record id)")
        out.append(rid)
    return out


def master_of(conn: Connection, record_id: int) -> str | None:
    return store.master_of(conn, record_id)


def _members(conn: Connection, master_id: str) -> list[int]:
    return store.members(conn, master_id)


def force_link(conn: Connection, refs: list[str], *, reason: str | None = None, actor: str = "manual",
               review_id: int | None = None) -> str:
    """Put the masters of the given records together, now and on every later run. Returns the survivor."""
    ids = record_ids(conn, refs)
    masters = [master_of(conn, i) for i in ids]
    side_a = _members(conn, masters[0]) if masters[0] else [ids[0]]
    side_b = sorted({x for m, i in zip(masters[1:], ids[1:]) for x in (_members(conn, m) if m else [i])} - set(side_a))
    now = _now()
    store.add_decision(conn, "FORCE_LINK", side_a, side_b, at=now, reason=reason, actor=actor, review_id=review_id)
    audit(conn, "FORCE_LINK", masters[0], now=now, others=[m for m in masters[1:] if m], reason=reason, actor=actor,
          after={"records": refs})
    resolve(conn, actor=f"manual:{actor}", apply_decisions=True)
    return master_of(conn, ids[0])


def force_split(conn: Connection, refs: list[str], *, reason: str | None = None, actor: str = "manual",
                review_id: int | None = None) -> list[str]:
    """Separate the given records from the rest of their master (or, for records in different masters,
    keep them apart). The split master is retired; each part gets a new id."""
    ids = record_ids(conn, refs)
    masters = {master_of(conn, i) for i in ids} - {None}
    rest = sorted({x for m in masters for x in _members(conn, m)} - set(ids))
    side_b = rest if len(masters) == 1 else ids[1:]
    side_a = ids if len(masters) == 1 else ids[:1]
    if not side_b:
        raise ConfigurationError("nothing to split: those records are the whole master")
    now = _now()
    store.add_decision(conn, "FORCE_SPLIT", side_a, side_b, at=now, reason=reason, actor=actor, review_id=review_id)
    audit(conn, "FORCE_SPLIT", next(iter(masters), None), now=now, reason=reason, actor=actor, after={"records": refs})
    if len(masters) == 1:
        _apply_split(conn, side_a, side_b, actor=f"manual:{actor}")
    return sorted({master_of(conn, i) for i in ids + side_b} - {None})


def _apply_split(conn: Connection, side_a: list[int], side_b: list[int], *, actor: str) -> None:
    old = master_of(conn, side_a[0])
    now = _now()
    before = store.snapshot(conn, [old])
    store.set_status(conn, [old], MasterStatus.SPLIT, at=now)
    ctype = store.master_type(conn, old)
    parts = []
    for side in (side_a, side_b):
        mid = store.new_master(conn, ctype, now)
        parts.append(mid)
        store.assign_records(conn, side, mid, at=now, model_version=DEALER.version, rule="FORCE_SPLIT")
    audit(conn, "SPLIT", old, now=now, others=parts, before=before, after={"parts": parts}, actor=actor)
    recompute_golden(conn, {old, *parts})


def review_queue(conn: Connection, status: str = LinkStatus.OPEN.value, limit: int | None = 100) -> list[dict]:
    """Review pairs (one per pair of masters), best weight first."""
    return store.review_links(conn, status, limit)


DECISIONS = {"LINK": LinkStatus.LINKED.value, "SEPARATE": LinkStatus.SPLIT.value, "DISMISS": LinkStatus.DISMISSED.value}


def decide_review(conn: Connection, link_id: int, decision: str, *, actor: str = "manual",
                  reason: str | None = None) -> None:
    """LINK (same person), SEPARATE (different people: never merged) or DISMISS (closed, no decision)."""
    row = store.review_link(conn, link_id)
    if row is None:
        raise ConfigurationError(f"no review pair {link_id}")
    refs = [str(row["record_a"]), str(row["record_b"])]
    decision = decision.upper()
    if decision not in DECISIONS:
        raise ConfigurationError("decision must be link, separate or dismiss")
    why = reason or f"review {link_id}"
    # the entry stands for its pair of masters: other open pairs of their records close with it
    ma, mb = master_of(conn, row["record_a"]), master_of(conn, row["record_b"])
    same_pair = store.open_reviews_between(conn, ma, mb) if ma and mb and ma != mb else [link_id]
    if decision == "LINK":
        force_link(conn, refs, reason=why, actor=actor, review_id=link_id)
    elif decision == "SEPARATE":
        now = _now()
        store.add_decision(conn, "FORCE_SPLIT", [row["record_a"]], [row["record_b"]], at=now, reason=why, actor=actor,
                           review_id=link_id)
        audit(conn, "FORCE_SPLIT", master_of(conn, row["record_a"]), now=now,
              others=[master_of(conn, row["record_b"])], reason=why, actor=actor)
    store.set_link_status(conn, sorted({link_id, *same_pair}), DECISIONS[decision], at=_now())
