"""status words of seven more tables as check constraints (issue #14 item 4)

And report_upload.sftp, the SFTP outbox copy's word (OutboxStatus: QUEUED, SENT; NULL passes).

The words each column may hold, as the code writes them (store.tables: TransferStatus, MasterStatus,
LinkStatus, PushStatus, TaskStatus, SurveyPushStatus, UploadStatus). The lists are frozen here, not
imported: a migration says what the schema was at its revision.

A store holding a word outside its list is not migrated: the upgrade stops before changing anything and
names the table, the column and the words (counts only; the rows are the operator's to look at).

Revision ID: 0012e
Revises: 0012y
Create Date: 2026-11-30 10:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012e'
down_revision = '0012y'
branch_labels = None
depends_on = None

WORDS = {
    'sftp_transfer': ('DONE',),
    'master_customer': ('ACTIVE', 'MERGED', 'SPLIT', 'ERASED'),
    'match_link': ('OPEN', 'LINKED', 'SPLIT', 'DISMISSED'),
    'crm_push': ('SENT', 'ERROR', 'TO_DELETE', 'DELETED'),
    'followup_task': ('OPEN', 'DONE', 'CANCELLED'),
    'survey_push': ('PREPARED', 'SENT', 'SKIPPED', 'REJECTED'),
    'report_upload': ('PREPARED', 'NO_PORTAL', 'UPLOADED', 'REJECTED'),
}
SFTP_WORDS = ('QUEUED', 'SENT')   # report_upload.sftp, the SFTP outbox copy (OutboxStatus); NULL: no outbox


def _in(column: str, words) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def upgrade() -> None:
    conn = op.get_bind()
    unknown = []
    for table, words in WORDS.items():
        t = sa.table(table, sa.column('status'))
        rows = conn.execute(sa.select(t.c.status, sa.func.count()).where(t.c.status.not_in(words))
                            .group_by(t.c.status)).all()
        unknown += [f"{table}.status = {s!r}: {n} rows" for s, n in rows]
    t = sa.table('report_upload', sa.column('sftp'))
    rows = conn.execute(sa.select(t.c.sftp, sa.func.count()).where(t.c.sftp.not_in(SFTP_WORDS))
                        .group_by(t.c.sftp)).all()
    unknown += [f"report_upload.sftp = {s!r}: {n} rows" for s, n in rows]
    if unknown:
        raise RuntimeError("status words this revision does not know; nothing was changed:\n  "
                           + "\n  ".join(unknown))
    for table, words in WORDS.items():
        with op.batch_alter_table(table, schema=None) as b:
            b.create_check_constraint(f'ck_{table}_status', _in('status', words))
            if table == 'report_upload':
                b.create_check_constraint('ck_report_upload_sftp', _in('sftp', SFTP_WORDS))


def downgrade() -> None:
    for table in reversed(list(WORDS)):
        with op.batch_alter_table(table, schema=None) as b:
            if table == 'report_upload':
                b.drop_constraint('ck_report_upload_sftp', type_='check')
            b.drop_constraint(f'ck_{table}_status', type_='check')
