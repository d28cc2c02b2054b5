"""Source records: the customer records the DMS feeds and the CRM hold, in the resolve-file layout,
normalised and kept in the cross-reference (``customer_record``) with their lineage and content hash.
"""
from __future__ import annotations

from dealersync import clock as dealer_clock
import hashlib

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from dealersync.store import masters as store
from dealersync.store.tables import FEED_TABLES, MATCH_COLUMNS, RAW_COLUMNS, crm_lead

from .progress import NO_PROGRESS
from .resolve import normalise_partitioned

LINEAGE = store.LINEAGE


def collect_sources(conn: Connection) -> pd.DataFrame:
    """Customer records from the DMS feeds in the resolve-file layout, with dealer, seen_at and consent:
    the customer master (DMS), vehicle sales (SALES) and the people who brought a car in (SERVICE)."""
    frames = []
    c = pd.DataFrame(store.dms_customers(conn))
    if len(c):
        owned = pd.DataFrame(store.owned_vehicles(conn))
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
            "seen_at": pd.to_datetime(c["business_date"].fillna(c["created_date"])),
            "source_table": FEED_TABLES["customers"].name,
            **{k: c[k] for k in ("source_file", "source_row", "load_id")}}))
    s = pd.DataFrame(store.vehicle_sale_buyers(conn))
    if len(s):
        frames.append(pd.DataFrame({
            "source": "SALES", "source_id": s["dealer_code"] + ":" + s["sale_no"], "dealer_code": s["dealer_code"],
            "customer_type": None, "name": s["customer_name"], "mobile": s["mobile"], "id_number": s["id_number"],
            "vin": s["vin"], "seen_at": pd.to_datetime(s["order_date"].fillna(s["business_date"])),
            "source_table": FEED_TABLES["vehicle_sales"].name,
            **{k: s[k] for k in ("source_file", "source_row", "load_id")}}))
    r = pd.DataFrame(store.repair_order_senders(conn))
    if len(r):
        frames.append(pd.DataFrame({
            "source": "SERVICE", "source_id": r["dealer_code"] + ":" + r["ro_number"], "dealer_code": r["dealer_code"],
            "customer_type": "PERSON", "name": r["sender_name"], "mobile": r["sender_mobile"], "vin": r["vin"],
            "plate": r["plate"], "seen_at": pd.to_datetime(r["opened_at"]),
            "source_table": FEED_TABLES["repair_orders"].name,
            **{k: r[k] for k in ("source_file", "source_row", "load_id")}}))
    leads = pd.DataFrame(store.crm_leads(conn))
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


def content_hash(frame: pd.DataFrame) -> pd.Series:
    """SHA-256 of a record's raw values and consent (blank as NUL, fields joined by US), column-wise."""
    cols = [*RAW_COLUMNS, "marketing_consent"]
    text = frame[cols].astype("str").fillna("\x00")
    joined = text[cols[0]]
    for c in cols[1:]:
        joined = joined + "\x1f" + text[c]
    return pd.Series([hashlib.sha256(x.encode()).hexdigest() for x in joined.tolist()], index=frame.index,
                     dtype=object)


def py(v):
    """A pandas / numpy scalar as the plain Python value a database driver takes (NaN/NaT -> None)."""
    if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def sync_records(conn: Connection, frame: pd.DataFrame, mapper=None, partition_rows: int = 200_000, *,
                 now=None, progress=NO_PROGRESS) -> list[int]:
    """Upsert source records into the cross-reference (natural key: source, source_id). Returns the
    ids of new and changed records (to be scored); unchanged records are not touched."""
    if frame.empty:
        return []
    frame = frame.drop_duplicates(["source", "source_id"], keep="last").reset_index(drop=True)
    frame["content_hash"] = content_hash(frame)
    have = pd.DataFrame(store.record_keys(conn),
                        columns=["id", "source", "source_id", "content_hash", "load_id", "source_row"])
    m = frame.merge(have, on=["source", "source_id"], how="left", suffixes=("", "_old"))
    todo = m[m["content_hash_old"].isna() | (m["content_hash"] != m["content_hash_old"])]
    # same content from a newer load (a re-export): only the lineage moves
    moved = m[m["content_hash_old"].notna() & (m["content_hash"] == m["content_hash_old"]) &
              ((m["load_id"] != m["load_id_old"]) | (m["source_row"] != m["source_row_old"]))]
    store.move_lineage(conn, [{"id": int(r["id"]), **{k: py(r[k]) for k in LINEAGE}} for _, r in moved.iterrows()])
    if todo.empty:
        return []
    now = now or dealer_clock.now()
    norm = normalise_partitioned(todo[["source", "source_id", *RAW_COLUMNS]], mapper, partition_rows, progress)
    consent = todo["marketing_consent"]
    answered = consent.notna().to_numpy()
    cols = {"source": todo["source"], "source_id": todo["source_id"], "dealer_code": todo["dealer_code"],
            **{f"raw_{c}": todo[c] for c in RAW_COLUMNS},
            "marketing_consent": [bool(v) if a else None for v, a in zip(consent.tolist(), answered)],
            "consent_at": [v if a else None for v, a in zip(todo["seen_at"].tolist(), answered)],
            "seen_at": todo["seen_at"], **{k: todo[k] for k in LINEAGE},
            **{f"m_{c}": norm[c].reindex(todo.index) for c in MATCH_COLUMNS}, "content_hash": todo["content_hash"]}
    values = [[py(v) for v in (col.tolist() if hasattr(col, "tolist") else col)] for col in cols.values()]
    rows = [dict(zip(cols, vals), updated_at=now) for vals in zip(*values)]
    known = {(s, i): int(x) for s, i, x in zip(have["source"], have["source_id"], have["id"])}
    return store.upsert_records(conn, rows, known=known)
