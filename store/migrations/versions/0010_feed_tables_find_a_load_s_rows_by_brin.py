"""feed tables find a load's rows through a BRIN index on PostgreSQL

Load ids only grow, and a load's rows are appended together, so a BRIN index on ``load_id`` (block
ranges with their min and max) finds them as well as the b-tree did for purges, same-day
replacement and the mileage rule, while a million-row COPY no longer maintains a b-tree entry per
row. SQLite has no BRIN and keeps its b-tree.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 03:00:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FEED_TABLES = ["dms_customer", "dms_vehicle", "dms_vehicle_sale", "dms_repair_order", "dms_repair_order_line",
               "dms_warranty_claim", "oem_labor_op", "oem_recall", "oem_delivery", "oem_claim_result"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in FEED_TABLES:
        op.drop_index(f"ix_{table}_load_id", table_name=table)
        op.create_index(f"ix_{table}_load_id", table, ["load_id"], postgresql_using="brin",
                        postgresql_with={"autosummarize": "on"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in FEED_TABLES:
        op.drop_index(f"ix_{table}_load_id", table_name=table)
        op.create_index(f"ix_{table}_load_id", table, ["load_id"])
