"""SQLAlchemy 2 tables of the store. Schema changes go through Alembic (``store/migrations``).

Canonical feed tables are declared from the pandera models' metadata so the two never disagree;
every row carries its lineage: dealer_code, business_date, source_file, source_row, load_id.

Over 400 lines on purpose: table definitions only, one declaration per table, all in one place so that
Alembic's autogenerate and a reader see the whole schema at once (the SQL itself lives in the store
module of each aggregate: ledger, claims, crm, followups, customers, surveys, dms, overview, retention).
"""
from __future__ import annotations

from enum import Enum

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Index, Integer,
                        MetaData, Numeric, PrimaryKeyConstraint, String, Table, Text, UniqueConstraint)

from dealersync.schemas.feeds import FEEDS

NAMING = {"ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}
metadata = MetaData(naming_convention=NAMING)


class LoadStatus(str, Enum):
    """A ledger row's status. LOADING -> LOADED | REJECTED | FAILED; LOADED -> REPLACED."""
    LOADING = "LOADING"
    LOADED = "LOADED"
    REJECTED = "REJECTED"     # the file as such is refused (name, format, structure): nothing loaded
    REPLACED = "REPLACED"     # a later export of the same day (or a forced re-read) took its place
    FAILED = "FAILED"         # the database refused a value, or the file changed while read: retried


class SubmissionState(str, Enum):
    """A claim submission's state. PREPARED -> SENDING -> ACKED | REJECTED | FAILED."""
    PREPARED = "PREPARED"
    SENDING = "SENDING"
    ACKED = "ACKED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


class JobStatus(str, Enum):
    """A claim job's local technical status."""
    DRAFT = "DRAFT"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    SUBMIT_FAILED = "SUBMIT_FAILED"
    SUBMITTED = "SUBMITTED"


class TransferStatus(str, Enum):
    """An SFTP transfer ledger row's status: a row is written only once the transfer is complete."""
    DONE = "DONE"


class MasterStatus(str, Enum):
    """A master customer's status. ACTIVE -> MERGED (into the oldest) | SPLIT; any -> ERASED (PIPL erasure)."""
    ACTIVE = "ACTIVE"
    MERGED = "MERGED"
    SPLIT = "SPLIT"
    ERASED = "ERASED"


class LinkStatus(str, Enum):
    """A review / household link's status. OPEN -> LINKED | SPLIT | DISMISSED (a reviewer's decision)."""
    OPEN = "OPEN"
    LINKED = "LINKED"
    SPLIT = "SPLIT"
    DISMISSED = "DISMISSED"


class PushStatus(str, Enum):
    """A CRM push ledger row's status. SENT | ERROR -> TO_DELETE (retention) -> DELETED."""
    SENT = "SENT"
    ERROR = "ERROR"
    TO_DELETE = "TO_DELETE"   # the master left the store (retention); its CRM contact goes next push
    DELETED = "DELETED"


class TaskStatus(str, Enum):
    """A follow-up task's status. OPEN -> DONE | CANCELLED; a DONE or CANCELLED task is never reopened."""
    OPEN = "OPEN"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


class SurveyPushStatus(str, Enum):
    """A survey result's status on its way to the OEM portal. PREPARED -> SENT | REJECTED; SKIPPED: no consent."""
    PREPARED = "PREPARED"
    SENT = "SENT"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"


class UploadStatus(str, Enum):
    """A report upload's status at the OEM portal. PREPARED -> UPLOADED | REJECTED; NO_PORTAL: none configured."""
    PREPARED = "PREPARED"
    NO_PORTAL = "NO_PORTAL"
    UPLOADED = "UPLOADED"
    REJECTED = "REJECTED"


class OutboxStatus(str, Enum):
    """A report's copy in the SFTP CSIMONTH outbox: QUEUED -> SENT; NULL when no outbox is configured."""
    QUEUED = "QUEUED"
    SENT = "SENT"


def _check_in(name: str, column: str, enum) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({', '.join(repr(e.value) for e in enum)})", name=name)

ingest_file = Table(
    "ingest_file", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="the load id"),
    Column("path", Text, nullable=False, index=True),
    Column("file_name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, comment="local file mtime when ingested; with path and size it spares re-hashing"),
    Column("sha256", String(64), index=True, comment="SHA-256 of the bytes actually read; empty until the read ends"),
    Column("source", String(8), nullable=False, default="DMS"),
    Column("feed", String(32)),
    Column("dealer_code", String(32)),
    Column("business_date", Date),
    Column("profile", String(64)),
    Column("encoding", String(32)),
    Column("status", String(16), nullable=False, comment="LoadStatus"),
    Column("reason", String(32), comment="reason code of a rejection or failure"),
    Column("claim_key", String(64), unique=True,
           comment="digest of the path while a load is under way; unique: one process per load"),
    Column("claimed_by", String(128), comment="host:pid of the loading process"),
    Column("claimed_at", DateTime),
    Column("export_seq", Integer, comment="the export's sequence number of the day (_2); decides replacement"),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
    Column("rows_superseded", Integer, nullable=False, default=0),
    Column("value_issues", Integer, nullable=False, default=0),
    Column("warnings", Integer, nullable=False, default=0),
    Column("message", Text),
    Column("file_warnings", Text, comment="JSON list of file-level warnings"),
    Column("replaced_by", Integer),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("duration_ms", Integer),
    Column("timings", Text, comment="JSON: seconds per phase (read, validate, stage, finalise)"),
    Index(None, "dealer_code", "feed", "business_date"),
    _check_in("ck_ingest_file_status", "status", LoadStatus),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, ForeignKey("ingest_file.id"), nullable=False, index=True),
    Column("source_file", String(255), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("column_name", String(64)),
    Column("raw_value", Text),
    Column("reason_code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("raw_row", Text, comment="JSON object header -> raw cell"),
    Column("resolved_by", Integer, comment="the load id of the replay that took the corrected row"),
)

value_issue = Table(
    "value_issue", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("load_id", Integer, ForeignKey("ingest_file.id"), nullable=False, index=True),
    Column("feed", String(32), nullable=False),
    Column("dealer_code", String(32)),
    Column("source_file", String(255), nullable=False),
    Column("source_row", Integer, nullable=False),
    Column("column_name", String(64)),
    Column("raw_value", Text),
    Column("reason_code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("severity", String(8), nullable=False),  # ISSUE (value blanked) or WARNING (row rule)
)

sftp_transfer = Table(
    "sftp_transfer", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("direction", String(4), nullable=False),          # PULL or PUSH
    Column("host", String(255), nullable=False),
    Column("remote_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("remote_mtime", BigInteger),
    Column("sha256", String(64), nullable=False),
    Column("local_path", Text),
    Column("load_id", Integer, comment="ingest_file.id of a pulled file"),
    Column("status", String(16), nullable=False),            # TransferStatus
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("seconds", Numeric(12, 3)),
    UniqueConstraint("direction", "host", "remote_path", "sha256"),
    _check_in("ck_sftp_transfer_status", "status", TransferStatus),
)

_KIND_TYPES = {"date": Date, "datetime": DateTime, "decimal": lambda: Numeric(16, 4), "integer": BigInteger,
               "bool": Boolean}

LINEAGE = ("dealer_code", "business_date", "source_file", "source_row", "load_id", "ingested_at")


def _sql_type(meta: dict):
    t = _KIND_TYPES.get(meta["kind"])
    if t is not None:
        return t()
    return String(64) if meta["key"] else Text()


def lineage_columns():
    return [Column("dealer_code", String(32), nullable=False),
            Column("business_date", Date),
            Column("source_file", String(255), nullable=False),
            Column("source_row", Integer, nullable=False),
            Column("load_id", Integer, nullable=False),
            Column("ingested_at", DateTime, nullable=False)]


def feed_columns(feed_name: str) -> list[Column]:
    feed = FEEDS[feed_name]
    return [Column(c, _sql_type(m), nullable=not m["key"]) for c, m in feed.columns.items()]


def _feed_table(feed_name: str) -> Table:
    feed = FEEDS[feed_name]
    # keyed on the natural key per dealer (no surrogate id: bulk loads pay for every index). Load ids
    # grow with the table, so on PostgreSQL a BRIN index (a few pages, next to nothing to maintain
    # on a million-row COPY) finds a load's rows; SQLite keeps a b-tree.
    return Table(feed.table, metadata, *feed_columns(feed_name), *lineage_columns(),
                 PrimaryKeyConstraint("dealer_code", *feed.store_key),
                 Index(f"ix_{feed.table}_load_id", "load_id", postgresql_using="brin",
                       postgresql_with={"autosummarize": "on"}))


FEED_TABLES: dict[str, Table] = {name: _feed_table(name) for name in FEEDS}


# ------------------------------------------------------------------------------------ master customers
# The cross-reference: one row per source record (source, source_id) -> master_id, with the match
# weight, model version and decision time; the record's raw fields (what survivorship picks from) and its
# normalised matching columns (so an increment never re-normalises the existing records).

MATCH_COLUMNS = ("name_norm", "name_placeholder", "surname", "surname_py", "name_py", "given_py", "name_key",
                 "company_key", "mobile", "mobile2", "phone", "id_valid", "id_raw", "id_kind", "birth", "gender",
                 "email", "province", "city", "district", "address_key", "vin", "vin_ok", "plate")
RAW_COLUMNS = ("customer_type", "name", "company", "mobile", "phone", "id_number", "email", "address", "vin",
               "plate")

customer_record = Table(
    "customer_record", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("dealer_code", String(32)),
    *[Column(f"raw_{c}", Text) for c in RAW_COLUMNS],
    Column("marketing_consent", Boolean, comment="explicit answer in this source; NULL = unknown"),
    Column("consent_at", DateTime),
    Column("seen_at", DateTime, comment="the source's own date of this record (last seen)"),
    Column("source_table", String(64), comment="lineage: the feed table, file, row and load the values came from"),
    Column("source_file", String(255)),
    Column("source_row", Integer),
    Column("load_id", Integer),
    *[Column(f"m_{c}", Boolean if c in ("name_placeholder", "vin_ok") else Text) for c in MATCH_COLUMNS],
    Column("content_hash", String(64), nullable=False),
    Column("master_id", String(16), index=True),
    Column("match_weight", Numeric(10, 3)),
    Column("match_rule", String(32), comment="MODEL, NEW, FORCE_LINK, FORCE_SPLIT"),
    Column("model_version", String(32)),
    Column("decided_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("source", "source_id"),
)

master_customer = Table(
    "master_customer", metadata,
    Column("master_id", String(16), primary_key=True),
    Column("seq", Integer, nullable=False, unique=True, comment="creation order: the older id survives a merge"),
    Column("status", String(8), nullable=False),          # MasterStatus
    Column("merged_into", String(16)),
    Column("customer_type", String(16)),
    Column("name", Text), Column("company", Text), Column("gender", String(1)), Column("birth_date", Date),
    Column("id_number", Text), Column("address", Text), Column("province", Text), Column("city", Text),
    Column("district", Text),
    Column("primary_mobile", Text), Column("primary_email", Text),
    Column("marketing_consent", Boolean, comment="latest explicit answer; NULL = unknown"),
    Column("golden_sources", Text, comment="JSON: golden field -> customer_record id it came from"),
    Column("record_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    _check_in("ck_master_customer_status", "status", MasterStatus),
)

master_contact = Table(
    "master_contact", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("master_id", String(16), nullable=False, index=True),
    Column("kind", String(8), nullable=False),            # MOBILE, PHONE, EMAIL
    Column("value", Text, nullable=False),
    Column("record_id", Integer, nullable=False, comment="customer_record it came from"),
    Column("source", String(32), nullable=False),
    Column("last_seen", DateTime),
    Column("is_primary", Boolean, nullable=False, default=False),
    UniqueConstraint("master_id", "kind", "value", "record_id"),
)

master_vehicle = Table(
    "master_vehicle", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("master_id", String(16), nullable=False, index=True),
    Column("vin", String(17), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("last_seen", DateTime),
    UniqueConstraint("master_id", "vin", "record_id"),
)

match_decision = Table(
    "match_decision", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(12), nullable=False),           # FORCE_LINK, FORCE_SPLIT
    Column("side_a", Text, nullable=False, comment="JSON list of customer_record ids"),
    Column("side_b", Text, nullable=False, comment="JSON list of customer_record ids"),
    Column("reason", Text),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime, nullable=False),
    Column("review_id", Integer),
)

match_link = Table(
    "match_link", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),           # REVIEW, HOUSEHOLD
    Column("record_a", Integer, nullable=False),
    Column("record_b", Integer, nullable=False),
    Column("weight", Numeric(10, 3)),
    Column("evidence", Text, comment="JSON: comparison -> level"),
    Column("status", String(10), nullable=False),         # LinkStatus
    Column("model_version", String(32)),
    Column("created_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    UniqueConstraint("kind", "record_a", "record_b"),
    _check_in("ck_match_link_status", "status", LinkStatus),
)

master_audit = Table(
    "master_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("action", String(16), nullable=False),         # CREATE, MERGE, SPLIT, FORCE_LINK, FORCE_SPLIT, REVIEW
    Column("master_id", String(16), index=True),
    Column("other_ids", Text, comment="JSON list of the other masters involved"),
    Column("before", Text, comment="JSON"),
    Column("after", Text, comment="JSON"),
    Column("reason", Text),
    Column("model_version", String(32)),
    Column("actor", String(64), nullable=False),
)

match_model = Table(
    "match_model", metadata,
    Column("version", String(32), primary_key=True),
    Column("trained_at", DateTime, nullable=False),
    Column("records", Integer, nullable=False),
    Column("params", Text, nullable=False, comment="JSON: m and u per comparison level, lambda"),
)


# ------------------------------------------------------------------------------------ CRM sync

crm_cursor = Table(
    "crm_cursor", metadata,
    Column("feed", String(16), primary_key=True),          # leads, contacts, activities
    Column("cursor", Text, comment="the CRM's opaque cursor to resume a feed"),
    Column("watermark", String(40), comment="latest modifiedAt taken (ISO 8601)"),
    Column("updated_at", DateTime, nullable=False),
)

crm_lead = Table(
    "crm_lead", metadata,
    Column("lead_id", String(64), primary_key=True),
    Column("name", Text), Column("mobile", Text), Column("status", String(16)), Column("intent_level", String(2)),
    Column("interested_model", Text), Column("salesperson", Text), Column("lead_source", Text),
    Column("created_at", String(40)), Column("modified_at", String(40), nullable=False),
    Column("data", Text, nullable=False, comment="the CRM's JSON, latest version"),
    Column("pulled_at", DateTime, nullable=False),
)

crm_contact = Table(
    "crm_contact", metadata,
    Column("external_id", String(64), primary_key=True),
    Column("crm_id", String(64)),
    Column("modified_at", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Column("pulled_at", DateTime, nullable=False),
)

crm_activity = Table(
    "crm_activity", metadata,
    Column("activity_id", String(64), primary_key=True),
    Column("type", String(24), nullable=False),            # RETURN_VISIT_CALL, SURVEY, COMPLAINT
    Column("contact_external_id", String(64), index=True),
    Column("related_document", Text),
    Column("occurred_at", String(40)), Column("modified_at", String(40), nullable=False),
    Column("outcome", String(16)), Column("survey_type", String(8)),
    Column("answers", Text, comment="JSON"), Column("complaint", Text, comment="JSON"),
    Column("pulled_at", DateTime, nullable=False),
)

CRM_DELETE_QUEUED = PushStatus.TO_DELETE.value   # crm_push: the master left the store (retention); its contact goes next push

crm_push = Table(
    "crm_push", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),             # CONTACT, TASK
    Column("external_id", String(64), nullable=False),
    Column("content_hash", String(64), comment="what the CRM holds; NULL = never accepted"),
    Column("status", String(10), nullable=False),          # PushStatus
    Column("result", String(10), comment="created, updated, unchanged, error"),
    Column("crm_id", String(64)),
    Column("error_code", String(32)), Column("message", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("pushed_at", DateTime, nullable=False),
    Column("scrubbed", Integer, comment="phone, ID and e-mail patterns removed from its free text (PIPL minimisation)"),
    UniqueConstraint("kind", "external_id"),
    _check_in("ck_crm_push_status", "status", PushStatus),
)

crm_quarantine = Table(
    "crm_quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed", String(16), nullable=False, comment="leads, contacts, activities"),
    Column("item_key", String(64), nullable=False, comment="the record's id, or a hash of it when it has none"),
    Column("reason_code", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False, comment="the CRM's JSON as received"),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    UniqueConstraint("feed", "item_key", "reason_code"),
)

followup_task = Table(
    "followup_task", metadata,
    Column("external_id", String(80), primary_key=True, comment="stable: re-running a day makes no second task"),
    Column("type", String(32), nullable=False),
    Column("master_id", String(16), nullable=False, index=True),
    Column("record_id", Integer, comment="customer_record the task derives from; re-points it after merges/splits"),
    Column("due_date", Date, nullable=False),
    Column("subject", Text),
    Column("related_document", Text),
    Column("assignee", Text),
    Column("status", String(10), nullable=False),          # TaskStatus
    Column("overdue", Boolean, nullable=False, default=False),
    Column("marketing", Boolean, nullable=False, default=False),
    Column("created_for", Date, nullable=False, comment="the day whose run created it"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    _check_in("ck_followup_task_status", "status", TaskStatus),
)


# ------------------------------------------------------------------------------------ OEM portal

warranty_claim_job = Table(
    "warranty_claim_job", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dealer_code", String(32), nullable=False),
    Column("claim_no", String(64), nullable=False),
    Column("ro_number", String(64), nullable=False),
    Column("vin", String(17)),
    Column("master_id", String(16), comment="the only customer data a claim carries: a reference"),
    Column("local_status", String(20), nullable=False,
           comment="technical: DRAFT, VALIDATION_FAILED, QUEUED, SUBMITTING, SUBMIT_FAILED, SUBMITTED"),
    Column("oem_status", String(20), comment="business, from the portal: SUBMITTED ... SETTLED"),
    Column("oem_status_raw", Text),
    Column("submission_count", Integer, nullable=False, default=1),
    Column("oem_claim_number", String(64)),
    Column("claimed_amount", Numeric(14, 2)),
    Column("to_be_paid", Numeric(14, 2)),
    Column("settlement_date", Date),
    Column("payment_cycle", String(32)),
    Column("ro_completed", Date),
    Column("deadline", Date, comment="the last day the OEM accepts this claim"),
    Column("errors", Text, comment="JSON: the latest validation errors (local or the portal's 422)"),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("dealer_code", "claim_no"),
    _check_in("ck_warranty_claim_job_local_status", "local_status", JobStatus),
)

claim_submission = Table(
    "claim_submission", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dealer_code", String(32), nullable=False),
    Column("claim_no", String(64), nullable=False),
    Column("submission_count", Integer, nullable=False),
    Column("revision", Integer, nullable=False, default=0,
           comment="a payload corrected after the portal's 422 needs a new key: revision + 1"),
    Column("bodid", String(36), nullable=False, unique=True, comment="also the Idempotency-Key; derived, stored before sending"),
    Column("content_hash", String(64), nullable=False, comment="the payload without its envelope"),
    Column("payload", Text, nullable=False, comment="the exact JSON sent (resent byte for byte)"),
    Column("state", String(12), nullable=False, comment="PREPARED, SENDING, ACKED, REJECTED, FAILED"),
    Column("http_status", Integer),
    Column("answer", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("prepared_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("acked_at", DateTime),
    Column("scrubbed", Integer, comment="phone, ID and e-mail patterns removed from its free text (PIPL minimisation)"),
    Column("claimed_by", String(128), comment="host:pid of the sending process"),
    UniqueConstraint("dealer_code", "claim_no", "submission_count", "revision"),
    _check_in("ck_claim_submission_state", "state", SubmissionState),
)

claim_status_snapshot = Table(
    "claim_status_snapshot", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dealer_code", String(32), nullable=False),
    Column("claim_no", String(64), nullable=False, index=True),
    Column("submission_count", Integer, nullable=False),
    Column("status_code", String(20), nullable=False, comment="mapped code"),
    Column("status_raw", Text, comment="the portal's own word, kept as sent"),
    Column("to_be_paid", Numeric(14, 2)),
    Column("body", Text, nullable=False, comment="the whole reconciliation (reasons, payment cycle, settlement)"),
    Column("updated_at", String(40), nullable=False, comment="the portal's UpdatedDateTime"),
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("dealer_code", "claim_no", "submission_count", "status_code", "updated_at"),
)

oem_cursor = Table(
    "oem_cursor", metadata,
    Column("feed", String(32), primary_key=True),
    Column("cursor", Text),
    Column("watermark", String(40)),
    Column("updated_at", DateTime, nullable=False),
)

survey_push = Table(
    "survey_push", metadata,
    Column("document_id", String(64), primary_key=True),
    Column("master_id", String(16)),
    Column("bodid", String(36), nullable=False),
    Column("payload", Text),
    Column("status", String(10), nullable=False, comment="SENT, SKIPPED (no consent), REJECTED"),
    Column("reason", Text),
    Column("answer", Text),
    Column("updated_at", DateTime, nullable=False),
    Column("scrubbed", Integer, comment="phone, ID and e-mail patterns removed from its free text (PIPL minimisation)"),
    _check_in("ck_survey_push_status", "status", SurveyPushStatus),
)

report_upload = Table(
    "report_upload", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_type", String(16), nullable=False),
    Column("period", String(10), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False, index=True),
    Column("bodid", String(36), nullable=False),
    Column("status", String(10), nullable=False, comment="PREPARED, UPLOADED"),
    Column("receipt", Text),
    Column("sftp", String(10), comment="SFTP CSIMONTH inbox: QUEUED, SENT, or NULL when not configured"),
    Column("created_at", DateTime, nullable=False),
    Column("uploaded_at", DateTime),
    UniqueConstraint("report_type", "period", "sha256"),
    _check_in("ck_report_upload_status", "status", UploadStatus),
    _check_in("ck_report_upload_sftp", "sftp", OutboxStatus),   # NULL passes: NULL IN (...) is not false
)


purge_run = Table(
    "purge_run", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("policy", Text, nullable=False, comment="JSON: days kept per kind of record"),
    Column("result", Text, nullable=False, comment="JSON: rows deleted per table"),
)


store_lock = Table(
    "store_lock", metadata,
    Column("name", String(64), primary_key=True, comment="the job: resolve"),
    Column("holder", String(128), nullable=False, comment="host:pid of the process running it"),
    Column("since", DateTime, nullable=False),
    comment="one process at a time per job (store/locks.py); on SQLite the row is the lock, on PostgreSQL "
            "an advisory lock is, and the row says who holds it",
)
