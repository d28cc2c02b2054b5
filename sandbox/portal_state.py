"""The sandbox OEM portal's state: one SQLite file (it survives restarts) holding tokens, idempotency
keys and their first answers, claims and their status events (the change feed), survey results and
reports. Every method runs under the caller's ``lock``; the claim submission brackets its reads and
writes in ``BEGIN IMMEDIATE`` ... ``COMMIT`` itself (``portal.py``). The rules of what is decided
live in ``portal_rules.py``.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time

from . import portal_rules as rules
from .common import iso, now

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, client TEXT, expires REAL);
CREATE TABLE IF NOT EXISTS idem (key TEXT PRIMARY KEY, op TEXT, body_hash TEXT, status INTEGER, response TEXT);
CREATE TABLE IF NOT EXISTS claims (dealer TEXT, claim TEXT, count INTEGER, oem_no TEXT, ack TEXT, payload TEXT,
    submitted REAL, amount REAL, outcome TEXT, status TEXT, next_at REAL, PRIMARY KEY (dealer, claim, count));
CREATE INDEX IF NOT EXISTS claims_next ON claims(next_at);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, dealer TEXT, claim TEXT, count INTEGER,
    status TEXT, body TEXT, updated TEXT);
CREATE INDEX IF NOT EXISTS events_claim ON events(dealer, claim);
CREATE TABLE IF NOT EXISTS surveys (doc TEXT PRIMARY KEY, dealer TEXT, ack TEXT, payload TEXT, received TEXT);
CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, dealer TEXT, type TEXT, period TEXT, sha256 TEXT,
    size INTEGER, supersedes TEXT, current INTEGER, received TEXT);
"""


class Db:
    def __init__(self, path, clock: rules.Clock | None = None):
        self.lock = threading.RLock()
        self.clock = clock or rules.Clock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def one(self, sql, *a):
        return self.db.execute(sql, a).fetchone()

    def all(self, sql, *a):
        return self.db.execute(sql, a).fetchall()

    def run(self, sql, *a):
        return self.db.execute(sql, a)

    # ------------------------------------------------------------------ tokens
    def add_token(self, token: str, client: str, lifetime: float) -> None:
        self.run("INSERT INTO tokens VALUES (?, ?, ?)", token, client, time.time() + lifetime)

    def token(self, token: str) -> tuple[float, str] | None:
        """(expires, client) of a token, or None."""
        return self.one("SELECT expires, client FROM tokens WHERE token=?", token)

    def expire(self, token: str | None = None) -> None:
        """Expire one token, or every token."""
        if token is None:
            self.run("UPDATE tokens SET expires=0")
        else:
            self.run("UPDATE tokens SET expires=0 WHERE token=?", token)

    # ------------------------------------------------------------------ idempotency
    def first_answer(self, key: str) -> tuple[str, str, int, str] | None:
        """(operation, body hash, status, response JSON) of a key used before, or None."""
        return self.one("SELECT op, body_hash, status, response FROM idem WHERE key=?", key)

    def remember(self, key: str, op: str, body_hash: str, status: int, response: dict) -> None:
        self.run("INSERT OR REPLACE INTO idem VALUES (?, ?, ?, ?, ?)", key, op, body_hash, status,
                 json.dumps(response, ensure_ascii=False))

    # ------------------------------------------------------------------ claims
    def claim_status(self, dealer: str, claim: str, count: int) -> str | None:
        row = self.one("SELECT status FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        return row[0] if row else None

    def claim_ack(self, dealer: str, claim: str, count: int) -> dict | None:
        row = self.one("SELECT ack FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        return json.loads(row[0]) if row else None

    def add_claim(self, dealer: str, claim: str, count: int, oem_no: str, ack: dict, payload: str, amount: float,
                  outcome: str) -> None:
        """A received submission (SUBMITTED, with its first status event)."""
        self.run("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", dealer, claim, count, oem_no,
                 json.dumps(ack, ensure_ascii=False), payload, time.time(), amount, outcome, "SUBMITTED", None)
        self.event(dealer, claim, count, "SUBMITTED")

    def _record(self, dealer, claim, count, status, extra=None) -> dict:
        row = self.one("SELECT oem_no, amount FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        rec = {"ClaimNumberString": claim, "ClaimSubmissionCountNumeric": count, "OEMClaimNumberString": row[0],
               "ClaimStatusCode": status, "OEMStatusRaw": rules.RAW_WORDS[status], "UpdatedDateTime": iso(now())}
        if extra:
            rec.update(extra)
        return rec

    def event(self, dealer, claim, count, status, extra=None) -> None:
        """A claim moves to ``status``: a change-feed entry, and its next move scheduled by the clock."""
        body = self._record(dealer, claim, count, status, extra)
        self.run("INSERT INTO events (dealer, claim, count, status, body, updated) VALUES (?, ?, ?, ?, ?, ?)",
                 dealer, claim, count, status, json.dumps(body, ensure_ascii=False), body["UpdatedDateTime"])
        row = self.one("SELECT submitted FROM claims WHERE dealer=? AND claim=? AND count=?", dealer, claim, count)
        nxt = self.clock.next_after(status)
        self.run("UPDATE claims SET status=?, next_at=? WHERE dealer=? AND claim=? AND count=?", status,
                 None if nxt is None else row[0] + nxt, dealer, claim, count)

    def advance(self) -> None:
        """Move every claim whose time has come to its next state (the adjudication clock)."""
        clock, now = self.clock, time.time()
        for dealer, claim, count, submitted, amount, outcome, status in self.all(
                "SELECT dealer, claim, count, submitted, amount, outcome, status FROM claims WHERE next_at <= ? "
                "ORDER BY next_at", now):
            age = now - submitted
            if status == "SUBMITTED" and age >= clock.review_after:
                self.event(dealer, claim, count, "UNDER_REVIEW")
                status = "UNDER_REVIEW"
            if status == "UNDER_REVIEW" and age >= clock.decide_after:
                self.event(dealer, claim, count, outcome, rules.decision(outcome, amount))
                status = outcome
            if status in ("APPROVED", "PARTIALLY_APPROVED") and age >= clock.settle_after:
                self.event(dealer, claim, count, "SETTLED", rules.settlement(status, amount))

    def advance_now(self) -> None:
        """:meth:`advance` in its own transaction."""
        self.run("BEGIN IMMEDIATE")
        self.advance()
        self.run("COMMIT")

    def changes(self, after: int, since, limit: int) -> tuple[list[dict], int, bool]:
        """(status records after feed position ``after`` updated at ``since`` or later, at most ``limit``;
        the last position read; whether more follow)."""
        rows = self.all("SELECT seq, body, updated FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit * 4 + 10)
        items, last = [], after
        for seq, body, updated in rows:
            last = seq
            if since and rules.parse_time(updated) < since:
                continue
            items.append(json.loads(body))
            if len(items) >= limit:
                break
        more = self.one("SELECT 1 FROM events WHERE seq > ? LIMIT 1", last) is not None
        return items, last, more

    def latest(self, claim: str) -> dict | None:
        """The latest status record of a claim number (its highest submission count), or None."""
        row = self.one("SELECT e.body FROM events e WHERE e.claim=? ORDER BY e.count DESC, e.seq DESC LIMIT 1", claim)
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------------ surveys
    def survey_ack(self, doc: str) -> dict | None:
        row = self.one("SELECT ack FROM surveys WHERE doc=?", doc)
        return json.loads(row[0]) if row else None

    def add_survey(self, doc: str, dealer: str, ack: dict, payload: str) -> None:
        self.run("INSERT INTO surveys VALUES (?, ?, ?, ?, ?)", doc, dealer, json.dumps(ack, ensure_ascii=False),
                 payload, iso(now()))

    # ------------------------------------------------------------------ reports
    def current_report(self, dealer: str, report_type: str, period: str) -> tuple[str, str, str | None] | None:
        """(id, sha256, supersedes) of the report in force for (dealer, type, period), or None."""
        return self.one("SELECT id, sha256, supersedes FROM reports WHERE dealer=? AND type=? AND period=? AND current=1",
                        dealer, report_type, period)

    def add_report(self, rid: str, dealer: str, report_type: str, period: str, sha: str, size: int,
                   supersedes: str | None) -> None:
        """A new report in force; the one it supersedes (if any) no longer is."""
        if supersedes:
            self.run("UPDATE reports SET current=0 WHERE id=?", supersedes)
        self.run("INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)", rid, dealer, report_type, period, sha, size,
                 supersedes, iso(now()))

    def counts(self) -> dict:
        return {"claims": self.one("SELECT count(*) FROM claims")[0],
                "distinct_claims": self.one("SELECT count(*) FROM (SELECT DISTINCT dealer, claim, count FROM claims)")[0],
                "surveys": self.one("SELECT count(*) FROM surveys")[0],
                "reports": self.one("SELECT count(*) FROM reports")[0]}
