"""The review queue as a workbook (issue #18 item 5): one row per pair of masters with the deciding
fields side by side, masked; filled in with openpyxl and imported back through the audited review path;
a second import changes nothing; a row whose masters changed since the export is reported, not applied;
a wrong cell is named by file, row and column and nothing is applied."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, insert, select
from stdnum.cn import ric

from dealersync.cli.main import main
from dealersync.errors import BadSourceData
from dealersync.resolution import service
from dealersync.resolution.review import reason_zh
from dealersync.services import master_review
from dealersync.services.ingest import ingest_file
from dealersync.services.sample import generate
from dealersync.store.tables import FEED_TABLES, customer_record, master_audit, match_decision, match_link

from .pii_scan import find_pii

ID_BASE = "44010619850615123"
ID = ID_BASE + ric.calc_check_digit(ID_BASE + "0")         # a valid resident ID: born 1985-06-15, male
PEOPLE = [("周建华", "周先生", "13700000020"), ("吴建国", "吴先生", "13700000040"), ("郑建平", "郑先生", "13700000050")]


def _sale(c, sale_no, name, mobile, vin, id_number=None, plate=None):
    t = FEED_TABLES["vehicle_sales"]
    c.execute(insert(t).values(sale_no=sale_no, customer_name=name, mobile=mobile, id_number=id_number, vin=vin,
                               order_date=datetime(2026, 11, 10).date(), dealer_code="GZ0012", source_file="test",
                               source_row=1, load_id=0, ingested_at=datetime.now()))


@pytest.fixture
def store(engine, tmp_path):
    files = generate(tmp_path / "drop", rows=30, seed=5)
    for feed in ("customers", "vehicles", "vehicle_sales", "repair_orders"):
        ingest_file(engine, files[feed])
    with engine.begin() as c:
        service.resolve(c)
        vins = ["LSVAG2180E2100150", "1M8GDM9AXKP042788", "LFV2A21K7G4011180", "WBA3A5C50CF256985",
                "JTDKB20U293477361", "1HGCM82633A004352"]
        for k, (full, placeholder, mobile) in enumerate(PEOPLE):
            _sale(c, f"S80000{k}1", full, mobile, vins[2 * k], id_number=ID if k == 0 else None)
            _sale(c, f"S80000{k}2", placeholder, mobile, vins[2 * k + 1])
        service.resolve(c)
    return engine


def _masters(c):
    return {sid: m for sid, m in c.execute(select(customer_record.c.source_id, customer_record.c.master_id)
                                           .where(customer_record.c.source == "SALES"))}


def _fill(path, decisions: dict[str, str], out=None):
    """Fill the 决定 column: ``decisions`` by the A-side name; returns the path written."""
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    head = next(r for r in range(1, 10) if ws.cell(r, 1).value == master_review.ID_COL)
    names = [c.value for c in ws[head]]
    col_dec, col_name_a, col_name_b = (names.index(x) + 1 for x in (master_review.DECISION_COL, "姓名 Name A",
                                                                    "姓名 Name B"))
    for r in range(head + 1, ws.max_row + 1):
        both = f"{ws.cell(r, col_name_a).value}|{ws.cell(r, col_name_b).value}"
        for who, word in decisions.items():
            if who in both:
                ws.cell(r, col_dec).value = word
    wb.save(out or path)
    return out or path


def _ours(entries):
    mobiles = {m for _, _, m in PEOPLE}
    return [e for e in entries if {x for s in (e["a"], e["b"]) for x in s["mobiles"]} & mobiles]


def test_export_shows_each_pair_of_masters_once_side_by_side_and_masked(store, tmp_path):
    out = tmp_path / "review.xlsx"
    with store.begin() as c:
        entries = _ours(service_entries(c))
        assert len(entries) == 3                                  # one per pair of masters
        assert master_review.export_review(c, out) >= 3
    data = out.read_bytes()
    text = "".join(zipfile.ZipFile(io.BytesIO(data)).read(n).decode("utf-8", "replace")
                   for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith(".xml"))
    assert not find_pii(text, planted=(ID, *[m for _, _, m in PEOPLE])), "a mobile or ID in clear"
    ws = load_workbook(out).worksheets[0]
    head = next(r for r in range(1, 10) if ws.cell(r, 1).value == master_review.ID_COL)
    names = [c.value for c in ws[head]]
    assert names[:3] == [master_review.ID_COL, "把握 Weight", master_review.DECISION_COL]
    rows = [dict(zip(names, [c.value for c in row])) for row in ws.iter_rows(min_row=head + 1)]
    zhou = next(r for r in rows if "周建华" in f"{r['姓名 Name A']}|{r['姓名 Name B']}")
    side = "A" if "周建华" in zhou["姓名 Name A"] else "B"
    assert zhou[f"身份证 ID {side}"] == "440106********1235"[:14] + ID[-4:]
    assert zhou[f"出生日期 Birth {side}"].date().isoformat() == "1985-06-15" and zhou[f"性别 Gender {side}"] == "男"
    assert zhou["手机 Mobiles A"] == zhou["手机 Mobiles B"] == "137****0020"
    assert zhou["来源 Sources A"] == "销售 1" and zhou["最近出现 Last seen A"].date().isoformat() == "2026-11-10"
    assert "手机号相同" in zhou["未合并原因 Why not merged"] and zhou["未合并原因 Why not merged"].endswith("。")
    # the decision column is a drop-down of the three words; header frozen, printed A4 landscape
    dv = ws.data_validations.dataValidation
    assert len(dv) == 1 and dv[0].formula1 == '"合并,不合并,跳过"'
    assert ws.freeze_panes == f"A{head + 1}" and ws.page_setup.orientation == "landscape"
    # --unmasked: the convention of `master show`
    with store.begin() as c:
        master_review.export_review(c, tmp_path / "clear.xlsx", unmasked=True)
    clear = load_workbook(tmp_path / "clear.xlsx").worksheets[0]
    assert any(cell.value == "13700000020" for row in clear.iter_rows() for cell in row)


def service_entries(c):
    from dealersync.resolution.review import review_entries
    return review_entries(c)


def test_import_applies_decisions_once_audited_and_reports_a_changed_pair(store, tmp_path):
    out = tmp_path / "review.xlsx"
    with store.begin() as c:
        master_review.export_review(c, out)
        before = _masters(c)
        audits = c.execute(select(func.count()).select_from(master_audit)).scalar_one()
        # meanwhile, 郑先生's master is merged into another one by hand: that row is stale
        other = c.execute(select(customer_record.c.id).where(customer_record.c.source == "DMS")).scalar()
        service.force_link(c, [str(other), "SALES:GZ0012:S8000022"], reason="another officer")
    _fill(out, {"周建华": "合并", "吴建国": "不合并", "郑建平": "合并"})
    with store.begin() as c:
        got = {o.review_id: o for o in master_review.import_review(c, out, actor="officer")}
        x = _masters(c)
    results = sorted(o.result for o in got.values() if o.decision != "SKIP")
    assert results == ["applied", "applied", "stale"]
    stale = next(o for o in got.values() if o.result == "stale")
    assert "重新导出" in stale.note
    assert x["GZ0012:S8000001"] == x["GZ0012:S8000002"]                 # merged
    assert x["GZ0012:S8000011"] != x["GZ0012:S8000012"]                 # kept apart
    assert x["GZ0012:S8000021"] != x["GZ0012:S8000022"]                 # stale: not applied
    with store.begin() as c:
        acts = [a for (a,) in c.execute(select(master_audit.c.action).order_by(master_audit.c.id))]
        new = acts[audits:]
        assert new.count("FORCE_LINK") == 2 and "MERGE" in new and new.count("FORCE_SPLIT") == 1  # 1 link: by hand
        reasons = [r for (r,) in c.execute(select(match_decision.c.reason).where(match_decision.c.decided_by == "officer"))]
        assert len(reasons) == 2 and all("review.xlsx" in r for r in reasons)
        statuses = dict(c.execute(select(match_link.c.id, match_link.c.status)).all())
        assert sorted(statuses[i] for i, o in got.items() if o.result == "applied") == ["LINKED", "SPLIT"]
        n_dec = c.execute(select(func.count()).select_from(match_decision)).scalar_one()
        n_aud = c.execute(select(func.count()).select_from(master_audit)).scalar_one()
    # the same file again: nothing more happens
    with store.begin() as c:
        again = master_review.import_review(c, out, actor="officer")
        assert sorted(o.result for o in again if o.decision != "SKIP") == ["stale", "unchanged", "unchanged"]
        assert c.execute(select(func.count()).select_from(match_decision)).scalar_one() == n_dec
        assert c.execute(select(func.count()).select_from(master_audit)).scalar_one() == n_aud
        assert _masters(c) == x
    # and the pair kept apart is not offered again
    with store.begin() as c:
        left = _ours(service_entries(c))
        assert not any("吴建国" in e["a"]["names"] + e["b"]["names"] for e in left)
    assert before != x


def test_a_wrong_cell_is_named_and_nothing_is_applied(store, tmp_path):
    out = tmp_path / "review.xlsx"
    with store.begin() as c:
        master_review.export_review(c, out)
    _fill(out, {"周建华": "合并", "吴建国": "maybe"})
    with store.begin() as c:
        x = _masters(c)
        with pytest.raises(BadSourceData) as e:
            master_review.import_review(c, out, actor="officer")
        assert _masters(c) == x
    msg = str(e.value)
    assert "review.xlsx" in msg and "row " in msg and "column C (决定 Decision)" in msg and "'maybe'" in msg


def test_cli_export_and_import(store, tmp_path, monkeypatch, capsys):
    url = store.url.render_as_string(hide_password=False)
    if not url.startswith("sqlite"):
        return   # the CLI reads one store: the SQLite run covers it
    monkeypatch.setenv("DEALERSYNC_DATABASE_URL", url)
    monkeypatch.setenv("DEALERSYNC_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "q.xlsx"
    assert main(["master", "review", "--xlsx", str(out)]) == 0
    _fill(out, {"周建华": "合并"})
    assert main(["master", "review", "--import", str(out), "--actor", "officer"]) == 0
    err = capsys.readouterr()
    assert "applied 1" in err.err and "13700000020" not in err.out + err.err
    assert main(["master", "review", "--import", str(out), "--actor", "officer"]) == 0
    assert "unchanged 1" in capsys.readouterr().err


def test_reason_is_one_chinese_sentence():
    assert reason_zh({"name": "surname", "mobile": "own", "vin": "else"}) == \
        "手机号相同，但一方没有可用的姓名（空白或“先生/女士”之类的称呼），仅凭这些标识不足以认定为同一人，故未自动合并。"
    assert reason_zh({"name": "close", "mobile": "agree", "gender": "else"}).endswith("且性别不一致，故未自动合并。")
    assert reason_zh({}).startswith("没有相同的强标识")


def test_a_decision_closes_every_open_pair_of_the_same_two_masters(store):
    """A master gaining a record after the first run gets a second review pair with the same other
    master; deciding the entry decides the pair of masters, so the queue does not offer it again."""
    with store.begin() as c:
        _sale(c, "S8000003", "周先生", "13700000020", "1M8GDM9AXKP042788")   # joins 周先生's master
        service.resolve(c)
        x = _masters(c)
        assert x["GZ0012:S8000003"] == x["GZ0012:S8000002"]
        pair = {x["GZ0012:S8000001"], x["GZ0012:S8000002"]}
        open_ = [r for r in service.review_queue(c, limit=None) if {r["a_master"], r["b_master"]} == pair]
        assert len(open_) == 2                      # two pairs of records, one pair of masters
        service.decide_review(c, open_[0]["id"], "separate", actor="officer")
        assert not [r for r in service.review_queue(c, limit=None) if {r["a_master"], r["b_master"]} == pair]
        statuses = dict(c.execute(select(match_link.c.id, match_link.c.status)
                                  .where(match_link.c.id.in_([r["id"] for r in open_]))).all())
        assert set(statuses.values()) == {"SPLIT"}
