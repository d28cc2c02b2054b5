"""stock: the daily new-vehicle inventory snapshot (dms-exports.md section 2.7); quarantine rows
remember the replay that took them

One row per dealer, business day and VIN (a full snapshot each day: a VIN missing from a later day
has left the stock), with the usual lineage columns. On PostgreSQL a BRIN index finds a load's rows,
as for the other feed tables.

Revision ID: 0011r
Revises: 0011l
Create Date: 2026-11-30 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011r'
down_revision = '0011l'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dms_stock',
        sa.Column('vin', sa.String(length=64), nullable=False),
        sa.Column('model', sa.Text(), nullable=True),
        sa.Column('trim', sa.Text(), nullable=True),
        sa.Column('color', sa.Text(), nullable=True),
        sa.Column('arrival_date', sa.Date(), nullable=True),
        sa.Column('stock_status', sa.Text(), nullable=True),
        sa.Column('location', sa.Text(), nullable=True),
        sa.Column('certificate_status', sa.Text(), nullable=True),
        sa.Column('purchase_price', sa.Numeric(precision=16, scale=4), nullable=True),
        sa.Column('dealer_code', sa.String(length=32), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('source_file', sa.String(length=255), nullable=False),
        sa.Column('source_row', sa.Integer(), nullable=False),
        sa.Column('load_id', sa.Integer(), nullable=False),
        sa.Column('ingested_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('dealer_code', 'business_date', 'vin', name=op.f('pk_dms_stock')),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_by", sa.Integer(), nullable=True,
                                      comment="the load id of the replay that took the corrected row"))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_dms_stock_load_id", "dms_stock", ["load_id"], postgresql_using="brin",
                        postgresql_with={"autosummarize": "on"})
    else:
        op.create_index("ix_dms_stock_load_id", "dms_stock", ["load_id"])


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("resolved_by")
    op.drop_index("ix_dms_stock_load_id", table_name="dms_stock")
    op.drop_table('dms_stock')
