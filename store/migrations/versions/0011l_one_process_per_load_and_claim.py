"""one process per load and per claim submission; a ledger that tells the truth

- ``ingest_file.claim_key`` (unique while a load is under way: a digest of the file's path),
  ``claimed_by`` (host:pid of the loading process) and ``claimed_at``: a load is claimed by exactly one
  process; a dead process's claim is taken over (issue #15).
- ``ingest_file.sha256`` is the hash of the bytes actually read: empty until the read ends, no longer
  unique (``--force`` re-reads a file into a new load; the old one is REPLACED).
- ``ingest_file.export_seq``: the export's sequence number (``_2``), which decides same-day replacement.
- ``ingest_file.reason``: the reason code of a rejection or failure (a name rejection is keyed on the name).
- ``claim_submission.claimed_by``: the process sending it.
- Status words as check constraints (store.ledger.LoadStatus, store.claims.SubmissionState, JobStatus).

Revision ID: 0011l
Revises: 0011h
Create Date: 2026-11-30 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011l'
down_revision = '0011h'
branch_labels = None
depends_on = None

LOAD_STATUSES = ("LOADING", "LOADED", "REJECTED", "REPLACED", "FAILED")
SUBMISSION_STATES = ("PREPARED", "SENDING", "ACKED", "REJECTED", "FAILED")
JOB_STATUSES = ("DRAFT", "VALIDATION_FAILED", "QUEUED", "SUBMITTING", "SUBMIT_FAILED", "SUBMITTED")


def _in(column: str, words) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def upgrade() -> None:
    with op.batch_alter_table('ingest_file', schema=None) as b:
        b.add_column(sa.Column('claim_key', sa.String(64), nullable=True,
                               comment='digest of the path while a load is under way; unique: one process per load'))
        b.add_column(sa.Column('claimed_by', sa.String(128), nullable=True, comment='host:pid of the loading process'))
        b.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('export_seq', sa.Integer(), nullable=True,
                               comment="the export's sequence number of the day (_2); decides replacement"))
        b.add_column(sa.Column('reason', sa.String(32), nullable=True, comment='reason code of a rejection or failure'))
        b.drop_constraint('uq_ingest_file_sha256', type_='unique')
        b.alter_column('sha256', existing_type=sa.String(64), nullable=True)
        b.create_index('ix_ingest_file_sha256', ['sha256'], unique=False)
        b.create_index('ix_ingest_file_path', ['path'], unique=False)
        b.create_unique_constraint('uq_ingest_file_claim_key', ['claim_key'])
        b.create_check_constraint('ck_ingest_file_status', _in('status', LOAD_STATUSES))
    with op.batch_alter_table('claim_submission', schema=None) as b:
        b.add_column(sa.Column('claimed_by', sa.String(128), nullable=True, comment='host:pid of the sending process'))
        b.create_check_constraint('ck_claim_submission_state', _in('state', SUBMISSION_STATES))
    with op.batch_alter_table('warranty_claim_job', schema=None) as b:
        b.create_check_constraint('ck_warranty_claim_job_local_status', _in('local_status', JOB_STATUSES))


def downgrade() -> None:
    with op.batch_alter_table('warranty_claim_job', schema=None) as b:
        b.drop_constraint('ck_warranty_claim_job_local_status', type_='check')
    with op.batch_alter_table('claim_submission', schema=None) as b:
        b.drop_constraint('ck_claim_submission_state', type_='check')
        b.drop_column('claimed_by')
    with op.batch_alter_table('ingest_file', schema=None) as b:
        b.drop_constraint('ck_ingest_file_status', type_='check')
        b.drop_constraint('uq_ingest_file_claim_key', type_='unique')
        b.drop_index('ix_ingest_file_path')
        b.drop_index('ix_ingest_file_sha256')
        b.alter_column('sha256', existing_type=sa.String(64), nullable=False)
        b.create_unique_constraint('uq_ingest_file_sha256', ['sha256'])
        for c in ('reason', 'export_seq', 'claimed_at', 'claimed_by', 'claim_key'):
            b.drop_column(c)
