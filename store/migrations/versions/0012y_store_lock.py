"""store_lock: one process at a time per job (``dealersync resolve``)

A row per job under way: who runs it (host:pid) and since when. On SQLite the row is the lock (a dead
holder's row is taken over); on PostgreSQL a session advisory lock is, and the row names its holder for
the message a second process prints while it waits.

Revision ID: 0012y
Revises: 0011r
Create Date: 2026-11-30 08:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012y'
down_revision = '0011r'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'store_lock',
        sa.Column('name', sa.String(length=64), nullable=False, comment='the job: resolve'),
        sa.Column('holder', sa.String(length=128), nullable=False, comment='host:pid of the process running it'),
        sa.Column('since', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_store_lock')),
        comment='one process at a time per job (store/locks.py); on SQLite the row is the lock, on PostgreSQL '
                'an advisory lock is, and the row says who holds it',
    )


def downgrade() -> None:
    op.drop_table('store_lock')
