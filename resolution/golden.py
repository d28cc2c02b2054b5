"""Survivorship: the golden record of each master by rule (validity, source precedence, recency),
every mobile, phone and e-mail as a contact point, the vehicles owned, consent as the latest answer."""
from __future__ import annotations

from dealersync import clock as dealer_clock
import json

import pandas as pd
from sqlalchemy import Connection

from dealersync.store import masters as store

from .sources import py

SOURCE_PRECEDENCE = ("DMS", "SALES", "SERVICE", "CRM")


def _first_by_rule(recs: pd.DataFrame, value_col: str, valid: pd.Series, precedence) -> pd.DataFrame:
    """Per master, the record whose value wins: valid first, then source precedence, then the most
    recently seen, then the newest record. Vectorised: one sort over all masters' records."""
    order = {s: i for i, s in enumerate(precedence)}
    f = recs.assign(_valid=(valid & recs[value_col].notna()).astype(bool),
                    _prec=recs["source"].map(order).fillna(len(order)),
                    _seen=pd.to_datetime(recs["seen_at"]).fillna(pd.Timestamp("1900-01-01")))
    f = f[f["_valid"]].sort_values(["master_id", "_prec", "_seen", "id"], ascending=[True, True, False, False])
    return f.drop_duplicates("master_id").set_index("master_id")


def _mode(recs: pd.DataFrame, col: str) -> pd.Series:
    """Per master, the most frequent value of ``col`` (the smallest among equals: ``Series.mode``)."""
    n = recs.dropna(subset=[col]).groupby(["master_id", col]).size().rename("_n").reset_index()
    top = n.sort_values(["master_id", "_n", col], ascending=[True, False, True]).drop_duplicates("master_id")
    return top.set_index("master_id")[col]


def recompute_golden(conn: Connection, master_ids: set[str], precedence=SOURCE_PRECEDENCE) -> None:
    """Golden fields by rule: validity first, then source precedence, then recency. Every mobile,
    phone and e-mail kept as a contact point with its source and last-seen date; the most recently
    seen one is primary. Vehicles owned. Consent: the latest explicit answer; unknown stays unknown."""
    if not master_ids:
        return
    recs = pd.DataFrame(store.records_of_masters(conn, sorted(master_ids)))
    store.clear_derived(conn, sorted(master_ids))
    if recs.empty:
        return
    now = dealer_clock.now()
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
    g_gender = _mode(recs, "m_gender")
    golden["gender"] = top_id["m_gender"].reindex(golden.index).fillna(g_gender.reindex(golden.index))
    golden["birth_date"] = pd.to_datetime(top_id["m_birth"], format="%Y%m%d", errors="coerce").dt.date \
        .reindex(golden.index)
    ctype = _mode(recs, "raw_customer_type")
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

    cols = store.GOLDEN_COLUMNS
    g = golden.reindex(columns=cols).astype(object).where(golden.reindex(columns=cols).notna(), None)
    store.write_golden(conn, [{"master_id": m, **{c: py(r[c]) if c != "marketing_consent" or r[c] is None else bool(r[c])
                                                  for c in cols}, "golden_sources": json.dumps(sources[m])}
                              for m, r in zip(g.index, g.to_dict("records"))], at=now)
    store.insert_contacts(conn, [dict(master_id=r.master_id, kind=r.kind, value=r.value, record_id=int(r.id),
                                      source=r.source, last_seen=None if pd.isna(r.seen_at) else r.seen_at.to_pydatetime(),
                                      is_primary=bool(r.is_primary)) for r in contacts.itertuples(index=False)])
    vrows = recs.loc[recs["m_vin"].notna(), ["master_id", "m_vin", "id", "source", "seen_at"]].drop_duplicates(
        ["master_id", "m_vin", "id"])
    store.insert_vehicles(conn, [dict(master_id=r.master_id, vin=r.m_vin, record_id=int(r.id), source=r.source,
                                      last_seen=None if pd.isna(r.seen_at) else r.seen_at.to_pydatetime())
                                 for r in vrows.itertuples(index=False)])
