"""CRM records outside the contract are quarantined; outbound free text records its scrubbing

Issue #15 "Contain the damage": a CRM record outside the contract (a lead without ``modifiedAt``) is
kept in ``crm_quarantine`` with a reason and the pull goes on. Issue #16 item 2: free text leaving for
the portal or the CRM is scrubbed of phone, ID and e-mail patterns; ``scrubbed`` counts the patterns
removed (no personal data) on each claim submission, survey push and CRM push.

Revision ID: 0011h
Revises: 0010
Create Date: 2026-11-30 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011h'
down_revision = '0010'
branch_labels = None
depends_on = None

SCRUB = "phone, ID and e-mail patterns removed from its free text (PIPL minimisation)"


def upgrade() -> None:
    op.create_table('crm_quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('feed', sa.String(length=16), nullable=False, comment='leads, contacts, activities'),
    sa.Column('item_key', sa.String(length=64), nullable=False, comment="the record's id, or a hash of it when it has none"),
    sa.Column('reason_code', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False, comment="the CRM's JSON as received"),
    sa.Column('first_seen', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_quarantine')),
    sa.UniqueConstraint('feed', 'item_key', 'reason_code', name=op.f('uq_crm_quarantine_feed_item_key_reason_code'))
    )
    for table in ('claim_submission', 'survey_push', 'crm_push'):
        with op.batch_alter_table(table) as b:
            b.add_column(sa.Column('scrubbed', sa.Integer(), nullable=True, comment=SCRUB))


def downgrade() -> None:
    for table in ('claim_submission', 'survey_push', 'crm_push'):
        with op.batch_alter_table(table) as b:
            b.drop_column('scrubbed')
    op.drop_table('crm_quarantine')
