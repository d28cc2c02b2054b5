"""The run context: the one place a job is wired (issue 14 item 3).

``build_context(settings)`` gives what every job needs, built the same way for both front doors (the
CLI commands and the Prefect flows): the settings, the store's engine, the OEM portal and CRM clients,
an SFTP connector factory, the notifier and the clock. It is a context manager: leaving it disposes
the engine (its pooled connections are closed, not left to the garbage collector).

Nothing here migrates the store: migrations run in ``dealersync db upgrade`` and when ``serve``,
``run`` and ``demo`` start (``upgrade_store``), never inside a task.

Everything is made on first use: ``dealersync crm check`` never opens the store, and a job that needs
no portal does not fail on unset portal settings. A client whose production identifiers are unset
raises ``ConfigurationError`` naming each of them (no default dealer, URL or secret).

The clock: "today" is the dealer's day (Asia/Shanghai, as the reports' periods and the schedules in
``prefect.yaml``), unless the caller fixes it (``--date`` on the command line, ``today`` in a flow):
the claim window, the follow-up plan and the 三包 monitor all read it from here.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Iterator

from dealersync import clock as dealer_clock
from dealersync.connectors.crm import CrmClient, CrmSettings
from dealersync.connectors.http import RetryPolicy
from dealersync.connectors.notify import Notifier
from dealersync.connectors.oem import OemClient, OemSettings
from dealersync.connectors.sftp import SftpConnector, SftpSettings
from dealersync.errors import ConfigurationError
from dealersync.store.db import make_engine, upgrade

OEM_SETTINGS = ("oem_url", "oem_client_id", "oem_client_secret", "oem_dealer_number")
CRM_SETTINGS = ("crm_url", "crm_token")
SFTP_SETTINGS = ("dealer_code", "sftp_user")   # when sftp_host is set


@dataclass(frozen=True)
class Clock:
    """The dealer's day. ``fixed``: a day given by the caller (``--date``), which wins."""
    fixed: date | None = None

    def now(self) -> datetime:
        """Naive local time of the dealer (the DMS's timestamps are naive Asia/Shanghai)."""
        return dealer_clock.now()

    def today(self) -> date:
        return self.fixed or self.real_today()

    def real_today(self) -> date:
        """The dealer's date by the wall clock, whatever ``fixed`` says: what a ``--date`` is checked
        against (``purge`` refuses a future one). Never the host's date: a host west of Shanghai is a day
        behind for part of every day."""
        return dealer_clock.today()


def parse_day(value: str | date | None, what: str = "--date") -> date | None:
    """``YYYY-MM-DD`` (or a date, or None) as a date; ``ConfigurationError`` naming ``what`` otherwise."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"{what} {value!r}: expected YYYY-MM-DD") from None


def oem_client(s, preflight: bool = False) -> OemClient:
    """The OEM portal client; ``ConfigurationError`` naming each unset production identifier.
    ``preflight``: a short retry policy with ``preflight_timeout_seconds`` timeouts (reachability checks)."""
    s.require(*OEM_SETTINGS)
    return OemClient(OemSettings.from_settings(s), policy=preflight_policy(s) if preflight else None)


def crm_client(s, preflight: bool = False) -> CrmClient:
    s.require(*CRM_SETTINGS)
    return CrmClient(CrmSettings.from_settings(s), policy=preflight_policy(s) if preflight else None)


def notifier(s) -> Notifier:
    """Sends to every ``notify_urls`` target (none: sends nothing)."""
    return Notifier.from_settings(s)


def preflight_policy(s) -> RetryPolicy:
    """Reachability checks: two tries, connect and read each within ``preflight_timeout_seconds``."""
    t = s.preflight_timeout_seconds
    return RetryPolicy(attempts=2, base=0.2, cap=1.0, max_retry_after=t, timeout=(t, t), deadline=4 * t + 2)


class RunContext:
    """What a job runs with; made by ``build_context``. Attributes are built on first use."""

    def __init__(self, settings, clock: Clock, engine=None):
        self.settings, self.clock = settings, clock
        if engine is not None:
            self.__dict__["engine"] = engine

    @cached_property
    def engine(self):
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def portal(self) -> OemClient:
        return oem_client(self.settings)

    @cached_property
    def crm(self) -> CrmClient:
        return crm_client(self.settings)

    def sftp(self) -> SftpConnector:
        """A new SFTP connector (one per transfer job: a connector holds its session)."""
        return SftpConnector(SftpSettings.from_settings(self.settings))

    @cached_property
    def notifier(self) -> Notifier:
        return notifier(self.settings)

    def today(self) -> date:
        return self.clock.today()

    def dispose(self) -> None:
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.dispose()


@contextlib.contextmanager
def build_context(settings, today: str | date | None = None) -> Iterator[RunContext]:
    """The run context of one command or one task; the engine is disposed on exit. ``today`` fixes
    the clock (``--date``, or a flow's ``today`` parameter)."""
    ctx = RunContext(settings, Clock(fixed=parse_day(today)))
    try:
        yield ctx
    finally:
        ctx.dispose()


def upgrade_store(settings) -> None:
    """Migrate the store to the newest revision (``db upgrade``; ``serve``, ``run`` and ``demo`` start-up)."""
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
