"""Who is "dissatisfied" in the CSI monthly report and the RVWEEK report (issue #19): a respondent whose
overall satisfaction is 6 or less on the 10-point scale; the overall satisfaction is the answer to the
overall question (OVERALL) when asked, else the mean of the factor scores, NPS left out. A respondent
with one low factor but a good overall score is not dissatisfied (the old rule, any factor <= 6, counted
59 of 102 demo respondents)."""
from __future__ import annotations

import io
import json
from datetime import datetime

import openpyxl
import pytest
from sqlalchemy import insert, select

from dealersync.resolution import service
from dealersync.services import surveys
from dealersync.services.ingest import ingest_file
from dealersync.services.reports import periods, rvweek
from dealersync.services.sample import generate
from dealersync.store.tables import crm_activity, master_customer

F = surveys.CSI_FACTORS   # SERVICE_INITIATION, SERVICE_ADVISOR, SERVICE_FACILITY, VEHICLE_PICKUP, SERVICE_QUALITY

# survey: (five factor scores, extra answers, overall by hand, dissatisfied by hand, old rule's verdict)
TABLE = {
    "R1": ([3, 9, 9, 9, 9], {"OVERALL": 9}, 9.0, False, True),      # one low factor, good overall answer
    "R2": ([10, 10, 10, 10, 4], {}, 8.8, False, True),              # one low factor, mean 44/5
    "R3": ([6, 6, 6, 6, 6], {}, 6.0, True, True),                   # on the line: dissatisfied
    "R4": ([7, 7, 7, 7, 7], {}, 7.0, False, False),
    "R5": ([9, 9, 9, 9, 9], {"OVERALL": 5}, 5.0, True, True),       # the overall question wins over the factors
    "R6": ([5, 6, 7, 6, 6], {"NPS": 10}, 6.0, True, True),          # 30/5; with NPS counted it would be 6.67
    "R7": ([7, 6, 7, 6, 7], {}, 6.6, False, True),                  # 33/5
}
DISSATISFIED = {k for k, v in TABLE.items() if v[3]}
MEAN = round((9 + 8.8 + 6 + 7 + 5 + 6 + 6.6) / 7, 2)   # 48.4 / 7 = 6.914...


def _answers(scores, extra):
    out = [{"questionId": f"Q{i}", "factorCode": f, "numericValue": s} for i, (f, s) in enumerate(zip(F, scores))]
    return out + [{"questionId": f"X{i}", "factorCode": f, "numericValue": s} for i, (f, s) in enumerate(extra.items())]


@pytest.mark.parametrize("name", list(TABLE))
def test_overall_score_by_hand(name):
    scores, extra, overall, unhappy, old = TABLE[name]
    got = surveys.overall_score([(a["factorCode"], a["numericValue"]) for a in _answers(scores, extra)])
    assert got == overall and surveys.is_dissatisfied(got) is unhappy
    assert (min(scores + list(extra.values())) <= 6) is old   # what the old rule said, for the record


def test_no_numeric_answer_is_no_score():
    assert surveys.overall_score([("VERBATIM", None), ("NPS", 3)]) is None
    assert not surveys.is_dissatisfied(None)


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=30, seed=8)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
        mids = c.execute(select(master_customer.c.master_id).where(master_customer.c.status == "ACTIVE")
                         .order_by(master_customer.c.master_id).limit(len(TABLE))).scalars().all()
        for (name, (scores, extra, *_)), mid in zip(TABLE.items(), mids):
            c.execute(insert(crm_activity).values(
                activity_id=name, type="SURVEY", contact_external_id=mid, occurred_at="2026-10-14T10:00:00+08:00",
                modified_at="2026-10-14T10:00:00+08:00", outcome="REACHED", survey_type="CSI",
                answers=json.dumps(_answers(scores, extra)), pulled_at=datetime(2026, 10, 16)))
    return engine


def test_csi_report_counts_dissatisfied_by_overall_score(store):
    with store.begin() as c:
        fig = surveys.csi_figures(c, "2026-10")
    assert fig["responses"] == 7
    assert {d["survey"] for d in fig["dissatisfied"]} == DISSATISFIED == {"R3", "R5", "R6"}
    assert {d["survey"]: d["overall"] for d in fig["dissatisfied"]} == {"R3": 6.0, "R5": 5.0, "R6": 6.0}
    assert fig["overall"] == MEAN == 6.91
    assert [t["score"] for t in fig["trend"] if t["month"] == "2026-10"] == [MEAN]
    wb = openpyxl.load_workbook(io.BytesIO(surveys.write_csi_xlsx(fig, "GZ0012")))
    ws = wb["不满意客户"]
    text = " ".join(str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert "总体满意度 ≤ 6 分" in text and "OVERALL" in text   # the definition is written on the sheet
    assert "共 3 位" in text


def test_rvweek_uses_the_same_rule(store):
    with store.begin() as c:
        fig = rvweek.figures(c, periods.week("2026-W42"))
    assert fig["totals"]["dissatisfied"] == 3 and fig["totals"]["satisfied"] == 4
    assert {d["survey"] for d in fig["dissatisfied"]} == DISSATISFIED
    r5 = next(d for d in fig["dissatisfied"] if d["survey"] == "R5")
    assert r5["problem"] == "总体 5 分"                     # no factor was low: the overall answer says it


@pytest.mark.parametrize("up,words", [
    ({"status": 201, "reportId": "R-1", "supersedes": None}, "厂家门户已接收，报表编号 R-1。"),
    ({"status": "already uploaded", "reportId": "R-1"}, "厂家门户此前已接收，报表编号 R-1；本次未重复上传。"),
    ({"status": 422}, "厂家门户拒收（HTTP 422），见 dealersync 日志。"),
])
def test_report_csi_says_its_upload_in_words(up, words):
    """``dealersync report csi`` printed its upload answer as a Python dict (found by a fresh review)."""
    from dealersync.cli.oem import csi_upload_words
    assert csi_upload_words(up) == words
