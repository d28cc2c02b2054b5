"""feed tables keyed on their natural key

The canonical feed tables lose their surrogate ``id``: nothing refers to it, and it cost every bulk
load a sequence call and a second unique index per row. Their primary key is now the natural key per
dealer that the upsert already used (it was a unique constraint).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 01:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FEED_KEYS = {
    "dms_customer": ["customer_id"],
    "dms_vehicle": ["vin"],
    "dms_vehicle_sale": ["sale_no"],
    "dms_repair_order": ["ro_number"],
    "dms_repair_order_line": ["ro_number", "line_no"],
    "dms_warranty_claim": ["claim_no"],
    "oem_labor_op": ["code", "valid_from"],
    "oem_recall": ["campaign_code", "vin"],
    "oem_delivery": ["vin"],
    "oem_claim_result": ["claim_no"],
}


def upgrade() -> None:
    for table, key in FEED_KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_dealer_code_{'_'.join(key)}", type_="unique")
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.drop_column("id")
            batch_op.create_primary_key(f"pk_{table}", ["dealer_code", *key])


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table, key in FEED_KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_unique_constraint(f"uq_{table}_dealer_code_{'_'.join(key)}", ["dealer_code", *key])
        if pg:
            op.execute(f"ALTER TABLE {table} ADD COLUMN id SERIAL, ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
        else:   # an INTEGER primary key is SQLite's rowid: the rows copied by the batch get their ids
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(sa.Column("id", sa.Integer(), nullable=False))
                batch_op.create_primary_key(f"pk_{table}", ["id"])
