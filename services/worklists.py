"""Work lists for the information officer (issue #19 item 3): quarantined rows, value issues and claims
that failed validation, each row with file, row, column, raw value (masked where personal unless
``unmasked``) and the reason in Chinese, as rows for the terminal or sheets for :mod:`.xlsx`.

The quarantine workbook has a second sheet per feed, ``修正-<feed>``: the quarantined rows as read,
under their original headers, for the officer to correct; :mod:`.replay` loads it back.
"""
from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy import Connection

from dealersync.privacy import mask_text
from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.profiles import header_key, load_profiles
from dealersync.services.xlsx import Col, Sheet
from dealersync.store import claims as store_claims
from dealersync.store import ledger

REASONS_ZH = {
    "MISSING_REQUIRED": "必填项为空", "BAD_ENUM": "不在允许的取值范围内", "BAD_DATE": "日期格式无法识别",
    "IMPOSSIBLE_DATE": "日期不存在（如 2 月 30 日）", "BAD_DECIMAL": "金额或数值格式错误", "BAD_INTEGER": "整数格式错误",
    "BAD_MOBILE": "手机号码无效", "BAD_PHONE": "固定电话无效", "BAD_EMAIL": "电子邮箱无效", "BAD_POSTCODE": "邮编应为 6 位数字",
    "BAD_PLATE": "车牌号无效", "BAD_MASKED_MOBILE": "掩码手机号格式错误", "ENCODING_ERROR": "含无法识别的字符（编码错误）",
    "FIELD_COUNT": "本行的列数与表头不符", "ID_BAD_BIRTHDATE": "身份证号中的出生日期不存在", "ID_CHECK_DIGIT": "身份证号校验位错误",
    "ID_FORMAT": "证件号码格式错误", "ID_SCI_NOTATION": "证件号码被 Excel 写成科学计数法，原号码已丢失",
    "ID_DESTROYED": "证件号码已损坏（科学计数法或补零），原号码已丢失", "MOBILE_PLACEHOLDER": "占位手机号（如 13800000000）",
    "TOTALS_ROW": "合计行（非数据行）", "VIN_CHECK_DIGIT": "车架号校验位错误", "VIN_FORMAT": "车架号含非法字符（I、O、Q 等）",
    "VIN_LENGTH": "车架号应为 17 位", "SUPERSEDED": "同一文件中该编号再次出现，以后一行为准",
    "MILEAGE_BACKWARDS": "里程比此前记录的少（里程倒退）", "CONTROL_CHARACTER": "含不可见控制字符",
    "PRIVATE_USE_CHAR": "含私用区字符（生僻字可能未按 GB18030-2022 编码，请核对原文）", "INVALID": "取值无效",
    # the OEM portal's claim error codes (oem-portal.openapi.yaml, Error.ErrorCode)
    "MANDATORY_FIELD_MISSING": "必填项缺失", "INVALID_VIN": "车架号校验位错误", "INVALID_REFERENCE": "代码在厂家代码表中不存在",
    "MAIN_PART_MISSING": "缺少主损件", "MULTIPLE_MAIN_PARTS": "主损件只能有一个", "CLAIM_WINDOW_EXPIRED": "已超过索赔时限",
    "MILEAGE_INCONSISTENT": "里程与历史记录不符", "DUPLICATE_CLAIM": "重复索赔", "NOT_RESUBMITTABLE": "该索赔不可再次提交",
}
PERSONAL = {"name", "mobile", "phone", "id_number", "email", "address", "birthday", "customer_name", "sender_name",
            "sender_mobile", "masked_mobile"}
CLAIM_FIELDS = {"Vehicle.VIN": "vin", "Job.ServiceParts": "causal_part_no", "Job.ServiceLabor.LaborOperationID":
                "labor_op_codes", "RepairOrder.RepairOrderCompletedDate": "ro_number", "Vehicle.MileageMeasure":
                "mileage_km", "Job.CodesAndComments.ComplaintCode": "complaint_code"}
WORKLIST_COLUMNS = [Col("文件 File"), Col("行号 Row", "int"), Col("列 Column"), Col("原始值 Raw value"),
                    Col("原因 Reason", width=40), Col("原因代码 Code"), Col("编号 Id")]


# one code, several checks: the message says which (schemas/rules.py's explanations)
_BY_MESSAGE = {("ID_CHECK_DIGIT", "credit code"): "统一社会信用代码校验位错误",
               ("ID_CHECK_DIGIT", "18-character ID or credit code"): "证件号码校验位错误（身份证或统一社会信用代码）"}


def reason_zh(code: str | None, message: str | None = None) -> str:
    """The reason in Chinese; an unknown code keeps the English message after it."""
    zh = next((t for (c, start), t in _BY_MESSAGE.items() if c == code and (message or "").startswith(start)),
              None) or REASONS_ZH.get(code or "")
    return zh if zh else f"{code or '原因未知'}：{message or ''}"


@lru_cache(maxsize=1)
def _builtin() -> dict:
    return load_profiles()


def column_zh(feed: str | None, column: str | None, profiles: dict | None = None) -> str:
    """``中文表头 (canonical)`` from the built-in dms_a profile, else the canonical name."""
    if not column:
        return "（整行）"
    prof = (profiles or _builtin()).get("dms_a")
    names = prof.columns.get(feed or "", {}).get(column) if prof else None
    return f"{names[0]} ({column})" if names else column


def mask_value(column: str | None, value, unmasked: bool = False):
    """A raw value as shown in a work list: personal columns masked (patterns by
    :func:`dealersync.privacy.mask_text`, anything else in them kept to its first and last characters)."""
    if value is None or unmasked:
        return value
    text = mask_text(str(value))
    if column in PERSONAL and text == str(value):
        n = len(text)
        text = text[:1] + "*" * (n - 1) if n <= 3 else text[:3] + "*" * (n - 5) + text[-2:] if n > 6 else \
            text[:1] + "*" * (n - 2) + text[-1:]
    return text


def quarantine_rows(conn: Connection, file: str | None = None, limit: int | None = None, unmasked: bool = False,
                    profiles: dict | None = None, include_resolved: bool = False) -> list[dict]:
    """Open quarantine records (not replayed, not of a replaced load) with the Chinese reason; ``raw_row`` stays raw (the
    caller masks it) for the correction sheet."""
    # without include_resolved: no replayed rows, no rows of a load a corrected export of the day replaced
    return [_shown(dict(r, column=column_zh(r["feed"], r["column_name"], profiles)), unmasked)
            for r in ledger.open_quarantine(conn, file, limit, include_resolved)]


def value_issue_rows(conn: Connection, file: str | None = None, limit: int | None = None, unmasked: bool = False,
                     profiles: dict | None = None, warnings: bool = True) -> list[dict]:
    """Value issues (blanked optional values) and row-rule warnings of loads still in force, with the
    Chinese reason."""
    return [_shown(dict(r, row_number=r["source_row"], column=column_zh(r["feed"], r["column_name"], profiles)), unmasked)
            for r in ledger.value_issues(conn, file, limit, warnings)]


def _shown(row: dict, unmasked: bool) -> dict:
    """A listing row as shown: the value masked, and the message too (a check's message may quote the value)."""
    if not unmasked and row.get("message"):
        row["message"] = mask_text(row["message"])
    row["reason"] = reason_zh(row.get("reason_code"), row.get("message"))
    row["shown_value"] = mask_value(row.get("column_name"), row.get("raw_value"), unmasked)
    return row


def failed_claim_rows(conn: Connection, status: str = "VALIDATION_FAILED", profiles: dict | None = None) -> list[dict]:
    """One row per error of each claim in ``status``, located in the DMS claim file (file, row) with the
    claim's value for the field when it maps to a DMS column."""
    out = []
    for r in store_claims.failed(conn, status):
        errs = json.loads(r["errors"] or "null") or [{"ErrorCode": None, "FieldPath": None,
                                                       "Message": r["last_error"] or ""}]
        for e in errs:
            col = CLAIM_FIELDS.get(e.get("FieldPath") or "")
            value = r[col] if col and col in r else None
            out.append({"source_file": r["source_file"], "row_number": r["source_row"], "claim_no": r["claim_no"],
                        "column": column_zh("warranty_claims", col, profiles) if col else (e.get("FieldPath") or ""),
                        "column_name": col, "shown_value": value, "reason_code": e.get("ErrorCode"),
                        "reason": reason_zh(e.get("ErrorCode"), e.get("Message")) + (
                            f"（{e['Message']}）" if e.get("ErrorCode") in REASONS_ZH and e.get("Message") else ""),
                        "id": r["claim_no"]})
    return out


def worklist_sheet(name: str, title: str, rows: list[dict], what: str) -> Sheet:
    """A work-list sheet: one line per problem, a summary in words above it."""
    files = len({r.get("source_file") for r in rows})
    return Sheet(name, WORKLIST_COLUMNS,
                 [[r.get("source_file"), r.get("row_number") or r.get("source_row"), r.get("column"),
                   r.get("shown_value"), r.get("reason"), r.get("reason_code"), r.get("id")] for r in rows],
                 title=title, notes=[f"共 {len(rows)} 条{what}，涉及 {files} 个文件。" if rows else f"没有{what}。"])


def correction_sheets(rows: list[dict], unmasked: bool = False) -> list[Sheet]:
    """Per feed, the quarantined rows as read (original headers) with the lineage columns first:
    编号 (the quarantine id), 文件, 行号. Personal cells are masked unless ``unmasked``, and in every other cell
    the mobile, ID and e-mail patterns; a masked cell left as it is goes back as the original value on replay."""
    by_feed: dict[str, list[dict]] = {}
    for r in rows:
        by_feed.setdefault(r["feed"] or "unknown", []).append(r)
    sheets = []
    for feed, rs in sorted(by_feed.items()):
        headers: list[str] = []
        cells = []
        for r in rs:
            raw = json.loads(r["raw_row"] or "{}")
            for h in raw:
                if h not in headers:
                    headers.append(h)
            cells.append(raw)
        personal = {h for h in headers if _canonical(feed, h, rs[0].get("profile")) in PERSONAL}
        data = [[r["id"], r["source_file"], r["row_number"], r["reason"]] +
                [c.get(h) if unmasked or not c.get(h) else mask_value("name", c.get(h)) if h in personal
                 else mask_text(str(c.get(h))) for h in headers] for r, c in zip(rs, cells)]
        sheets.append(Sheet(f"修正-{feed}"[:31], [Col("编号 Id", "int"), Col("文件 File"), Col("行号 Row", "int"),
                                                 Col("原因 Reason", width=30)] + [Col(h) for h in headers], data,
                            title=f"待修正的隔离行：{feed}",
                            notes=["改正右侧的原始值后保存，用 `dealersync quarantine replay 本文件.xlsx` 重新校验入库；"
                                   "前四列请勿修改。"]))
    return sheets


def _canonical(feed: str, header: str, profile: str | None) -> str | None:
    if feed not in FEEDS:
        return None
    profs = _builtin()
    prof = profs.get(profile or "") or profs.get("dms_a")
    return prof.aliases(feed).get(header_key(header))
