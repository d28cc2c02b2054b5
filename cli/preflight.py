"""Checks made before any work: settings, store, drop folders, CRM, OEM portal, SFTP.

``dealersync check`` prints every one; ``dealersync run`` makes them first and refuses to start
(store unchanged, one line per problem) when one fails. Every check says what it checked, and
the code of a failure: ``config`` (exit 2: a setting is missing or wrong) or ``unavailable`` (exit 3:
a service did not answer or refused our credentials).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dealersync.connectors.notify import parse_target
from dealersync.errors import ConfigurationError, DealersyncError
from dealersync.services.context import CRM_SETTINGS, OEM_SETTINGS, SFTP_SETTINGS, crm_client, oem_client

from .show import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNAVAILABLE, _safe_url


@dataclass
class Check:
    what: str            # what was checked, in words
    ok: bool
    detail: str = ""
    code: str = ""       # "config" | "unavailable" when not ok

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


def exit_code(checks: list[Check]) -> int:
    bad = [c for c in checks if not c.ok]
    if not bad:
        return EXIT_OK
    return EXIT_BAD_INPUT if any(c.code == "config" for c in bad) else EXIT_UNAVAILABLE


def _missing(settings, names) -> list[str]:
    try:
        settings.require(*names)
    except ConfigurationError:
        return [n for n in names if not getattr(settings, n) or
                (hasattr(getattr(settings, n), "get_secret_value") and not getattr(settings, n).get_secret_value())]
    return []


def check_settings(settings) -> list[Check]:
    out = []
    groups = [("OEM portal settings", OEM_SETTINGS), ("CRM settings", CRM_SETTINGS)]
    if settings.sftp_host:   # the OEM's SFTP folders are named by our dealer code
        groups.append(("SFTP settings", SFTP_SETTINGS))
    for label, names in groups:
        miss = _missing(settings, names)
        out.append(Check(label, not miss, "set" if not miss else "not set: " + ", ".join(
            f"{n} (DEALERSYNC_{n.upper()})" for n in miss), "config"))
    out.append(check_dealer(settings))
    out.append(check_notify(settings))
    return out


def check_dealer(settings) -> Check:
    """``run`` is one dealer's job: its SFTP folders and reports are named by ``dealer_code``, and
    without it each export's dealer is whatever its file name says (another dealer's file would load
    as theirs, unnoticed). Unset is a setting to fix, named with the dealers the drop folders hold."""
    if settings.dealer_code:
        return Check("dealer code", True, settings.dealer_code)
    from dealersync.connectors.files import parse_file_name
    named = sorted({n.dealer.upper() for d in settings.effective_drop_dirs if d.is_dir() and os.access(d, os.R_OK | os.X_OK)
                    for p in d.iterdir() if p.is_file() and (n := parse_file_name(p.name)).dealer})
    seen = f"; the drop folders' file names say {', '.join(named[:5])}{'...' if len(named) > 5 else ''}" if named else ""
    return Check("dealer code", False, "not set: dealer_code (DEALERSYNC_DEALER_CODE); `run` would take each file's "
                 f"dealer from its name{seen}", "config")


def check_notify(settings) -> Check:
    """Each ``notify_urls`` entry is a target we can send to (none: a warning in words, not a failure).
    Nothing is sent."""
    try:
        targets = [parse_target(u) for u in settings.notify_urls]
    except ConfigurationError as e:
        return Check("notification targets", False, str(e), "config")
    if not targets:
        return Check("notification targets", True, "none configured (notify_urls): failed items reach nobody")
    return Check("notification targets", True, ", ".join(t.shown for t in targets))


def check_store(settings, must_exist: bool = True) -> Check:
    """Reachable, and migrated to the newest revision. Writes nothing (a missing SQLite file is reported,
    not created)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from dealersync.store.db import alembic_config, make_engine
    url = settings.effective_database_url
    what = f"store {_safe_url(url)}"
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return (Check(what, False, "does not exist yet (`dealersync db upgrade` creates it)", "config")
                    if must_exist else Check(what, True, "new (created and migrated on the first run)"))
    try:
        engine = make_engine(url, **({} if url.startswith("sqlite") else {"connect_args": {"connect_timeout": 5}}))
        try:
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()
    except Exception as e:  # noqa: BLE001 - any driver error is "not reachable"
        return Check(what, False, f"not reachable: {type(e).__name__}: {str(e).splitlines()[0][:160]}", "unavailable")
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        return Check(what, False, f"reachable, schema at {current or 'nothing'}, newest is {head} "
                     f"(`dealersync db upgrade`)", "config")
    return Check(what, True, f"reachable, migrated (revision {head})")


def check_folders(settings) -> list[Check]:
    """Each drop folder exists, is a readable folder, and holds at least one file (an empty one is
    refused: a production run never invents data)."""
    out = []
    for d in settings.effective_drop_dirs:
        what = f"drop folder {d}"
        source = "drop_dirs" if settings.drop_dirs else "data_dir (drop_dirs unset: <data_dir>/drop)"
        if not d.exists():
            out.append(Check(what, False, f"does not exist (setting {source})", "config"))
        elif not d.is_dir():
            out.append(Check(what, False, f"is not a folder (setting {source})", "config"))
        elif not os.access(d, os.R_OK | os.X_OK):
            out.append(Check(what, False, f"not readable by this user (setting {source})", "config"))
        else:
            n = sum(1 for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
            if n == 0 and not settings.sftp_dms_folder:
                out.append(Check(what, False, f"is empty: no DMS export has arrived (setting {source})", "config"))
            else:
                out.append(Check(what, True, f"readable, {n} file(s)"))
    return out


def _service(what: str, fn, credentials: tuple[str, ...]) -> Check:
    try:
        info = fn()
    except ConfigurationError as e:
        names = " / ".join(f"{n} (DEALERSYNC_{n.upper()})" for n in credentials)
        return Check(what, False, f"{e}; credentials refused? check {names}", "config")
    except (DealersyncError, OSError) as e:
        return Check(what, False, f"not reachable: {str(e)[:200]}", "unavailable")
    except Exception as e:  # noqa: BLE001 - a client library's own error (paramiko, requests)
        return Check(what, False, f"not reachable: {type(e).__name__}: {str(e)[:160]}", "unavailable")
    return Check(what, True, info)


def check_services(settings) -> list[Check]:
    """CRM, portal (and SFTP when configured): reachable and our credentials accepted, with short
    timeouts (``preflight_timeout_seconds``) and two tries."""
    out = []
    if not _missing(settings, CRM_SETTINGS):
        out.append(_service(f"CRM {settings.crm_url}", lambda: (
            lambda i: f"reachable, token accepted ({i['sample_contacts']} contact(s) read)")(
            crm_client(settings, preflight=True).check()), ("crm_token",)))
    if not _missing(settings, OEM_SETTINGS):
        out.append(_service(f"OEM portal {settings.oem_url}", lambda: (
            lambda i: f"reachable, client accepted, dealer {i['dealer']} ({i['labor_operations']} labor operation(s))")(
            oem_client(settings, preflight=True).check()), ("oem_client_id", "oem_client_secret")))
    if settings.sftp_host and not _missing(settings, SFTP_SETTINGS):
        from dealersync.connectors.sftp import SftpConnector, SftpSettings

        def sftp():
            s = SftpSettings.from_settings(settings)
            i = SftpConnector(s).check()
            return f"reachable, host key {i['host_key']}, logged in as {i['user']}, {i['entries']} entries in {i['remote_root']}"
        out.append(_service(f"SFTP {settings.sftp_user}@{settings.sftp_host}:{settings.sftp_port}", sftp,
                            ("sftp_user", "sftp_key_file", "sftp_password", "sftp_known_hosts")))
    return out


def preflight(settings, *, store_must_exist: bool) -> list[Check]:
    """Everything, cheapest first; services are contacted only when their settings are complete."""
    return [*check_settings(settings), check_store(settings, must_exist=store_must_exist), *check_folders(settings),
            *check_services(settings)]
