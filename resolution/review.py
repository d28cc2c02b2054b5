"""The review queue as a data officer decides it: one entry per pair of masters with the deciding
fields of both side by side and why the model did not merge them, in one sentence of Chinese; and
decisions taken outside (a filled-in sheet) applied through ``decisions.decide_review``, the same
audited path as the one-keystroke review, once: a pair already decided that way is left alone, a pair
that changed since the sheet was made (a master merged or split meanwhile) is reported, not applied.
Values come out in clear: whoever shows them masks them."""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection

from dealersync.store import masters as store
from dealersync.store.tables import LinkStatus

from .decisions import DECISIONS, decide_review

_AGREE = {("mobile", "own"): "手机号", ("mobile", "agree"): "手机号", ("id", "exact"): "身份证号",
          ("id", "typo"): "身份证号（差一位）", ("vin", "exact"): "车架号", ("vin", "typo"): "车架号（差一位）",
          ("plate", "exact"): "车牌", ("email", "exact"): "邮箱", ("address", "exact"): "地址",
          ("address", "building"): "地址（同楼栋）", ("phone", "exact"): "座机", ("company", "exact"): "单位名称"}


def reason_zh(evidence: dict) -> str:
    """Why a review pair was not merged, in one sentence (from the pair's comparison levels)."""
    same = [w for (c, lv), w in _AGREE.items() if evidence.get(c) == lv]
    name = evidence.get("name")
    if name is None or name == "surname":
        why = "一方没有可用的姓名（空白或“先生/女士”之类的称呼），仅凭这些标识不足以认定为同一人"
    elif name == "close":
        why = "姓名只是相近（疑似错字或同音），证据不足以认定为同一人"
    elif name == "same_surname":
        why = "同姓不同名，可能是家人"
    elif name in ("exact", "pinyin"):
        why = "姓名相同，但没有足够的手机号、车架号等强标识相同"
    else:
        why = "姓名不同"
    conflicts = [w for c, w in (("gender", "性别不一致"), ("id", "身份证号不同")) if evidence.get(c) in ("else", "conflict")]
    head = "、".join(same) + "相同" if same else "没有相同的强标识"
    tail = "，且" + "、".join(conflicts) if conflicts else ""
    return f"{head}，但{why}{tail}，故未自动合并。"


def _side(m: dict | None, contacts: list[dict], vins: list[str], recs: list[dict]) -> dict:
    m = m or {}

    def distinct(values):
        out = []
        for v in values:
            if v and v not in out:
                out.append(v)
        return out

    counts: dict[str, int] = {}
    for r in recs:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    seen = [r["seen_at"] for r in recs if r["seen_at"] is not None]
    names = distinct([m.get("name") or m.get("company")] + [r["raw_name"] for r in recs])
    return {"master_id": m.get("master_id"), "names": names, "id_number": m.get("id_number"),
            "birth_date": m.get("birth_date"), "gender": m.get("gender"),
            "mobiles": distinct(c["value"] for c in contacts if c["kind"] == "MOBILE"),
            "vins": sorted(set(vins)), "plates": distinct(r["raw_plate"] for r in recs),
            "addresses": distinct(r["raw_address"] for r in recs),
            "sources": counts, "last_seen": max(seen) if seen else None}


def review_entries(conn: Connection, limit: int | None = None) -> list[dict]:
    """Open review pairs, one per pair of (current, distinct) masters (the best-scoring), best first:
    ``{"id", "weight", "reason", "a": side, "b": side}``; a side has the master's golden name and the
    names its records carry, ID, birth date, gender, mobiles, VINs, plates, addresses, record counts by
    source and last seen."""
    entries, pairs = [], set()
    for r in store.review_links(conn, LinkStatus.OPEN.value):
        a, b = r["a_master"], r["b_master"]
        if not a or not b or a == b or (min(a, b), max(a, b)) in pairs:
            continue
        pairs.add((min(a, b), max(a, b)))
        entries.append(r)
        if limit and len(entries) >= limit:
            break
    mids = sorted({m for r in entries for m in (r["a_master"], r["b_master"])})
    rows = store.master_rows(conn, mids)
    contacts: dict[str, list] = {}
    for c in store.master_contacts(conn, mids):
        contacts.setdefault(c["master_id"], []).append(c)
    vins: dict[str, list] = {}
    for m, v in store.master_vehicles(conn, mids):
        vins.setdefault(m, []).append(v)
    recs: dict[str, list] = {}
    for x in store.record_summaries(conn, mids):
        recs.setdefault(x["master_id"], []).append(x)
    out = []
    for r in entries:
        ev = json.loads(r["evidence"] or "{}")
        out.append({"id": int(r["id"]), "weight": float(r["weight"]) if r["weight"] is not None else None,
                    "evidence": ev, "reason": reason_zh(ev),
                    **{k: _side(rows.get(m), contacts.get(m, []), vins.get(m, []), recs.get(m, []))
                       for k, m in (("a", r["a_master"]), ("b", r["b_master"]))}})
    return out


@dataclass
class Outcome:
    row: int                  # where the decision came from (a sheet's row)
    review_id: int
    decision: str             # LINK, SEPARATE, SKIP
    result: str               # applied, unchanged, skipped, stale, conflict
    note: str = ""


def apply_decisions(conn: Connection, decided: list[dict], *, actor: str, source: str) -> list[Outcome]:
    """Apply ``decided`` rows ``{"row", "id", "a", "b", "decision" (LINK/SEPARATE/SKIP), "note"}``: ``a``
    and ``b`` the masters the decision was taken on. A pair already decided the same way is unchanged
    (importing a sheet twice does nothing more); decided another way since, or no longer between those
    two masters (merged, split), it is reported and left for a fresh sheet."""
    out = []
    for d in decided:
        rid, decision = int(d["id"]), d["decision"]
        if decision == "SKIP":
            out.append(Outcome(d["row"], rid, decision, "skipped"))
            continue
        link = store.review_link(conn, rid)
        if link is None:
            out.append(Outcome(d["row"], rid, decision, "stale", "该待确认记录已不存在"))
            continue
        if link["status"] != LinkStatus.OPEN:
            same = link["status"] == DECISIONS[decision]
            out.append(Outcome(d["row"], rid, decision, "unchanged" if same else "conflict",
                               "已按此决定处理过" if same else f"导出后已被另行处理（{link['status']}）"))
            continue
        now_a = store.master_of(conn, link["record_a"])
        now_b = store.master_of(conn, link["record_b"])
        if {now_a, now_b} != {d["a"], d["b"]} or now_a == now_b:
            out.append(Outcome(d["row"], rid, decision, "stale",
                               f"导出后主档已变化（现为 {now_a} / {now_b}），请重新导出后再决定"))
            continue
        note = d.get("note") or ""
        reason = f"{source} 第 {d['row']} 行" + (f"：{note}" if note else "")
        decide_review(conn, rid, decision, actor=actor, reason=reason)
        out.append(Outcome(d["row"], rid, decision, "applied", note))
    return out
