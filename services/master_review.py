"""The master-record review queue as a workbook a data officer fills in (issue #18 item 5):
``master review --xlsx OUT`` writes one row per pair of masters the model was not sure of, the
deciding fields of both side by side (name, resident ID masked with the birth date and gender it
gives, mobiles masked, VINs, plates, addresses, sources, last seen), why they were not merged in one
sentence, and a 决定 column with a drop-down 合并 / 不合并 / 跳过; ``master review --import IN``
applies the decisions through the same audited path as ``master review --decide``.

Importing is all or nothing for the file's own mistakes (an unknown decision, a missing id: every
such cell is named by file, row and column and nothing is applied) and once per decision: a pair
already decided the same way is left alone, a pair whose masters changed since the export (merged
or split meanwhile) is reported and not applied.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import Connection

from dealersync.errors import BadSourceData
from dealersync.privacy import mask_text
from dealersync.resolution.review import Outcome, apply_decisions, review_entries
from dealersync.services.xlsx import Col, Sheet, write_workbook

DECIDE = {"合并": "LINK", "不合并": "SEPARATE", "跳过": "SKIP"}
GENDER_ZH = {"M": "男", "F": "女"}
SOURCE_ZH = {"DMS": "DMS 客户", "SALES": "销售", "SERVICE": "维修", "CRM": "CRM 线索"}
SHEET = "待确认客户 Review"
ID_COL, A_COL, B_COL, DECISION_COL, NOTE_COL = "编号 Review ID", "主档 A Master A", "主档 B Master B", \
    "决定 Decision", "备注 Note"
FIELDS = [("姓名 Name", "names"), ("身份证 ID", "id_number"), ("出生日期 Birth", "birth_date"),
          ("性别 Gender", "gender"), ("手机 Mobiles", "mobiles"), ("车架号 VINs", "vins"), ("车牌 Plates", "plates"),
          ("地址 Addresses", "addresses"), ("来源 Sources", "sources"), ("最近出现 Last seen", "last_seen")]


def _cell(key: str, side: dict, unmasked: bool):
    v = side.get(key)
    if key == "id_number":
        return v if unmasked or not v else mask_text(v)
    if key == "mobiles":
        return "、".join(v if unmasked else mask_text(v) for v in v)
    if key in ("names", "vins", "plates"):
        return "、".join(v)
    if key == "addresses":
        return "\n".join(v)
    if key == "gender":
        return GENDER_ZH.get(v, v)
    if key == "sources":
        return "、".join(f"{SOURCE_ZH.get(s, s)} {n}" for s, n in sorted(v.items()))
    if key == "last_seen":
        return v.date() if isinstance(v, datetime) else v
    return v


def review_sheet(entries: list[dict], unmasked: bool = False) -> Sheet:
    cols = [Col(ID_COL, "int"), Col("把握 Weight", "decimal"), Col(DECISION_COL, choices=list(DECIDE)),
            Col(NOTE_COL, width=16), Col("未合并原因 Why not merged", width=40), Col(A_COL), Col(B_COL)]
    for head, key in FIELDS:
        kind = "date" if key in ("birth_date", "last_seen") else "text"
        cols += [Col(f"{head} A", kind), Col(f"{head} B", kind)]
    rows = []
    for e in entries:
        row = [e["id"], e["weight"], None, None, e["reason"], e["a"]["master_id"], e["b"]["master_id"]]
        for _, key in FIELDS:
            row += [_cell(key, e["a"], unmasked), _cell(key, e["b"], unmasked)]
        rows.append(row)
    masked = "" if unmasked else "手机号和身份证号已隐去中间位；"
    return Sheet(SHEET, cols, rows, title="客户主档待确认 Master records to review",
                 notes=[f"共 {len(rows)} 对，每行是两个可能为同一客户的主档（A 与 B）。请在“决定”列选择：合并（同一人）、"
                        f"不合并（不同的人，以后也不再合并）或跳过（暂不决定）；可在“备注”写明依据。{masked}"
                        "填好后用 `dealersync master review --import 文件` 导入。"],
                 empty_text="（没有待确认的客户主档）")


def export_review(conn: Connection, out: str | Path, *, unmasked: bool = False, limit: int | None = None) -> int:
    """Write the open review queue to ``out``; returns the number of pairs."""
    entries = review_entries(conn, limit=limit)
    write_workbook(out, [review_sheet(entries, unmasked)], title="客户主档待确认")
    return len(entries)


def read_decisions(path: str | Path) -> list[dict]:
    """The decided rows of a review workbook: ``{"row", "id", "a", "b", "decision", "note"}``. Raises
    ``BadSourceData`` naming file, row and column for every cell it cannot use."""
    path = Path(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same mistake for the officer
        raise BadSourceData(f"not a workbook written by `master review --xlsx`: {type(e).__name__}",
                            file=path.name) from None
    ws = wb[SHEET[:31]] if SHEET[:31] in wb.sheetnames else wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    wb.close()
    head = next((i for i, r in enumerate(rows) if r and str(r[0] or "").strip() == ID_COL), None)
    if head is None:
        raise BadSourceData(f"no header row starting {ID_COL}", file=path.name, column=ws.title)
    names = [str(x or "").strip() for x in rows[head]]
    need = {k: names.index(k) for k in (ID_COL, A_COL, B_COL, DECISION_COL) if k in names}
    for k in (ID_COL, A_COL, B_COL, DECISION_COL):
        if k not in need:
            raise BadSourceData("column missing from the header", file=path.name, row=head + 1, column=k)
    note = names.index(NOTE_COL) if NOTE_COL in names else None
    out, errors = [], []

    def where(n: int, key: str) -> str:
        return f"{path.name}, row {n}, column {get_column_letter(need[key] + 1)} ({key})"

    for i, r in enumerate(rows[head + 1:], start=head + 2):
        cells = list(r) + [None] * (len(names) - len(r))
        word = str(cells[need[DECISION_COL]] or "").strip()
        if not any(c not in (None, "") for c in cells) or (cells[need[ID_COL]] is None and not word):
            continue
        if word and word not in DECIDE:
            errors.append(f"{where(i, DECISION_COL)}: {word!r} is not one of {'/'.join(DECIDE)}")
            continue
        try:
            rid = int(str(cells[need[ID_COL]]).strip().lstrip("'"))
        except ValueError:
            errors.append(f"{where(i, ID_COL)}: not a review id")
            continue
        a, b = (str(cells[need[k]] or "").strip() for k in (A_COL, B_COL))
        if not a or not b:
            errors.append(f"{where(i, A_COL if not a else B_COL)}: the master id is blank")
            continue
        out.append({"row": i, "id": rid, "a": a, "b": b, "decision": DECIDE.get(word, "SKIP"),
                    "note": str(cells[note] or "").strip() if note is not None else ""})
    if errors:
        raise BadSourceData(f"{len(errors)} cell(s) to correct, nothing applied: " + "; ".join(errors[:20]),
                            file=path.name)
    return out


def import_review(conn: Connection, path: str | Path, *, actor: str) -> list[Outcome]:
    """Apply a filled-in review workbook (see the module's doc)."""
    path = Path(path)
    return apply_decisions(conn, read_decisions(path), actor=actor, source=f"审核表 {path.name}")
