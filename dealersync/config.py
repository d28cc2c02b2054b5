"""One typed settings model, read from ``dealersync.toml`` and ``DEALERSYNC_*`` variables.

Precedence (highest first): explicit arguments, environment, the TOML file
(``$DEALERSYNC_CONFIG`` or ``./dealersync.toml``), defaults.

A key the model does not know, in the file or as a ``DEALERSYNC_*`` variable, is an error naming it
(a typo is never silently ignored). Production identifiers (dealer number, OEM and CRM URLs and
credentials) have no defaults: the code that needs one calls :meth:`Settings.require`, which names the
setting that is missing (``ConfigurationError``, exit 2). Only ``dealersync demo`` fills them in.
"""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator

from dealersync.errors import ConfigurationError

from pydantic_settings import (BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)


def _toml_path() -> Path:
    return Path(os.environ.get("DEALERSYNC_CONFIG", "dealersync.toml"))


# DEALERSYNC_* variables that are not settings: the config file's path, the test suite's own
NOT_SETTINGS = ("DEALERSYNC_CONFIG",)
NOT_SETTINGS_PREFIXES = ("DEALERSYNC_TEST_",)
ENV_PREFIX = "DEALERSYNC_"


class _EnvGuard(PydanticBaseSettingsSource):
    """Refuses a ``DEALERSYNC_*`` variable that names no setting (a typo would otherwise be ignored)."""

    def get_field_value(self, field, field_name):  # pragma: no cover - the guard contributes no values
        return None, field_name, False

    def __call__(self) -> dict:
        known = {ENV_PREFIX + n.upper() for n in self.settings_cls.model_fields}
        for k in os.environ:
            ku = k.upper()
            if (ku.startswith(ENV_PREFIX) and ku not in known and ku not in NOT_SETTINGS
                    and not ku.startswith(NOT_SETTINGS_PREFIXES)):
                raise ConfigurationError(f"unknown setting {k} in the environment (no such setting; "
                                         f"see `dealersync config show` for the settings there are)")
        return {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALERSYNC_", extra="forbid")

    data_dir: Path = Field(Path(".data"), description="local folder for the SQLite store and work files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir")
    dealer_code: str | None = Field(None, description="dealer code for a file whose name has none (file names "
                                    "normally carry it); no default")
    drop_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="folders the DMS exports land in")
    profile: str | None = Field(None, description="default export profile; None = detect from headers")
    profile_files: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="TOML files declaring custom profiles")
    chunk_rows: int = Field(200_000, ge=1000, description="rows per processing chunk")
    stable_seconds: float = Field(10.0, ge=0, description="a dropped file must be unchanged this long before it is taken")
    load_stale_seconds: float = Field(3600.0, gt=0, description="a load claimed by a process on another host "
                                      "that gave no sign for this long is taken over (SQLite; PostgreSQL sees a "
                                      "dead holder at once)")
    lock_wait_seconds: float = Field(600.0, ge=0, description="a job that runs one at a time (resolve) waits this "
                                     "long for another process running it, then stops with a message naming it")
    claim_stale_seconds: float = Field(600.0, gt=0, description="a claim submission left SENDING this long by a "
                                       "process on another host is sent again (same BODID)")
    max_workbook_bytes: int = Field(256 << 20, ge=1 << 20, description="a workbook whose parts decompress to more "
                                    "bytes (an .xls: whose file is larger) is refused")
    max_workbook_cells: int = Field(10_000_000, ge=1000, description="a workbook sheet whose used area holds more "
                                    "cells (rows x columns) is refused")
    max_line_bytes: int = Field(32 << 20, ge=1 << 16, description="a CSV file with a longer line is refused")

    # upstream systems (used by later stages); secrets are SecretStr and never flow parameters
    oem_url: str | None = Field(None, description="OEM portal API base URL; no default")
    oem_client_id: str | None = Field(None, description="OEM portal OAuth client id; no default")
    oem_client_secret: SecretStr | None = Field(None, description="OEM portal OAuth client secret; no default")
    oem_dealer_number: str | None = Field(None, description="this dealership's number at the OEM; no default")
    oem_rate_per_second: float | None = Field(None, description="client-side request rate limit; None = none")
    claim_window_days: int = Field(30, ge=1, description="a claim must reach the OEM within this many days of the RO")
    claim_deadline_warning_days: int = Field(5, ge=0, description="list claims this close to their window's end")
    crm_url: str | None = Field(None, description="CRM API base URL; no default")
    crm_token: SecretStr | None = Field(None, description="CRM API bearer token; no default")
    crm_rate_per_second: float | None = Field(None, description="client-side request rate limit; None = none")
    crm_page_size: int = Field(500, ge=1, le=500)
    # follow-up rules (the seeds' practice; every one configurable)
    return_visit_min_hours: int = Field(24, ge=0, description="return visit window after a repair order closes")
    return_visit_max_hours: int = Field(72, ge=1)
    maintenance_months: int = Field(6, ge=1, description="service interval in months")
    maintenance_km: int = Field(5000, ge=500, description="service interval in km")
    first_service_months: int = Field(3, ge=1, description="first service after delivery")
    reminder_lead_days: int = Field(7, ge=0, description="remind this many days before a service is due")
    lost_months: int = Field(12, ge=1, description="no service visit this long: LOST")
    new_months: int = Field(12, ge=1, description="bought within this long: NEW")
    vip_min_vehicles: int = Field(2, ge=1, description="VIP: this many vehicles bought here")
    birthday_lookahead_days: int = Field(7, ge=0)
    sftp_host: str | None = None
    sftp_port: int = 22
    sftp_user: str | None = None
    sftp_key_file: Path | None = None
    sftp_password: SecretStr | None = None
    sftp_known_hosts: Path | None = None
    sftp_remote_root: str = "/"
    sftp_stable_seconds: float = Field(10.0, ge=0, description="a remote file must keep size and mtime this long")
    sftp_require_done_marker: bool = False
    sftp_dms_folder: str | None = Field(None, description="remote folder where the DMS drops its exports, if any")
    task_runner: str = Field("thread", pattern="^(thread|dask)$",
                             description="fan-out inside flows: threads, or a Dask cluster (pip install prefect-dask)")
    task_workers: int = Field(2, ge=1, description="parallel tasks for the thread runner / local Dask workers")
    dask_address: str | None = Field(None, description="scheduler of an existing Dask cluster; None = a local one")
    resolution_partition_rows: int = Field(200_000, ge=1, description="new records normalised per partition task")
    resolution_source_precedence: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["DMS", "SALES", "SERVICE", "CRM"],
        description="survivorship: which source's value wins when validity ties (before recency)")
    retention_days: dict[str, int] = Field(default_factory=dict, description="days kept per kind of record "
                                           "(repair_orders, sales, customers, quarantine, value_issues, ledger, "
                                           "crm_activities, done_tasks, claim_history, audit); unset: the defaults")
    http_connect_timeout: float = Field(5.0, gt=0, description="CRM and OEM portal: seconds to connect")
    http_read_timeout: float = Field(30.0, gt=0, description="CRM and OEM portal: seconds a single socket read may wait")
    http_deadline_seconds: float = Field(180.0, gt=0, description="CRM and OEM portal: one call, all tries and waits "
                                         "included, ends within this many seconds")
    http_max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="CRM and OEM portal: a larger answer is "
                                      "refused without being read whole (bytes)")
    sftp_connect_timeout: float = 15.0
    sftp_read_timeout: float = 60.0
    # how a run fails: fast, bounded, and loudly (issue 15)
    retry_budget_seconds: float = Field(90.0, ge=0, description="a flow task waits at most this long in all "
                                        "between its retries; past it the stage fails (no 7-minute silence)")
    preflight_timeout_seconds: float = Field(5.0, gt=0, description="connect/read timeout of the reachability "
                                             "checks `run` and `check` make before any work")
    quarantine_alert_ratio: float = Field(0.05, ge=0, le=1, description="a file with more than this share of "
                                          "its rows quarantined marks the run as failed and notifies")
    notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, description=(
        "where failures and approaching claim deadlines are announced, Apprise-style URLs: json://host[:port]/path "
        "(jsons:// for HTTPS; generic JSON POST), wecombot://KEY or wecom+https://<robot webhook URL> (WeCom), "
        "dingtalk://TOKEN or dingtalk+https://<robot webhook URL> (DingTalk)"))
    notify_timeout_seconds: float = Field(10.0, gt=0, description="timeout of one notification POST")

    @property
    def sftp_inbox(self) -> Path:
        return self.data_dir / "sftp" / "inbox"

    @property
    def outbox(self) -> Path:
        """Reports waiting to be uploaded to the OEM's /inbound/<dealer>/ folder."""
        return self.data_dir / "outbox"

    @field_validator("resolution_source_precedence", mode="before")
    @classmethod
    def _split_words(cls, v):
        if isinstance(v, str):
            return [p.strip().upper() for p in v.split(",") if p.strip()]
        return v

    @field_validator("drop_dirs", "profile_files", mode="before")
    @classmethod
    def _split_paths(cls, v, info):
        if isinstance(v, str):  # env form: a JSON list, or comma / os.pathsep separated
            items = _list_value(v, info.field_name)
            return items if items is not None else [p.strip() for p in v.replace(os.pathsep, ",").split(",")
                                                    if p.strip()]
        return v

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _split_urls(cls, v, info):
        if isinstance(v, str):  # a JSON list, or comma / white-space separated
            items = _list_value(v, info.field_name)
            return items if items is not None else [p for p in v.replace(",", " ").split() if p]
        return v

    def require(self, *names: str) -> None:
        """Raise ``ConfigurationError`` naming every one of ``names`` that is unset (None or blank)."""
        missing = [n for n in names if _blank(getattr(self, n))]
        if missing:
            raise ConfigurationError(
                "not configured: " + ", ".join(f"{n} (DEALERSYNC_{n.upper()} or {n} in {_toml_path()})" for n in missing)
                + "; production identifiers have no defaults (`dealersync demo` runs on sample data)")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvGuard(settings_cls), env_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()), file_secret_settings)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dealersync.db').resolve()}"

    @property
    def effective_drop_dirs(self) -> list[Path]:
        return self.drop_dirs or [self.data_dir / "drop"]


def _blank(v) -> bool:
    if isinstance(v, SecretStr):
        v = v.get_secret_value()
    return v is None or (isinstance(v, str) and not v.strip())


def _list_value(v: str, name: str) -> list | None:
    """A JSON-list form (``["/srv/a", "/srv/b"]``) parsed; None when ``v`` is not one."""
    if not v.strip().startswith("["):
        return None
    try:
        items = json.loads(v)
    except ValueError:
        raise ConfigurationError(f"setting {name} (DEALERSYNC_{name.upper()}): {v!r} starts like a JSON list but "
                                 f"is not one; write [\"a\", \"b\"] or a comma-separated list") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigurationError(f"setting {name} (DEALERSYNC_{name.upper()}): expected a list of strings")
    return items


def toml_keys() -> set[str]:
    """The keys set in the settings file (empty when there is none)."""
    p = _toml_path()
    try:
        return set(tomllib.loads(p.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return set()


def env_keys() -> set[str]:
    """The settings set through ``DEALERSYNC_*`` variables."""
    return {n for n in Settings.model_fields if ENV_PREFIX + n.upper() in {k.upper() for k in os.environ}}


def get_settings(**overrides) -> Settings:
    """The settings in effect. Raises ``ConfigurationError`` (one line naming the key and where it was
    set) for an unknown key, a value of the wrong type, or a settings file that is not TOML."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(map(str, first["loc"]))
        top = str(first["loc"][0]) if first["loc"] else key
        where = (f"DEALERSYNC_{top.upper()}" if top in env_keys() else
                 f"{_toml_path()}" if _in_toml(top) else "an argument")
        if first["type"] == "extra_forbidden":
            raise ConfigurationError(f"unknown setting {key!r} in {where} (no such setting; see "
                                     f"`dealersync config show`)") from None
        raise ConfigurationError(f"setting {key} (from {where}): {first['msg']}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"settings file {_toml_path()} is not valid TOML: {e}") from None


def _in_toml(key: str) -> bool:
    try:
        return key in toml_keys()
    except (OSError, tomllib.TOMLDecodeError):
        return False
