"""Status words are enums with check constraints (issue #14 item 4): on SQLite and PostgreSQL the store
refuses a word its enum does not hold, in every status column that has one; every check constraint
declared in store/tables.py is in a store the migrations made; a store already holding an unknown word
is not migrated (migration 0012e names the word and changes nothing)."""
from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from dealersync.store import tables as t
from dealersync.store.db import upgrade

# (table, status column, its enum): every status column of the store
CHECKED = [(t.ingest_file, "status", t.LoadStatus), (t.claim_submission, "state", t.SubmissionState),
           (t.warranty_claim_job, "local_status", t.JobStatus), (t.sftp_transfer, "status", t.TransferStatus),
           (t.master_customer, "status", t.MasterStatus), (t.match_link, "status", t.LinkStatus),
           (t.crm_push, "status", t.PushStatus), (t.followup_task, "status", t.TaskStatus),
           (t.survey_push, "status", t.SurveyPushStatus), (t.report_upload, "status", t.UploadStatus),
           (t.report_upload, "sftp", t.OutboxStatus)]


def _row(table: sa.Table, column: str, word: str, i: int = 0) -> dict:
    """A row with only its required columns filled, ``word`` in ``column``; ``i`` makes its keys distinct
    (so that a unique constraint never answers in place of the check)."""
    row = {}
    for c in table.columns:
        if c.nullable or c.name == column or (c.primary_key and isinstance(c.type, sa.Integer)):
            continue
        ty = c.type
        words = [e for tb, col, e in CHECKED if tb is table and col == c.name]   # another checked column
        row[c.name] = (next(iter(words[0])).value if words else False if isinstance(ty, sa.Boolean)
                       else datetime(2026, 11, 30, 9, 0) if isinstance(ty, sa.DateTime) else date(2026, 11, 30) if isinstance(ty, sa.Date)
                       else i + 1 if isinstance(ty, (sa.Integer, sa.Numeric)) else f"x{i}")
    return {**row, column: word}


@pytest.mark.parametrize("table,column,enum", CHECKED, ids=[f"{x[0].name}.{x[1]}" for x in CHECKED])
def test_an_unknown_status_word_is_refused(engine, table, column, enum):
    with engine.begin() as c:     # each word of the enum is accepted...
        for i, w in enumerate(enum):
            c.execute(sa.insert(table).values(_row(table, column, w.value, i)))
    # ...a word it does not hold is not, nor one of its words in lower case
    for word in ("BOGUS", next(iter(enum)).value.lower()):
        with pytest.raises(IntegrityError) as e, engine.begin() as c:
            c.execute(sa.insert(table).values(_row(table, column, word, len(enum))))
        assert f"ck_{table.name}_{column}" in str(e.value), str(e.value)[:500]
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(table)).scalar() == len(enum)


def test_every_check_constraint_of_the_tables_is_in_the_migrated_store(engine):
    declared = {(tb.name, ck.name) for tb in t.metadata.tables.values()
                for ck in tb.constraints if isinstance(ck, sa.CheckConstraint)}
    assert {(tb.name, f"ck_{tb.name}_{col}") for tb, col, _ in CHECKED} <= declared
    insp = sa.inspect(engine)
    found = {(name, ck["name"]) for name in {n for n, _ in declared} for ck in insp.get_check_constraints(name)}
    assert declared <= found, sorted(declared - found)


def test_the_migration_names_an_unknown_word_and_changes_nothing(engine):
    """A store at 0012y holding a word its enum lacks (here by downgrading one: the downgrade drops the
    constraints again) is not migrated: the upgrade names the word and leaves the store at 0012y."""
    from alembic import command

    from dealersync.store.db import alembic_config
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as c:
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0012y")
    assert sa.inspect(engine).get_check_constraints("followup_task") == []
    with engine.begin() as c:
        c.execute(sa.insert(t.followup_task).values(_row(t.followup_task, "status", "PENDING")))
    with pytest.raises(RuntimeError, match=r"followup_task\.status = 'PENDING': 1 rows"):
        upgrade(engine)
    with engine.connect() as c:
        assert c.execute(sa.text("select version_num from alembic_version")).scalar_one() == "0012y"
    assert sa.inspect(engine).get_check_constraints("followup_task") == []
    with engine.begin() as c:
        c.execute(sa.delete(t.followup_task))
    upgrade(engine)
    assert [ck["name"] for ck in sa.inspect(engine).get_check_constraints("followup_task")] == ["ck_followup_task_status"]
