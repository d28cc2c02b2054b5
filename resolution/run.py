"""One resolution run over the store: sync the source records, score the new and changed ones,
cluster under the manual decisions, reconcile master ids, recompute the golden records touched, and
record review and household links. Progress goes to the caller's callback (see ``progress``)."""
from __future__ import annotations

from dealersync import clock as dealer_clock
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection

from dealersync.store import masters as store

from . import progress as progress_
from .clustering import cluster_records, reconcile, record_links
from .golden import SOURCE_PRECEDENCE, recompute_golden
from .models import DEALER
from .scoring import load_all, score_records
from .sources import collect_sources, sync_records


@dataclass
class RunStats:
    records: int = 0
    scored_records: int = 0
    candidate_pairs: int = 0
    created: int = 0
    merged: int = 0
    split: int = 0
    review_links: int = 0
    household_links: int = 0
    masters: int = 0
    model_version: str = DEALER.version
    timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def resolve(conn: Connection, *, full: bool = False, actor: str = "resolve", threads: int | None = None,
            apply_decisions: bool = False, precedence: tuple[str, ...] | list[str] = SOURCE_PRECEDENCE,
            mapper=None, partition_rows: int = 200_000, progress=None) -> RunStats:
    """One resolution run over the store: sync source records, score the new and changed ones (all of
    them with ``full``), cluster under the manual decisions, reconcile master ids, recompute golden
    records of the masters touched, and record review and household links. ``progress``: a callback
    taking ``progress.ProgressEvent`` (counts, rate, ETA), or a ``progress.Progress``."""
    prog = progress_.of(progress)
    now = dealer_clock.now()
    st = RunStats()
    t0 = time.perf_counter()
    pending = set(sync_records(conn, collect_sources(conn), mapper, partition_rows, now=now, progress=prog))
    pending |= set(store.unassigned_record_ids(conn))
    st.timings["sync"] = time.perf_counter() - t0
    if not pending and not full and not apply_decisions:
        st.records = store.count_records(conn)
        st.masters = store.count_active(conn)
        prog.complete()
        return st
    t0 = time.perf_counter()
    df = load_all(conn)
    st.records = len(df)
    is_new = df["id"].isin(pending).to_numpy() | full
    st.scored_records = int(is_new.sum())
    scored = score_records(conn, df, is_new, full=full, threads=threads, now=now, progress=prog)
    st.candidate_pairs = len(scored.pairs)
    st.timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels, best = cluster_records(conn, df, scored, full=full, progress=prog)
    st.timings["cluster"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    touched = reconcile(conn, df, labels, best, st, actor=actor, now=now, progress=prog)
    record_links(conn, df, scored, labels, st, now=now)
    recompute_golden(conn, touched, precedence)
    st.masters = store.count_active(conn)
    prog.finish("write", len(np.unique(labels)))
    st.timings["write"] = time.perf_counter() - t0
    return st
