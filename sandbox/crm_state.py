"""The sandbox CRM's state: one SQLite file (it survives restarts), one table per object, each change
bumping a global sequence (the change feeds' order); seeded with leads, and the "call centre" that
records activities for new contacts. Callers hold ``Store.lock``.
"""
from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from .common import iso as _iso, now as _now
from .crm_rules import CSI_FACTORS, parse_time as _parse_time


class Store:
    """The CRM's state in SQLite: one table per object, each change bumping a global sequence."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        for t in ("contacts", "tasks", "leads", "activities"):
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, crm_id TEXT, data TEXT NOT NULL, "
                            f"hash TEXT, modified_at TEXT NOT NULL, seq INTEGER NOT NULL)")
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {t}_seq ON {t}(seq)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")

    def _next_seq(self) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k='seq'").fetchone()
        n = int(row[0]) + 1 if row else 1
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (str(n),))
        return n

    def get(self, table: str, key: str):
        row = self.db.execute(f"SELECT crm_id, data, hash, modified_at FROM {table} WHERE id=?", (key,)).fetchone()
        if row is None:
            return None
        return {"crm_id": row[0], "data": json.loads(row[1]), "hash": row[2], "modified_at": row[3]}

    def put(self, table: str, key: str, data: dict, crm_id: str, h: str | None = None,
            modified: datetime | None = None) -> str:
        t = _iso(modified or _now())
        self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                        (key, crm_id, json.dumps(data, ensure_ascii=False), h, t, self._next_seq()))
        return t

    def delete(self, table: str, key: str) -> bool:
        return self.db.execute(f"DELETE FROM {table} WHERE id=?", (key,)).rowcount > 0

    def feed(self, table: str, since: datetime | None, after_seq: int, limit: int):
        rows = self.db.execute(f"SELECT crm_id, data, modified_at, seq FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",
                               (after_seq, limit * 4 + 10)).fetchall()
        out, last = [], after_seq
        for crm_id, data, mod, seq in rows:
            last = seq
            if since is not None and _parse_time(mod) < since:
                continue
            out.append((crm_id, json.loads(data), mod, seq))
            if len(out) >= limit:
                break
        more = self.db.execute(f"SELECT 1 FROM {table} WHERE seq > ? LIMIT 1", (last,)).fetchone() is not None
        return out, last, more

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# ------------------------------------------------------------------------------------ seeded data

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
MODELS = ["朗逸", "帕萨特", "途观L", "速腾", "迈腾", "探岳", "宝来", "ID.4"]


def seed_leads(store: Store, n: int, seed: int) -> None:
    rng = random.Random(seed)
    start = _now() - timedelta(days=30)
    store.db.execute("BEGIN")
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
        if rng.random() < 0.1:
            name = name[0] + rng.choice(["先生", "女士"])
        created = start + timedelta(hours=rng.randrange(0, 30 * 24))
        status = rng.choices(["OPEN", "WON", "DEFEATED"], [0.7, 0.15, 0.15])[0]
        lead = {"leadId": f"L{seed:02d}{i:06d}", "name": name, "mobile": f"1{rng.choice('35789')}{rng.randrange(10 ** 9):09d}",
                "intentLevel": rng.choice("OHABC"), "status": status, "interestedModel": rng.choice(MODELS),
                "salesperson": rng.choice(["李明", "王静", "陈强"]), "source": rng.choice(["展厅", "电话", "网络", "车展"]),
                "createdAt": _iso(created)}
        store.put("leads", lead["leadId"], lead, lead["leadId"], modified=created)
    store.db.execute("COMMIT")


def call_centre(store: Store, ext: str, contact: dict) -> None:
    """The call centre's work on a new contact, deterministic per externalId: about one in three gets
    a return-visit call, one in four a CSI survey (five factors and the overall question, 1-10), one in
    twenty a complaint."""
    h = int(hashlib.sha256(ext.encode()).hexdigest()[:8], 16)
    rng = random.Random(h)
    at = _now() - timedelta(hours=rng.randrange(1, 72))
    acts = []
    if h % 3 == 0:
        acts.append({"type": "RETURN_VISIT_CALL", "outcome": rng.choice(["REACHED", "REACHED", "NOT_REACHED"])})
    if h % 4 == 1:
        # about one respondent in eight is unhappy overall; a happy one may still score a factor 6
        pool = [3, 4, 5, 6, 6, 7] if rng.random() < 0.125 else [6, 7, 8, 9, 10, 10]
        scores = [rng.choice(pool) for _ in CSI_FACTORS]
        overall = min(10, max(1, round(sum(scores) / len(scores)) + rng.choice([-1, 0, 0, 1])))
        acts.append({"type": "SURVEY", "surveyType": "CSI", "outcome": "REACHED",
                     "answers": [{"questionId": f"Q{i + 1}", "factorCode": f, "numericValue": v, "textValue": None}
                                 for i, (f, v) in enumerate(zip(CSI_FACTORS, scores))]
                     + [{"questionId": f"Q{len(CSI_FACTORS) + 1}", "factorCode": "OVERALL", "numericValue": overall,
                         "textValue": None}]})
    if h % 20 == 7:
        acts.append({"type": "COMPLAINT", "outcome": "REACHED",
                     "complaint": {"category": rng.choice(["维修质量", "服务态度", "等待时间", "价格"]),
                                   "openedAt": _iso(at), "resolvedAt": None}})
    for i, a in enumerate(acts):
        aid = f"A{h:08x}{i}"
        vins = contact.get("vins") or []
        store.put("activities", aid, {"activityId": aid, "contactExternalId": ext, "occurredAt": _iso(at),
                                      "relatedDocument": vins[0] if vins else None, "outcome": a.pop("outcome"),
                                      "surveyType": None, **a}, aid)
