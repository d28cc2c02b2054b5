"""Operations: the status overview and the retention purge. Plain functions; the CLI wraps them
(backfills and serving, which need the flows, live in ``dealersync.flows.deploy``)."""
from __future__ import annotations

from dealersync import clock as dealer_clock
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from dealersync.errors import ConfigurationError
from dealersync.services.context import Clock
from dealersync.store import claims as store_claims
from dealersync.store import followups as store_followups
from dealersync.store import ledger, overview
from dealersync.store import retention as retention_store

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ status

def status(conn: Connection, today: date, pending_files: int | None = None, warning_days: int = 5) -> dict:
    """What an IT person asks first: when did each job last do something, what is waiting, what is wrong."""
    last = overview.last_activity(conn)
    files = overview.file_counts(conn)
    claims = store_claims.status_counts(conn, today, warning_days)
    tasks, overdue = store_followups.open_counts(conn, today)
    return {"today": today.isoformat(),
            "last_activity": {k: v.isoformat(sep=" ") if v else None for k, v in last.items()},
            "files": {"pending": pending_files, **{str(k).lower(): v for k, v in files.items()}},
            "quarantine": ledger.quarantine_counts(conn),   # rows of replaced loads apart (issue #17 item 9)
            "claims": {"local": claims["local"], "oem": claims["oem"], "deadline_within_days": warning_days,
                       "approaching_deadline": claims["approaching_deadline"]},
            "tasks_due": {"open": tasks, "overdue": overdue}}


# ------------------------------------------------------------------------------------ purge

@dataclass(frozen=True)
class Retention:
    """Days each kind of record is kept (``retention_days`` in the settings overrides any of them).
    These defaults are the policy (docs/operations.md "Personal data"): repair records at least a year
    (三包 and warranty disputes look back that far); customers five years after their last vehicle,
    order or claim is gone. A purge that would delete rows younger than this policy asks for ``--yes``."""
    repair_orders: int = 3 * 365
    sales: int = 5 * 365
    claims: int = 5 * 365
    vehicles: int = 5 * 365
    customers: int = 5 * 365
    leads: int = 2 * 365
    crm_contacts: int = 2 * 365
    quarantine: int = 180
    value_issues: int = 180
    ledger: int = 2 * 365
    crm_activities: int = 2 * 365
    done_tasks: int = 365
    surveys: int = 2 * 365
    claim_history: int = 5 * 365
    audit: int = 5 * 365
    stock: int = 2 * 365     # daily stock snapshots (no personal data): as long as the ledgers, so a report still
                             # in the report_upload / SFTP ledger can be rebuilt from its day's snapshot
    MINIMUM_REPAIR_DAYS = 365

    @classmethod
    def from_days(cls, days: dict[str, int] | None) -> "Retention":
        unknown = sorted(set(days or {}) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigurationError(f"retention_days: unknown kind(s) {', '.join(unknown)}; "
                                     f"known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**(days or {}))

    def check(self) -> None:
        if self.repair_orders < self.MINIMUM_REPAIR_DAYS:
            raise ConfigurationError(f"retention: repair records must be kept at least {self.MINIMUM_REPAIR_DAYS} days "
                                     f"(asked {self.repair_orders})")
        for k, v in self.__dict__.items():
            if v < 1:
                raise ConfigurationError(f"retention.{k} must be at least 1 day")

    def cutoffs(self, day: date) -> dict[str, datetime]:
        return {k: datetime.combine(day - timedelta(days=v), datetime.min.time()) for k, v in self.__dict__.items()}


def purge(conn: Connection, today: date, retention: Retention | None = None, dry_run: bool = False,
          actor: str = "purge", confirm: bool = False, now: date | None = None) -> list[dict]:
    """Delete what the retention policy no longer allows, as of ``today``; every run (a dry run too) is
    recorded in ``purge_run`` with, per table, the rows and the cutoff.

    Refuses (``ConfigurationError``) a ``today`` after the real date ``now`` (a typo such as 2062 for 2026
    would delete everything), and, unless ``confirm``, a purge that would delete rows the default policy
    (``Retention()`` as of ``now``) still keeps: the figures are listed in the message. ``now`` is the
    dealer's date by the clock ``today`` comes from (``Clock.real_today()``, Asia/Shanghai), never the
    host's date, which is a day behind west of Shanghai for part of every day."""
    r = retention or Retention()
    r.check()
    now = now or Clock().real_today()
    if today > now:
        raise ConfigurationError(f"purge --date {today}: in the future (today is {now}); refused")
    floors, cut = Retention().cutoffs(now), r.cutoffs(today)
    steps = retention_store.targets(cut)
    young = {}
    for t in steps:   # before anything is deleted: the rows the default policy still keeps
        cond = retention_store.younger_than(t, floors[t.policy])
        if cond is not None and r.__dict__[t.policy] < Retention().__dict__[t.policy]:
            young[t.label] = retention_store.count(conn, t, cond)
    named = [f"{k} {v}" for k, v in young.items() if v]
    if named and not dry_run and not confirm:
        raise ConfigurationError("purge would delete rows younger than the retention policy (" + ", ".join(named)
                                 + "); run again with --yes to confirm, or --dry-run to see them")
    action = "would delete" if dry_run else "deleted"
    out = []
    sp = conn.begin_nested()   # a dry run deletes too, then rolls back: its figures are exact, derived rows included
    try:
        for t in steps:
            n = retention_store.delete_rows(conn, t)
            out.append({"table": t.label, "cutoff": cut[t.policy].date().isoformat(), "rows": n,
                        "younger_than_policy": young.get(t.label, 0), "action": action})
            if n:
                log.info("purge %s: %s %d row(s) older than %s", t.label, action, n, cut[t.policy].date())
    except BaseException:
        sp.rollback()
        raise
    if dry_run:
        sp.rollback()
    else:
        sp.commit()
    retention_store.record_run(conn, at=dealer_clock.now(), actor=actor, dry_run=dry_run,
                               policy=dict(r.__dict__), result=out)
    return out
