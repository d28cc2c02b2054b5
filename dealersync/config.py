"""One typed settings model, read from ``dealersync.toml`` and ``DEALERSYNC_*`` variables.

Precedence (highest first): explicit arguments, environment, the TOML file
(``$DEALERSYNC_CONFIG`` or ``./dealersync.toml``), defaults.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from typing import Annotated

from pydantic_settings import (BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)


def _toml_path() -> Path:
    return Path(os.environ.get("DEALERSYNC_CONFIG", "dealersync.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALERSYNC_", extra="ignore")

    data_dir: Path = Field(Path(".data"), description="local folder for the SQLite store and work files")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir")
    dealer_code: str = Field("GZ0012", description="default dealer code when a file name has none")
    drop_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="folders the DMS exports land in")
    profile: str | None = Field(None, description="default export profile; None = detect from headers")
    profile_files: Annotated[list[Path], NoDecode] = Field(default_factory=list, description="TOML files declaring custom profiles")
    chunk_rows: int = Field(200_000, ge=1000, description="rows per processing chunk")
    stable_seconds: float = Field(0.0, ge=0, description="a file must be unchanged this long before it is taken")

    # upstream systems (used by later stages); secrets are SecretStr and never flow parameters
    oem_url: str = Field("http://127.0.0.1:8710/api/v1", description="OEM portal API base URL (the sandbox's by default)")
    oem_client_id: str = "dealersync"
    oem_client_secret: SecretStr = SecretStr("sandbox-secret")
    oem_dealer_number: str = "GZ0012"
    oem_rate_per_second: float | None = Field(None, description="client-side request rate limit; None = none")
    claim_window_days: int = Field(30, ge=1, description="a claim must reach the OEM within this many days of the RO")
    claim_deadline_warning_days: int = Field(5, ge=0, description="list claims this close to their window's end")
    crm_url: str = Field("http://127.0.0.1:8720/crm/v1", description="CRM API base URL (the sandbox's by default)")
    crm_token: SecretStr = SecretStr("sandbox-token")
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
    def _split_paths(cls, v):
        if isinstance(v, str):  # env form: comma or os.pathsep separated
            return [p for p in v.replace(os.pathsep, ",").split(",") if p.strip()]
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()), file_secret_settings)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dealersync.db').resolve()}"

    @property
    def effective_drop_dirs(self) -> list[Path]:
        return self.drop_dirs or [self.data_dir / "drop"]


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
