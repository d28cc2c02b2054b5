"""Clusters and master ids: constrained clustering from the existing masters under the manual
decisions, reconciling clusters with master ids (new / kept / MERGED into the oldest / SPLIT into new
ids, each audited), and the review and household links between the masters that stay apart."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from dealersync.store import masters as store
from dealersync.store.tables import LinkStatus, MasterStatus

from . import engine
from .models import DEALER
from .progress import NO_PROGRESS, Progress
from .resolve import identities


def audit(conn: Connection, action: str, master_id: str | None, *, now: datetime, **kw) -> None:
    store.audit(conn, action, master_id, at=now, model_version=DEALER.version, **kw)


def decision_pairs(conn: Connection) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(force-link pairs, force-split pairs) of record ids; the newest decision about a pair wins."""
    last: dict[tuple[int, int], str] = {}
    for d in store.decisions(conn):
        a, b = d["side_a"], d["side_b"]
        if d["kind"] == "FORCE_LINK":
            members = a + b
            for x in members[1:]:
                last[tuple(sorted((members[0], x)))] = "LINK"
            for x in a:
                for y in b:
                    last[tuple(sorted((x, y)))] = "LINK"
        else:
            for x in a:
                for y in b:
                    last[tuple(sorted((x, y)))] = "SPLIT"
    links = [p for p, k in last.items() if k == "LINK"]
    splits = [p for p, k in last.items() if k == "SPLIT"]
    return links, splits


def cluster_records(conn: Connection, df: pd.DataFrame, scored: engine.Scored, *, full: bool,
                    progress: Progress = NO_PROGRESS) -> tuple[np.ndarray, pd.Series]:
    """Cluster labels per record (position in ``df``) and each record's best MERGE weight, by the
    clustering ``resolve-file`` runs (``engine.cluster``: one valid ID, one full name, one gender per
    cluster; the name and evidence passes) on the records' stored normalised columns
    (``resolve.identities``), with what the store adds: existing masters stay together (unless
    ``full``), manual splits are never joined, manual links always."""
    links, splits = decision_pairs(conn)
    pos = pd.Series(np.arange(len(df)), index=df["id"].to_numpy())
    start = None
    if not full:  # existing masters stay together: start from them
        existing = df["master_id"].to_numpy(dtype=object)
        first = pd.Series(np.arange(len(df))).groupby(pd.Series(existing).fillna("")).transform("min").to_numpy()
        start = np.where(pd.isna(existing), np.arange(len(df)), first)
    known = lambda a, b: a in pos.index and b in pos.index  # noqa: E731
    merges = engine.best_first(scored.pairs[scored.pairs["decision"] == engine.MERGE])
    progress.start("cluster", len(merges))
    labels = engine.cluster(len(df), scored.pairs, **identities(df), start=start,
                            force_split=[(int(pos[a]), int(pos[b])) for a, b in splits if known(a, b)],
                            force_link=[(int(pos[a]), int(pos[b])) for a, b in links if known(a, b)],
                            on_progress=lambda k: progress.advance("cluster", k))
    # the weight that put each record where it is: its best MERGE edge
    w = pd.concat([merges[["l", "weight"]].rename(columns={"l": "p"}), merges[["r", "weight"]].rename(columns={"r": "p"})])
    best = w.groupby("p")["weight"].max()
    progress.finish("cluster", len(merges))
    return labels, best


def reconcile(conn: Connection, df: pd.DataFrame, labels: np.ndarray, best: pd.Series, st, *, actor: str,
              now: datetime, progress: Progress = NO_PROGRESS) -> set[str]:
    """Map clusters to master ids: a cluster with no existing master gets a new id; with one, keeps it;
    with several, the oldest survives and the others are MERGED into it. An existing master whose records
    now lie in several clusters is SPLIT and each part gets a new id."""
    f = pd.DataFrame({"rid": df["id"].to_numpy(), "old": df["master_id"].to_numpy(dtype=object), "label": labels,
                      "ctype": df["customer_type"].to_numpy(dtype=object)})
    seq = store.master_seqs(conn)
    spread = f.dropna(subset=["old"]).groupby("old")["label"].nunique()
    split_masters = set(spread[spread > 1].index)
    touched: set[str] = set()
    assign: dict[int, str] = {}
    groups = f.groupby("label", sort=True)
    progress.start("write", groups.ngroups)
    # new masters and the audit are written in batches (ids allocated in the same order as one by one)
    next_seq, new_masters, audits = store.next_seq(conn), [], []
    for k, (label, grp) in enumerate(groups, 1):
        olds = set(grp["old"].dropna())
        keep = sorted((o for o in olds if o not in split_masters), key=lambda o: seq.get(o, 1 << 62))
        if not olds - split_masters and not keep:
            mid = store.master_id_of(next_seq)
            new_masters.append(dict(master_id=mid, seq=next_seq, customer_type=grp["ctype"].iloc[0],
                                    created_at=now, updated_at=now))
            next_seq += 1
            if not olds:
                st.created += 1
                audits.append(store.audit_row("CREATE", mid, at=now, model_version=DEALER.version,
                                              after={"records": len(grp)}, actor=actor))
        else:
            mid = keep[0]
            losers = keep[1:]
            if losers:
                before = store.snapshot(conn, [mid, *losers])
                store.set_status(conn, losers, MasterStatus.MERGED, at=now, merged_into=mid)
                st.merged += len(losers)
                touched.update(losers)
                audits.append(store.audit_row("MERGE", mid, at=now, model_version=DEALER.version, others=losers,
                                              before=before, after={"survivor": mid, "merged": losers}, actor=actor,
                                              reason="manual link" if actor.startswith("manual") else "model match"))
        assign[int(label)] = mid
        touched.add(mid)
        if k % 10_000 == 0:
            progress.advance("write", 10_000)
    store.add_masters(conn, new_masters)
    store.add_audits(conn, audits)
    for old in split_masters:
        parts = sorted({assign[int(x)] for x in f.loc[f["old"] == old, "label"]})
        before = store.snapshot(conn, [old])
        store.set_status(conn, [old], MasterStatus.SPLIT, at=now)
        st.split += 1
        audit(conn, "SPLIT", old, now=now, others=parts, before=before, after={"parts": parts}, actor=actor)
    f["new"] = f["label"].map(assign)
    changed = f[f["old"].astype(object) != f["new"].astype(object)]
    rule = "FORCE" if actor.startswith("manual") else "MODEL"
    store.assign_many(conn, list(zip(changed["rid"].tolist(), changed["new"].tolist())), at=now,
                      model_version=DEALER.version, rule=rule)
    # match weights of records (re)decided in this run
    if len(best):
        wpos = f.iloc[best.index.to_numpy()]
        redecided = set(changed["rid"].tolist())
        store.set_match_weights(conn, [(int(rid), round(float(wt), 3))
                                       for rid, wt in zip(wpos["rid"].to_numpy(), best.to_numpy())
                                       if int(rid) in redecided])
    return touched


def record_links(conn: Connection, df: pd.DataFrame, scored: engine.Scored, labels: np.ndarray, st, *,
                 now: datetime) -> None:
    """REVIEW and HOUSEHOLD links between records that stay in different masters: one per pair of
    masters (the best-scoring pair of their records), not one per pair of records."""
    p = scored.pairs
    p = p[p["decision"].isin([engine.REVIEW, engine.HOUSEHOLD])]
    la, lb = labels[p["l"].to_numpy()], labels[p["r"].to_numpy()]
    p = p[la != lb]
    if p.empty:
        return
    la, lb = labels[p["l"].to_numpy()], labels[p["r"].to_numpy()]
    p = (engine.best_first(p.assign(_a=np.minimum(la, lb), _b=np.maximum(la, lb)))
         .drop_duplicates(["decision", "_a", "_b"]).drop(columns=["_a", "_b"]))
    rid = df["id"].to_numpy()
    comps = [c.name for c in scored.model.comparisons]
    rows = []
    for r in p.itertuples(index=False):
        a, b = sorted((int(rid[r.l]), int(rid[r.r])))
        ev = {c: scored.levels[c][getattr(r, c)] for c in comps if getattr(r, c) >= 0}
        rows.append(dict(kind=r.decision, record_a=a, record_b=b, weight=round(float(r.weight), 3),
                         evidence=json.dumps(ev), status=LinkStatus.OPEN.value,
                         model_version=DEALER.version, created_at=now))
    for row in store.add_links(conn, rows):
        if row["kind"] == engine.REVIEW:
            st.review_links += 1
        else:
            st.household_links += 1
