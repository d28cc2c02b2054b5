"""Master customer records in the store: incremental resolution with stable ids, manual decisions,
survivorship, lineage and audit. Plain functions over a SQLAlchemy ``Connection``; none commits (the
caller's transaction makes one resolution run atomic). The SQL lives in ``dealersync.store.masters``;
the work is split by concern, and this module is the one the callers import:

- ``sources``: the feeds' customer records -> normalised source records (``customer_record``)
- ``scoring``: the records as a frame, the model's stored parameters, candidate pairs on DuckDB
- ``clustering``: clusters under the manual decisions -> master ids (merge / split, audited), links
- ``golden``: survivorship (golden fields, contact points, vehicles, consent)
- ``run``: one run end to end, with progress (``progress``)
- ``decisions``: manual link / split, the review queue and its decisions

Ids. A master id (``M000000042``) never changes meaning. When clusters of existing masters join, the
oldest master (lowest ``seq``) survives and the others become ``MERGED`` into it. A split (a manual
decision) retires the master as ``SPLIT`` and gives every part a new id. New records are scored only
against existing records sharing a blocking key (an increment), never by re-scoring everything,
unless ``full=True`` (a new model version).

Manual decisions (FORCE_LINK, FORCE_SPLIT) are stored and applied on every later run before the
model: a force-split pair is never joined again, a force-link pair never parted; the newest decision
about a pair wins.
"""
from __future__ import annotations

import json

from sqlalchemy import Connection

from dealersync.store import masters as store
from dealersync.store.tables import MasterStatus

from .clustering import decision_pairs  # noqa: F401
from .decisions import (decide_review, force_link, force_split, master_of, record_ids,  # noqa: F401
                        review_queue)
from .golden import SOURCE_PRECEDENCE, recompute_golden  # noqa: F401
from .run import RunStats, resolve  # noqa: F401
from .sources import LINEAGE, collect_sources, normalise_partitioned, py, sync_records  # noqa: F401


def resolve_master_id(conn: Connection, master_id: str) -> str:
    """Follow MERGED pointers to the surviving master."""
    return store.resolve_master_id(conn, master_id)


def show_master(conn: Connection, master_id: str) -> dict | None:
    m = store.master_row(conn, master_id)
    if m is None:
        return None
    out = {k: py(v) for k, v in m.items()}
    out["golden_sources"] = json.loads(m["golden_sources"] or "{}")
    if m["status"] == MasterStatus.MERGED:
        out["survivor"] = resolve_master_id(conn, master_id)
    out["records"] = [{k: py(v) for k, v in r.items()} for r in store.master_records(conn, master_id)]
    out["contacts"] = [{k: py(v) for k, v in r.items() if k not in ("id", "master_id")}
                       for r in store.master_contacts(conn, [master_id])]
    out["vehicles"] = sorted({vin for _, vin in store.master_vehicles(conn, [master_id])})
    out["audit"] = [{k: py(v) for k, v in r.items() if k != "id"} for r in store.master_audit_rows(conn, master_id)]
    return out
