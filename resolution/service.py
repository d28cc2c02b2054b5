"""Master customer records in the store: incremental resolution with stable ids, manual decisions,
survivorship, lineage and audit. Plain functions over a SQLAlchemy ``Connection``; none commits (the
caller's transaction makes one resolution run atomic).

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

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, func, insert, or_, select, update

from dealersync.store.tables import (FEED_TABLES, MATCH_COLUMNS, RAW_COLUMNS, crm_lead, customer_record, master_audit, master_contact,
                          master_customer, master_vehicle, match_decision, match_link, match_model)

from . import engine
from .models import DEALER
from .normalise import normalise_records
from .resolve import load_records

SOURCE_PRECEDENCE = ("DMS", "SALES", "SERVICE", "CRM")
LINEAGE = ("source_table", "source_file", "source_row", "load_id")


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


# ------------------------------------------------------------------------------------ sources

def collect_sources(conn: Connection) -> pd.DataFrame:
    """Customer records from the DMS feeds in the resolve-file layout, with dealer, seen_at and consent:
    the customer master (DMS), vehicle sales (SALES) and the people who brought a car in (SERVICE)."""
    cust, veh, sales, ro = (FEED_TABLES[n] for n in ("customers", "vehicles", "vehicle_sales", "repair_orders"))
    frames = []
    c = pd.DataFrame(conn.execute(select(
        cust.c.dealer_code, cust.c.customer_id, cust.c.customer_type, cust.c.name, cust.c.mobile, cust.c.phone,
        cust.c.id_number, cust.c.email, cust.c.address, cust.c.marketing_consent, cust.c.created_date,
        cust.c.business_date, cust.c.source_file, cust.c.source_row, cust.c.load_id)).mappings().all())
    if len(c):
        owned = pd.DataFrame(conn.execute(select(veh.c.dealer_code, veh.c.owner_customer_id, func.min(veh.c.vin).label("vin"),
                                                 func.min(veh.c.plate).label("plate"))
                                          .group_by(veh.c.dealer_code, veh.c.owner_customer_id)).mappings().all())
        if len(owned):
            c = c.merge(owned, how="left", left_on=["dealer_code", "customer_id"],
                        right_on=["dealer_code", "owner_customer_id"])
        else:
            c["vin"], c["plate"] = None, None
        company = np.where(c["customer_type"] == "ORGANISATION", c["name"], None)
        frames.append(pd.DataFrame({
            "source": "DMS", "source_id": c["dealer_code"] + ":" + c["customer_id"], "dealer_code": c["dealer_code"],
            "customer_type": c["customer_type"], "name": np.where(company == None, c["name"], None),  # noqa: E711
            "company": company, "mobile": c["mobile"], "phone": c["phone"], "id_number": c["id_number"],
            "email": c["email"], "address": c["address"], "vin": c["vin"], "plate": c["plate"],
            "marketing_consent": c["marketing_consent"],
            "seen_at": pd.to_datetime(c["business_date"].fillna(c["created_date"])), "source_table": cust.name,
            **{k: c[k] for k in ("source_file", "source_row", "load_id")}}))
    s = pd.DataFrame(conn.execute(select(sales.c.dealer_code, sales.c.sale_no, sales.c.customer_name,
                                         sales.c.mobile, sales.c.id_number, sales.c.vin, sales.c.order_date,
                                         sales.c.business_date, sales.c.source_file, sales.c.source_row,
                                         sales.c.load_id)).mappings().all())
    if len(s):
        frames.append(pd.DataFrame({
            "source": "SALES", "source_id": s["dealer_code"] + ":" + s["sale_no"], "dealer_code": s["dealer_code"],
            "customer_type": None, "name": s["customer_name"], "mobile": s["mobile"], "id_number": s["id_number"],
            "vin": s["vin"], "seen_at": pd.to_datetime(s["order_date"].fillna(s["business_date"])),
            "source_table": sales.name, **{k: s[k] for k in ("source_file", "source_row", "load_id")}}))
    r = pd.DataFrame(conn.execute(select(ro.c.dealer_code, ro.c.ro_number, ro.c.sender_name, ro.c.sender_mobile,
                                         ro.c.vin, ro.c.plate, ro.c.opened_at, ro.c.source_file, ro.c.source_row,
                                         ro.c.load_id)
                                  .where(or_(ro.c.sender_name.is_not(None), ro.c.sender_mobile.is_not(None))))
                     .mappings().all())
    if len(r):
        frames.append(pd.DataFrame({
            "source": "SERVICE", "source_id": r["dealer_code"] + ":" + r["ro_number"], "dealer_code": r["dealer_code"],
            "customer_type": "PERSON", "name": r["sender_name"], "mobile": r["sender_mobile"], "vin": r["vin"],
            "plate": r["plate"], "seen_at": pd.to_datetime(r["opened_at"]), "source_table": ro.name,
            **{k: r[k] for k in ("source_file", "source_row", "load_id")}}))
    leads = pd.DataFrame(conn.execute(select(crm_lead.c.lead_id, crm_lead.c.name, crm_lead.c.mobile,
                                             crm_lead.c.modified_at)).mappings().all())
    if len(leads):  # CRM leads: potential customers
        frames.append(pd.DataFrame({
            "source": "CRM", "source_id": "LEAD:" + leads["lead_id"], "customer_type": "PERSON", "name": leads["name"],
            "mobile": leads["mobile"], "seen_at": pd.to_datetime(leads["modified_at"], utc=True).dt.tz_localize(None),
            "source_table": crm_lead.name}))
    cols = ["source", "source_id", "dealer_code", *RAW_COLUMNS, "marketing_consent", "seen_at", *LINEAGE]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)
    for col in cols:
        if col not in out:
            out[col] = None
    return out


def _hash(frame: pd.DataFrame) -> pd.Series:
    cols = [*RAW_COLUMNS, "marketing_consent"]
    joined = frame[cols].astype("str").fillna("\x00").agg("\x1f".join, axis=1)
    return joined.map(lambda s: hashlib.sha256(s.encode()).hexdigest())


def normalise_partitioned(frame: pd.DataFrame, mapper=None, partition_rows: int = 200_000) -> pd.DataFrame:
    """Normalise in partitions. ``mapper(fn, parts) -> results`` runs them (in order) wherever the caller
    likes: a Prefect task runner (threads, or a Dask cluster at dealer-group scale); default: here."""
    if mapper is None or len(frame) <= partition_rows:
        return normalise_records(frame)
    parts = [frame.iloc[i:i + partition_rows] for i in range(0, len(frame), partition_rows)]
    return pd.concat(mapper(normalise_records, parts))


def sync_records(conn: Connection, frame: pd.DataFrame, mapper=None, partition_rows: int = 200_000) -> list[int]:
    """Upsert source records into the cross-reference (natural key: source, source_id). Returns the
    ids of new and changed records (to be scored); unchanged records are not touched."""
    if frame.empty:
        return []
    frame = frame.drop_duplicates(["source", "source_id"], keep="last").reset_index(drop=True)
    frame["content_hash"] = _hash(frame)
    have = pd.DataFrame(conn.execute(select(customer_record.c.id, customer_record.c.source, customer_record.c.source_id,
                                            customer_record.c.content_hash, customer_record.c.load_id,
                                            customer_record.c.source_row)).mappings().all(),
                        columns=["id", "source", "source_id", "content_hash", "load_id", "source_row"])
    m = frame.merge(have, on=["source", "source_id"], how="left", suffixes=("", "_old"))
    todo = m[m["content_hash_old"].isna() | (m["content_hash"] != m["content_hash_old"])]
    # same content from a newer load (a re-export): only the lineage moves
    moved = m[m["content_hash_old"].notna() & (m["content_hash"] == m["content_hash_old"]) &
              ((m["load_id"] != m["load_id_old"]) | (m["source_row"] != m["source_row_old"]))]
    if len(moved):
        from sqlalchemy import bindparam
        conn.execute(update(customer_record).where(customer_record.c.id == bindparam("rid")).values(
            **{k: bindparam(f"v_{k}") for k in LINEAGE}),
            [{"rid": int(r["id"]), **{f"v_{k}": _py(r[k]) for k in LINEAGE}} for _, r in moved.iterrows()])
    if todo.empty:
        return []
    norm = normalise_partitioned(todo[["source", "source_id", *RAW_COLUMNS]], mapper, partition_rows)
    now = _now()
    rows = []
    for i, (idx, r) in enumerate(todo.iterrows()):
        n = norm.loc[idx]
        row = {"source": r["source"], "source_id": r["source_id"], "dealer_code": r["dealer_code"],
               **{f"raw_{c}": _py(r[c]) for c in RAW_COLUMNS},
               "marketing_consent": None if pd.isna(r["marketing_consent"]) else bool(r["marketing_consent"]),
               "consent_at": _py(r["seen_at"]) if not pd.isna(r["marketing_consent"]) else None,
               "seen_at": _py(r["seen_at"]), **{k: _py(r[k]) for k in LINEAGE},
               **{f"m_{c}": _py(n[c]) for c in MATCH_COLUMNS},
               "content_hash": r["content_hash"], "updated_at": now}
        rows.append((None if pd.isna(r["id"]) else int(r["id"]), row))
    new = [row for rid, row in rows if rid is None]
    if new:
        conn.execute(insert(customer_record), new)
    for rid, row in rows:
        if rid is not None:
            conn.execute(update(customer_record).where(customer_record.c.id == rid).values(**row))
    keys = list(zip(todo["source"], todo["source_id"]))
    ids = pd.DataFrame(conn.execute(select(customer_record.c.id, customer_record.c.source,
                                           customer_record.c.source_id)).mappings().all())
    ids = ids.set_index(["source", "source_id"])["id"]
    return [int(ids[k]) for k in keys]


def _py(v):
    if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


# ------------------------------------------------------------------------------------ resolution

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


def _load_all(conn: Connection) -> pd.DataFrame:
    cols = [customer_record.c.id, customer_record.c.source, customer_record.c.source_id, customer_record.c.master_id,
            customer_record.c.raw_customer_type, *[customer_record.c[f"m_{c}"] for c in MATCH_COLUMNS]]
    df = pd.DataFrame(conn.execute(select(*cols).order_by(customer_record.c.id)).mappings().all(),
                      columns=[c.name for c in cols])
    df = df.rename(columns={f"m_{c}": c for c in MATCH_COLUMNS})
    df["customer_type"] = df.pop("raw_customer_type")
    for c in MATCH_COLUMNS:
        if c not in ("name_placeholder", "vin_ok"):
            df[c] = df[c].astype("str")
    df["name_placeholder"] = df["name_placeholder"].fillna(True).astype(bool)
    df["vin_ok"] = df["vin_ok"].fillna(False).astype(bool)
    df["customer_type"] = df["customer_type"].fillna("PERSON").astype("str")
    return df


def _params(conn: Connection) -> dict | None:
    row = conn.execute(select(match_model.c.params).where(match_model.c.version == DEALER.version)).first()
    if row is None:
        return None
    p = json.loads(row[0])
    return {"u": {k: np.array(v) for k, v in p["u"].items()}, "m": {k: np.array(v) for k, v in p["m"].items()},
            "lambda": p["lambda"]}


def _save_params(conn: Connection, params: dict, records: int) -> None:
    doc = json.dumps({"u": {k: list(map(float, v)) for k, v in params["u"].items()},
                      "m": {k: list(map(float, v)) for k, v in params["m"].items()}, "lambda": params["lambda"]})
    conn.execute(delete(match_model).where(match_model.c.version == DEALER.version))
    conn.execute(insert(match_model).values(version=DEALER.version, trained_at=_now(), records=records, params=doc))


def _decision_pairs(conn: Connection) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(force-link pairs, force-split pairs) of record ids; the newest decision about a pair wins."""
    last: dict[tuple[int, int], str] = {}
    for d in conn.execute(select(match_decision).order_by(match_decision.c.id)).mappings():
        a, b = json.loads(d["side_a"]), json.loads(d["side_b"])
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


def resolve(conn: Connection, *, full: bool = False, actor: str = "resolve", threads: int | None = None,
            apply_decisions: bool = False, precedence: tuple[str, ...] | list[str] = SOURCE_PRECEDENCE,
            mapper=None, partition_rows: int = 200_000) -> RunStats:
    """One resolution run over the store: sync source records, score the new and changed ones (all of
    them with ``full``), cluster under the manual decisions, reconcile master ids, recompute golden
    records of the masters touched, and record review and household links."""
    import time
    st = RunStats()
    t0 = time.perf_counter()
    pending = set(sync_records(conn, collect_sources(conn), mapper, partition_rows))
    pending |= {r[0] for r in conn.execute(select(customer_record.c.id).where(customer_record.c.master_id.is_(None)))}
    st.timings["sync"] = time.perf_counter() - t0
    if not pending and not full and not apply_decisions:
        st.records = conn.execute(select(func.count()).select_from(customer_record)).scalar_one()
        st.masters = _count_active(conn)
        return st
    t0 = time.perf_counter()
    df = _load_all(conn)
    st.records = len(df)
    pos = pd.Series(np.arange(len(df)), index=df["id"].to_numpy())
    is_new = df["id"].isin(pending).to_numpy() | full
    st.scored_records = int(is_new.sum())
    con = engine.connect(threads)
    load_records(con, df[[c for c in df.columns if c not in ("id", "master_id")]], is_new)
    params = None if full else _params(conn)
    scored = engine.score(con, DEALER, params=params, only_new=not full and params is not None)
    con.close()
    if params is None:
        _save_params(conn, scored.params, len(df))
    st.candidate_pairs = len(scored.pairs)
    st.timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    links, splits = _decision_pairs(conn)
    cl = engine.Clusters(len(df))
    existing = df["master_id"].to_numpy(dtype=object)
    if not full:  # existing masters stay together: start from them
        first = pd.Series(np.arange(len(df))).groupby(pd.Series(existing).fillna("")).transform("min").to_numpy()
        cl.parent = np.where(pd.isna(existing), np.arange(len(df)), first)
    ids = df["id_valid"].to_numpy(dtype=object, na_value=None)
    labels0 = cl.labels()
    has = np.flatnonzero(pd.notna(ids))
    for root, grp in pd.Series(ids[has]).groupby(labels0[has]):
        cl.ids[int(root)] = set(grp)
    for a, b in splits:
        if a in pos.index and b in pos.index:
            cl.forbid(int(pos[a]), int(pos[b]))
    for a, b in links:
        if a in pos.index and b in pos.index:
            cl.union(int(pos[a]), int(pos[b]), force=True)
    merges = scored.pairs[scored.pairs["decision"] == engine.MERGE].sort_values("weight", ascending=False)
    for a, b in zip(merges["l"].to_numpy(), merges["r"].to_numpy()):
        cl.union(int(a), int(b))
    labels = cl.labels()
    # the weight that put each record where it is: its best MERGE edge
    w = pd.concat([merges[["l", "weight"]].rename(columns={"l": "p"}), merges[["r", "weight"]].rename(columns={"r": "p"})])
    best = w.groupby("p")["weight"].max()
    st.timings["cluster"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    touched = _reconcile(conn, df, labels, best, st, actor=actor, full=full)
    _record_links(conn, df, scored, labels, st)
    recompute_golden(conn, touched, precedence)
    st.masters = _count_active(conn)
    st.timings["write"] = time.perf_counter() - t0
    return st


def _count_active(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(master_customer)
                        .where(master_customer.c.status == "ACTIVE")).scalar_one()


def _snapshot(conn: Connection, master_ids: list[str]) -> dict:
    rows = conn.execute(select(master_customer).where(master_customer.c.master_id.in_(master_ids))).mappings().all()
    out = {}
    for r in rows:
        members = [f"{s}:{i}" for s, i in conn.execute(
            select(customer_record.c.source, customer_record.c.source_id)
            .where(customer_record.c.master_id == r["master_id"]).order_by(customer_record.c.id))]
        out[r["master_id"]] = {"status": r["status"], "name": r["name"], "company": r["company"],
                               "records": members}
    return out


def _new_master(conn: Connection, ctype: str | None, now: datetime) -> str:
    seq = (conn.execute(select(func.max(master_customer.c.seq))).scalar() or 0) + 1
    mid = f"M{seq:09d}"
    conn.execute(insert(master_customer).values(master_id=mid, seq=seq, status="ACTIVE", customer_type=ctype,
                                                created_at=now, updated_at=now, record_count=0))
    return mid


def _audit(conn: Connection, action: str, master_id: str | None, *, others=(), before=None, after=None,
           reason: str | None = None, actor: str = "resolve") -> None:
    conn.execute(insert(master_audit).values(
        at=_now(), action=action, master_id=master_id, other_ids=json.dumps(list(others)),
        before=json.dumps(before, ensure_ascii=False, default=str) if before is not None else None,
        after=json.dumps(after, ensure_ascii=False, default=str) if after is not None else None,
        reason=reason, model_version=DEALER.version, actor=actor))


def _reconcile(conn: Connection, df: pd.DataFrame, labels: np.ndarray, best: pd.Series, st: RunStats, *,
               actor: str, full: bool) -> set[str]:
    """Map clusters to master ids: a cluster with no existing master gets a new id; with one, keeps it;
    with several, the oldest survives and the others are MERGED into it. An existing master whose records
    now lie in several clusters is SPLIT and each part gets a new id."""
    now = _now()
    f = pd.DataFrame({"rid": df["id"].to_numpy(), "old": df["master_id"].to_numpy(dtype=object), "label": labels,
                      "ctype": df["customer_type"].to_numpy(dtype=object)})
    seq = dict(conn.execute(select(master_customer.c.master_id, master_customer.c.seq)).all())
    spread = f.dropna(subset=["old"]).groupby("old")["label"].nunique()
    split_masters = set(spread[spread > 1].index)
    touched: set[str] = set()
    assign: dict[int, str] = {}
    for label, grp in f.groupby("label", sort=True):
        olds = set(grp["old"].dropna())
        keep = sorted((o for o in olds if o not in split_masters), key=lambda o: seq.get(o, 1 << 62))
        if not olds - split_masters and not keep:
            mid = _new_master(conn, grp["ctype"].iloc[0], now)
            if not olds:
                st.created += 1
                _audit(conn, "CREATE", mid, after={"records": len(grp)}, actor=actor)
        else:
            mid = keep[0]
            losers = keep[1:]
            if losers:
                before = _snapshot(conn, [mid, *losers])
                conn.execute(update(master_customer).where(master_customer.c.master_id.in_(losers))
                             .values(status="MERGED", merged_into=mid, updated_at=now))
                st.merged += len(losers)
                touched.update(losers)
                _audit(conn, "MERGE", mid, others=losers, before=before,
                       after={"survivor": mid, "merged": losers}, actor=actor,
                       reason="manual link" if actor.startswith("manual") else "model match")
        assign[int(label)] = mid
        touched.add(mid)
    for old in split_masters:
        parts = sorted({assign[int(x)] for x in f.loc[f["old"] == old, "label"]})
        before = _snapshot(conn, [old])
        conn.execute(update(master_customer).where(master_customer.c.master_id == old)
                     .values(status="SPLIT", updated_at=now))
        st.split += 1
        _audit(conn, "SPLIT", old, others=parts, before=before, after={"parts": parts}, actor=actor)
    f["new"] = f["label"].map(assign)
    changed = f[f["old"].astype(object) != f["new"].astype(object)]
    for new, grp in changed.groupby("new"):
        for chunk in np.array_split(grp["rid"].to_numpy(), max(1, len(grp) // 5000 + 1)):
            conn.execute(update(customer_record).where(customer_record.c.id.in_([int(x) for x in chunk]))
                         .values(master_id=new, decided_at=now, model_version=DEALER.version,
                                 match_rule="FORCE" if actor.startswith("manual") else "MODEL"))
    # match weights of records (re)decided in this run
    if len(best):
        wpos = f.iloc[best.index.to_numpy()]
        redecided = set(changed["rid"].tolist())
        for rid, wt in zip(wpos["rid"].to_numpy(), best.to_numpy()):
            if int(rid) in redecided:
                conn.execute(update(customer_record).where(customer_record.c.id == int(rid))
                             .values(match_weight=round(float(wt), 3)))
    return touched


def _record_links(conn: Connection, df: pd.DataFrame, scored: engine.Scored, labels: np.ndarray, st: RunStats) -> None:
    p = scored.pairs
    p = p[p["decision"].isin([engine.REVIEW, engine.HOUSEHOLD])]
    la, lb = labels[p["l"].to_numpy()], labels[p["r"].to_numpy()]
    p = p[la != lb]
    if p.empty:
        return
    # one entry per pair of masters (the best-scoring pair of their records), not one per pair of records
    la, lb = labels[p["l"].to_numpy()], labels[p["r"].to_numpy()]
    p = (p.assign(_a=np.minimum(la, lb), _b=np.maximum(la, lb)).sort_values("weight", ascending=False, kind="stable")
         .drop_duplicates(["decision", "_a", "_b"]).drop(columns=["_a", "_b"]))
    rid = df["id"].to_numpy()
    have = {(k, a, b) for k, a, b in conn.execute(select(match_link.c.kind, match_link.c.record_a, match_link.c.record_b))}
    comps = [c.name for c in scored.model.comparisons]
    now = _now()
    rows = []
    for r in p.itertuples(index=False):
        a, b = sorted((int(rid[r.l]), int(rid[r.r])))
        if (r.decision, a, b) in have:
            continue
        ev = {c: scored.levels[c][getattr(r, c)] for c in comps if getattr(r, c) >= 0}
        rows.append(dict(kind=r.decision, record_a=a, record_b=b, weight=round(float(r.weight), 3),
                         evidence=json.dumps(ev), status="OPEN", model_version=DEALER.version, created_at=now))
        if r.decision == engine.REVIEW:
            st.review_links += 1
        else:
            st.household_links += 1
    if rows:
        conn.execute(insert(match_link), rows)


# ------------------------------------------------------------------------------------ survivorship

def _first_by_rule(recs: pd.DataFrame, value_col: str, valid: pd.Series, precedence) -> pd.DataFrame:
    """Per master, the record whose value wins: valid first, then source precedence, then the most
    recently seen, then the newest record. Vectorised: one sort over all masters' records."""
    order = {s: i for i, s in enumerate(precedence)}
    f = recs.assign(_valid=(valid & recs[value_col].notna()).astype(bool),
                    _prec=recs["source"].map(order).fillna(len(order)),
                    _seen=pd.to_datetime(recs["seen_at"]).fillna(pd.Timestamp("1900-01-01")))
    f = f[f["_valid"]].sort_values(["master_id", "_prec", "_seen", "id"], ascending=[True, True, False, False])
    return f.drop_duplicates("master_id").set_index("master_id")


def recompute_golden(conn: Connection, master_ids: set[str], precedence=SOURCE_PRECEDENCE) -> None:
    """Golden fields by rule: validity first, then source precedence, then recency. Every mobile,
    phone and e-mail kept as a contact point with its source and last-seen date; the most recently
    seen one is primary. Vehicles owned. Consent: the latest explicit answer; unknown stays unknown."""
    if not master_ids:
        return
    ids = sorted(master_ids)
    cr = customer_record
    recs = []
    for i in range(0, len(ids), 5000):
        recs += conn.execute(select(cr).where(cr.c.master_id.in_(ids[i:i + 5000]))).mappings().all()
    recs = pd.DataFrame(recs)
    for i in range(0, len(ids), 5000):
        part = ids[i:i + 5000]
        conn.execute(delete(master_contact).where(master_contact.c.master_id.in_(part)))
        conn.execute(delete(master_vehicle).where(master_vehicle.c.master_id.in_(part)))
        conn.execute(update(master_customer).where(master_customer.c.master_id.in_(part),
                                                   master_customer.c.status != "ACTIVE").values(record_count=0))
    if recs.empty:
        return
    now = _now()
    recs["seen_at"] = pd.to_datetime(recs["seen_at"])
    golden = pd.DataFrame(index=pd.Index(sorted(recs["master_id"].unique()), name="master_id"))
    sources = {m: {} for m in golden.index}

    def take(field, col, valid, fallback_valid=None):
        top = _first_by_rule(recs, col, valid, precedence)
        if fallback_valid is not None:
            more = _first_by_rule(recs, col, fallback_valid, precedence)
            top = pd.concat([top, more[~more.index.isin(top.index)]])
        golden[field] = top[col].reindex(golden.index)
        for m, rid in top["id"].items():
            sources[m][field] = int(rid)
        return top

    take("name", "raw_name", recs["m_name_placeholder"].eq(False), recs["raw_name"].notna())
    take("company", "raw_company", recs["m_company_key"].notna())
    top_id = take("id_number", "m_id_valid", recs["m_id_valid"].notna())
    top_addr = take("address", "raw_address", recs["m_address_key"].notna())
    for col in ("province", "city", "district"):
        golden[col] = top_addr[f"m_{col}"].reindex(golden.index)
    g_gender = recs.dropna(subset=["m_gender"]).groupby("master_id")["m_gender"].agg(lambda s: s.mode().iloc[0])
    golden["gender"] = top_id["m_gender"].reindex(golden.index).fillna(g_gender.reindex(golden.index))
    golden["birth_date"] = pd.to_datetime(top_id["m_birth"], format="%Y%m%d", errors="coerce").dt.date \
        .reindex(golden.index)
    ctype = recs.dropna(subset=["raw_customer_type"]).groupby("master_id")["raw_customer_type"].agg(lambda s: s.mode().iloc[0])
    golden["customer_type"] = ctype.reindex(golden.index).fillna("PERSON")
    golden["record_count"] = recs.groupby("master_id").size()

    # contact points: every value with its source record and last-seen date; the latest seen is primary
    parts = []
    for kind, col in (("MOBILE", "m_mobile"), ("MOBILE", "m_mobile2"), ("PHONE", "m_phone"), ("EMAIL", "m_email")):
        x = recs.loc[recs[col].notna(), ["master_id", "id", "source", "seen_at", col]].rename(columns={col: "value"})
        parts.append(x.assign(kind=kind))
    contacts = pd.concat(parts, ignore_index=True)
    mobiles = set(zip(contacts.loc[contacts["kind"] == "MOBILE", "master_id"], contacts.loc[contacts["kind"] == "MOBILE", "value"]))
    contacts = contacts[~((contacts["kind"] == "PHONE") &
                          pd.Series(list(zip(contacts["master_id"], contacts["value"])), index=contacts.index).isin(mobiles))]
    contacts = contacts.drop_duplicates(["master_id", "kind", "value", "id"])
    contacts["_prec"] = contacts["source"].map({s: i for i, s in enumerate(precedence)}).fillna(len(precedence))
    ranked = contacts.assign(_seen=contacts["seen_at"].fillna(pd.Timestamp("1900-01-01"))).sort_values(
        ["master_id", "kind", "_seen", "_prec", "id"], ascending=[True, True, False, True, False])
    primary_idx = ranked.drop_duplicates(["master_id", "kind"]).index
    contacts["is_primary"] = contacts.index.isin(primary_idx)
    prim = contacts.loc[primary_idx]
    for kind in ("MOBILE", "EMAIL"):
        p = prim[prim["kind"] == kind].set_index("master_id")
        golden[f"primary_{kind.lower()}"] = p["value"].reindex(golden.index)
        for m, rid in p["id"].items():
            sources[m][f"primary_{kind.lower()}"] = int(rid)
    answered = recs[recs["marketing_consent"].notna()].assign(
        _t=lambda f: pd.to_datetime(f["consent_at"]).fillna(f["seen_at"])).sort_values(["master_id", "_t", "id"])
    latest = answered.drop_duplicates("master_id", keep="last").set_index("master_id")
    golden["marketing_consent"] = latest["marketing_consent"].reindex(golden.index)
    for m, rid in latest["id"].items():
        sources[m]["marketing_consent"] = int(rid)

    cols = ["customer_type", "name", "company", "gender", "birth_date", "id_number", "address", "province", "city",
            "district", "primary_mobile", "primary_email", "marketing_consent", "record_count"]
    g = golden.reindex(columns=cols).astype(object).where(golden.reindex(columns=cols).notna(), None)
    from sqlalchemy import bindparam
    stmt = update(master_customer).where(master_customer.c.master_id == bindparam("mid")).values(
        **{c: bindparam(f"v_{c}") for c in cols}, golden_sources=bindparam("v_src"), updated_at=bindparam("v_now"))
    payload = [{"mid": m, **{f"v_{c}": _py(r[c]) if c != "marketing_consent" or r[c] is None else bool(r[c])
                             for c in cols}, "v_src": json.dumps(sources[m]), "v_now": now}
               for m, r in zip(g.index, g.to_dict("records"))]
    for i in range(0, len(payload), 5000):
        conn.execute(stmt, payload[i:i + 5000])
    crow = [dict(master_id=r.master_id, kind=r.kind, value=r.value, record_id=int(r.id), source=r.source,
                 last_seen=None if pd.isna(r.seen_at) else r.seen_at.to_pydatetime(), is_primary=bool(r.is_primary))
            for r in contacts.itertuples(index=False)]
    vrows = recs.loc[recs["m_vin"].notna(), ["master_id", "m_vin", "id", "source", "seen_at"]].drop_duplicates(
        ["master_id", "m_vin", "id"])
    vrow = [dict(master_id=r.master_id, vin=r.m_vin, record_id=int(r.id), source=r.source,
                 last_seen=None if pd.isna(r.seen_at) else r.seen_at.to_pydatetime()) for r in vrows.itertuples(index=False)]
    for i in range(0, len(crow), 5000):
        conn.execute(insert(master_contact), crow[i:i + 5000])
    for i in range(0, len(vrow), 5000):
        conn.execute(insert(master_vehicle), vrow[i:i + 5000])


# ------------------------------------------------------------------------------------ manual decisions

def record_ids(conn: Connection, refs: list[str]) -> list[int]:
    """``SOURCE:SOURCE_ID`` (e.g. ``DMS:GZ0012:C001``) or a numeric customer_record id -> record ids."""
    out = []
    for ref in refs:
        if ref.isdigit():
            row = conn.execute(select(customer_record.c.id).where(customer_record.c.id == int(ref))).first()
        else:
            src, _, sid = ref.partition(":")
            row = conn.execute(select(customer_record.c.id).where(customer_record.c.source == src.upper(),
                                                                  customer_record.c.source_id == sid)).first()
        if row is None:
            from dealersync.errors import ConfigurationError
            raise ConfigurationError(f"no source record {ref!r} (give SOURCE:SOURCE_ID or a record id)")
        out.append(int(row[0]))
    return out


def _members(conn: Connection, master_id: str) -> list[int]:
    return [r[0] for r in conn.execute(select(customer_record.c.id).where(customer_record.c.master_id == master_id))]


def master_of(conn: Connection, record_id: int) -> str | None:
    return conn.execute(select(customer_record.c.master_id).where(customer_record.c.id == record_id)).scalar()


def force_link(conn: Connection, refs: list[str], *, reason: str | None = None, actor: str = "manual",
               review_id: int | None = None) -> str:
    """Put the masters of the given records together, now and on every later run. Returns the survivor."""
    ids = record_ids(conn, refs)
    masters = [master_of(conn, i) for i in ids]
    side_a = _members(conn, masters[0]) if masters[0] else [ids[0]]
    side_b = sorted({x for m, i in zip(masters[1:], ids[1:]) for x in (_members(conn, m) if m else [i])} - set(side_a))
    conn.execute(insert(match_decision).values(kind="FORCE_LINK", side_a=json.dumps(side_a), side_b=json.dumps(side_b),
                                               reason=reason, decided_by=actor, decided_at=_now(), review_id=review_id))
    _audit(conn, "FORCE_LINK", masters[0], others=[m for m in masters[1:] if m], reason=reason, actor=actor,
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
        from dealersync.errors import ConfigurationError
        raise ConfigurationError("nothing to split: those records are the whole master")
    conn.execute(insert(match_decision).values(kind="FORCE_SPLIT", side_a=json.dumps(side_a), side_b=json.dumps(side_b),
                                               reason=reason, decided_by=actor, decided_at=_now(), review_id=review_id))
    _audit(conn, "FORCE_SPLIT", next(iter(masters), None), reason=reason, actor=actor, after={"records": refs})
    if len(masters) == 1:
        _apply_split(conn, side_a, side_b, actor=f"manual:{actor}")
    return sorted({master_of(conn, i) for i in ids + side_b} - {None})


def _apply_split(conn: Connection, side_a: list[int], side_b: list[int], *, actor: str) -> None:
    old = master_of(conn, side_a[0])
    now = _now()
    before = _snapshot(conn, [old])
    conn.execute(update(master_customer).where(master_customer.c.master_id == old).values(status="SPLIT", updated_at=now))
    ctype = conn.execute(select(master_customer.c.customer_type).where(master_customer.c.master_id == old)).scalar()
    parts = []
    for side in (side_a, side_b):
        mid = _new_master(conn, ctype, now)
        parts.append(mid)
        conn.execute(update(customer_record).where(customer_record.c.id.in_(side))
                     .values(master_id=mid, decided_at=now, match_rule="FORCE_SPLIT", model_version=DEALER.version))
    _audit(conn, "SPLIT", old, others=parts, before=before, after={"parts": parts}, actor=actor)
    recompute_golden(conn, {old, *parts})


def review_queue(conn: Connection, status: str = "OPEN", limit: int | None = 100) -> list[dict]:
    a, b = customer_record.alias("a"), customer_record.alias("b")
    q = (select(match_link.c.id, match_link.c.weight, match_link.c.evidence, match_link.c.status,
                a.c.source.label("a_source"), a.c.source_id.label("a_source_id"), a.c.raw_name.label("a_name"),
                a.c.master_id.label("a_master"), b.c.source.label("b_source"), b.c.source_id.label("b_source_id"),
                b.c.raw_name.label("b_name"), b.c.master_id.label("b_master"))
         .join(a, a.c.id == match_link.c.record_a).join(b, b.c.id == match_link.c.record_b)
         .where(match_link.c.kind == "REVIEW", match_link.c.status == status)
         .order_by(match_link.c.weight.desc(), match_link.c.id))
    if limit:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def decide_review(conn: Connection, link_id: int, decision: str, *, actor: str = "manual",
                  reason: str | None = None) -> None:
    """LINK (same person), SEPARATE (different people: never merged) or DISMISS (closed, no decision)."""
    row = conn.execute(select(match_link).where(match_link.c.id == link_id, match_link.c.kind == "REVIEW")).mappings().first()
    if row is None:
        from dealersync.errors import ConfigurationError
        raise ConfigurationError(f"no review pair {link_id}")
    refs = [str(row["record_a"]), str(row["record_b"])]
    decision = decision.upper()
    if decision == "LINK":
        force_link(conn, refs, reason=reason or f"review {link_id}", actor=actor, review_id=link_id)
        status = "LINKED"
    elif decision == "SEPARATE":
        conn.execute(insert(match_decision).values(kind="FORCE_SPLIT", side_a=json.dumps([row["record_a"]]),
                                                   side_b=json.dumps([row["record_b"]]), reason=reason or f"review {link_id}",
                                                   decided_by=actor, decided_at=_now(), review_id=link_id))
        _audit(conn, "FORCE_SPLIT", master_of(conn, row["record_a"]), others=[master_of(conn, row["record_b"])],
               reason=reason or f"review {link_id}", actor=actor)
        status = "SPLIT"
    elif decision == "DISMISS":
        status = "DISMISSED"
    else:
        from dealersync.errors import ConfigurationError
        raise ConfigurationError("decision must be link, separate or dismiss")
    conn.execute(update(match_link).where(match_link.c.id == link_id).values(status=status, decided_at=_now()))


# ------------------------------------------------------------------------------------ reading

def resolve_master_id(conn: Connection, master_id: str) -> str:
    """Follow MERGED pointers to the surviving master."""
    seen = set()
    while master_id not in seen:
        seen.add(master_id)
        row = conn.execute(select(master_customer.c.status, master_customer.c.merged_into)
                           .where(master_customer.c.master_id == master_id)).first()
        if row is None or row[0] != "MERGED" or not row[1]:
            return master_id
        master_id = row[1]
    return master_id


def show_master(conn: Connection, master_id: str) -> dict | None:
    m = conn.execute(select(master_customer).where(master_customer.c.master_id == master_id)).mappings().first()
    if m is None:
        return None
    out = {k: _py(v) for k, v in m.items()}
    out["golden_sources"] = json.loads(m["golden_sources"] or "{}")
    if m["status"] == "MERGED":
        out["survivor"] = resolve_master_id(conn, master_id)
    recs = conn.execute(select(customer_record.c.id, customer_record.c.source, customer_record.c.source_id,
                               customer_record.c.dealer_code, customer_record.c.raw_name, customer_record.c.match_weight,
                               customer_record.c.match_rule, customer_record.c.model_version,
                               customer_record.c.decided_at, customer_record.c.seen_at, customer_record.c.source_table,
                               customer_record.c.source_file, customer_record.c.source_row, customer_record.c.load_id)
                        .where(customer_record.c.master_id == master_id).order_by(customer_record.c.id)).mappings()
    out["records"] = [{k: _py(v) for k, v in r.items()} for r in recs]
    out["contacts"] = [{k: _py(v) for k, v in r.items() if k not in ("id", "master_id")} for r in conn.execute(
        select(master_contact).where(master_contact.c.master_id == master_id)
        .order_by(master_contact.c.kind, master_contact.c.is_primary.desc(), master_contact.c.value)).mappings()]
    out["vehicles"] = sorted({r[0] for r in conn.execute(select(master_vehicle.c.vin)
                                                         .where(master_vehicle.c.master_id == master_id))})
    out["audit"] = [{k: _py(v) for k, v in r.items() if k != "id"} for r in conn.execute(
        select(master_audit).where(or_(master_audit.c.master_id == master_id,
                                       master_audit.c.other_ids.like(f'%"{master_id}"%')))
        .order_by(master_audit.c.id)).mappings()]
    return out

