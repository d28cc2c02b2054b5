"""The sandbox OEM portal's rules (``shared/specs/oem-portal.openapi.yaml``): what a request must hold,
what the portal decides, and when. Pure functions and constants: no state, no HTTP. The app
(``portal.py``) answers with them; the state (``portal_state.py``) keeps what they decide.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_VIN_VAL = {**{str(d): d for d in range(10)},
            **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
            **dict(zip("STUVWXYZ", range(2, 10)))}
_VIN_W = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
CLAIM_TYPES = {"WARRANTY", "THREE_GUARANTEE", "RECALL", "FIRST_SERVICE", "CAMPAIGN", "PRE_AUTHORIZATION"}
RAW_WORDS = {"SUBMITTED": "已上报", "UNDER_REVIEW": "审核中", "APPROVED": "理赔", "PARTIALLY_APPROVED": "理赔(调整)",
             "REJECTED": "拒赔", "RETURNED": "退回", "SETTLED": "结算"}
FACTORS = {"OVERALL", "NPS", "SERVICE_INITIATION", "SERVICE_ADVISOR", "SERVICE_FACILITY", "VEHICLE_PICKUP",
           "SERVICE_QUALITY", "SALES_INITIATION", "SALESPERSON", "DEAL", "DEALER_FACILITY", "DELIVERY_PROCESS", "VERBATIM"}
LABOR_OPS = [("A0101", "发动机机油及滤清器更换", 0.5), ("A0203", "变速箱总成检修", 6.0), ("B1105", "前制动片更换", 1.0),
             ("C2201", "转向机总成更换", 3.5), ("D3004", "空调压缩机更换", 2.5), ("E1002", "发电机更换", 1.5),
             ("F0301", "车门玻璃升降器更换", 1.2), ("G0101", "前大灯总成更换", 0.8), ("H0203", "燃油泵更换", 1.8),
             ("J0101", "诊断检查", 0.5), ("K0202", "减震器更换", 1.6), ("L0101", "水泵更换", 2.0)]
REPORT_TYPES = ("CSI_MONTHLY", "SSI_MONTHLY", "SALES_DAILY")
MASKED_MOBILE = re.compile(r"^1[3-9][0-9]\*{4}[0-9]{4}$")
# RFC 3339 date-time, as JSON Schema's "date-time" format reads it
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE | re.ASCII)


@dataclass
class Clock:
    """Adjudication timing, in seconds after the submission (the sandbox's "configurable clock")."""
    review_after: float = 2.0
    decide_after: float = 6.0
    settle_after: float = 12.0
    claim_window_days: int = 30         # an RO completed longer ago than this is CLAIM_WINDOW_EXPIRED
    max_report_bytes: int = 10 * 1024 * 1024

    def next_after(self, status: str) -> float | None:
        """Seconds after the submission when a claim in ``status`` moves on (None: it stays)."""
        return {"SUBMITTED": self.review_after, "UNDER_REVIEW": self.decide_after, "APPROVED": self.settle_after,
                "PARTIALLY_APPROVED": self.settle_after}.get(status)


def parse_time(v: str | None) -> datetime | None:
    if not v:
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def vin_ok(v: str) -> bool:
    if not isinstance(v, str) or not VIN_RE.match(v):
        return False
    s = sum(_VIN_VAL[c] * w for c, w in zip(v, _VIN_W)) % 11
    return v[8] == ("X" if s == 10 else str(s))


def body_hash(body: bytes) -> str:
    """SHA-256 of a request body, canonical when it is JSON (key order and spacing do not count)."""
    try:
        canon = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode()
    except ValueError:
        canon = body
    return hashlib.sha256(canon).hexdigest()


def application_area(body) -> dict | None:
    """The request's ``ApplicationArea`` as the contract defines it (components/schemas/ApplicationArea),
    projected to its known keys, or None when a required field is missing or of the wrong type: an
    answer echoes it as ``OriginalApplicationArea``, so it must conform as well."""
    area = body.get("ApplicationArea") if isinstance(body, dict) else None
    if not isinstance(area, dict) or not isinstance(area.get("Sender"), dict):
        return None
    sender = {k: v for k, v in area["Sender"].items()
              if k in ("CreatorNameCode", "DealerNumberID", "StoreNumber", "SystemVersion") and isinstance(v, str)}
    out = {"Sender": sender, **{k: area[k] for k in ("CreationDateTime", "BODID") if isinstance(area.get(k), str)}}
    if not sender.get("CreatorNameCode") or not sender.get("DealerNumberID") or len(out) < 3:
        return None
    if not _RFC3339.fullmatch(out["CreationDateTime"]):
        return None
    try:
        datetime.fromisoformat(out["CreationDateTime"].upper().replace("Z", "+00:00"))
        uuid.UUID(out["BODID"])
    except ValueError:
        return None
    return out


# ------------------------------------------------------------------------------------ claims

def validate_claim(body: dict, labor_codes: set[str], claim_window_days: int,
                   prior_status: Callable[[str, int], str | None]) -> list[dict]:
    """The 422 errors of a ProcessWarrantyClaim (empty when it passes). ``prior_status(claim, count)``:
    the status of an earlier submission of the claim, or None (a resubmission needs a RETURNED one)."""
    errs = []

    def need(obj, key, path):
        if not isinstance(obj, dict) or obj.get(key) in (None, "", []):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": path, "Message": f"{path} is required"})
            return None
        return obj[key]
    wc = need(body, "WarrantyClaim", "WarrantyClaim") or {}
    h = need(wc, "WarrantyClaimHeader", "WarrantyClaim.WarrantyClaimHeader") or {}
    for k in ("ClaimNumberString", "ClaimTypeString", "ClaimSubmissionCountNumeric", "RepairOrder", "Vehicle",
              "ClaimedAmount"):
        need(h, k, f"WarrantyClaim.WarrantyClaimHeader.{k}")
    if errs:
        return errs
    if h["ClaimTypeString"] not in CLAIM_TYPES:
        errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimTypeString",
                     "Message": "unknown claim type"})
    ro = h["RepairOrder"]
    for k in ("DocumentID", "RepairOrderOpenedDate", "RepairOrderCompletedDate"):
        need(ro, k, f"WarrantyClaim.WarrantyClaimHeader.RepairOrder.{k}")
    veh = h["Vehicle"]
    vin = need(veh, "VIN", "WarrantyClaim.WarrantyClaimHeader.Vehicle.VIN")
    if vin and not vin_ok(vin):
        errs.append({"ErrorCode": "INVALID_VIN", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.Vehicle.VIN",
                     "Message": "VIN format or check digit wrong"})
    dist = need(veh, "InDistanceMeasure", "WarrantyClaim.WarrantyClaimHeader.Vehicle.InDistanceMeasure")
    if isinstance(dist, dict) and (not isinstance(dist.get("value"), int) or dist["value"] < 0):
        errs.append({"ErrorCode": "MILEAGE_INCONSISTENT", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.Vehicle.InDistanceMeasure",
                     "Message": "mileage must be a non-negative integer (KMT)"})
    try:
        done = date.fromisoformat(ro.get("RepairOrderCompletedDate", ""))
        opened = date.fromisoformat(ro.get("RepairOrderOpenedDate", ""))
        if done < opened:
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.RepairOrder",
                         "Message": "completed before opened"})
        if (date.today() - done).days > claim_window_days:
            errs.append({"ErrorCode": "CLAIM_WINDOW_EXPIRED", "FieldPath":
                         "WarrantyClaim.WarrantyClaimHeader.RepairOrder.RepairOrderCompletedDate",
                         "Message": f"claims must be submitted within {claim_window_days} days of completion"})
    except (TypeError, ValueError):
        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.RepairOrder",
                     "Message": "dates must be YYYY-MM-DD"})
    jobs = need(wc, "Job", "WarrantyClaim.Job") or []
    causal = 0
    for i, job in enumerate(jobs if isinstance(jobs, list) else []):
        for k in ("JobNumberString", "CodesAndComments"):
            need(job, k, f"WarrantyClaim.Job[{i}].{k}")
        for j, lab in enumerate(job.get("ServiceLabor") or []):
            if lab.get("LaborOperationID") not in labor_codes:
                errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": f"WarrantyClaim.Job[{i}].ServiceLabor[{j}].LaborOperationID",
                             "Message": f"labor operation {lab.get('LaborOperationID')} is not in the code table"})
        causal += sum(1 for p in job.get("ServiceParts") or [] if p.get("CausalPartIndicator") is True)
    if causal == 0:
        errs.append({"ErrorCode": "MAIN_PART_MISSING", "FieldPath": "WarrantyClaim.Job", "Message": "exactly one causal part is required"})
    elif causal > 1:
        errs.append({"ErrorCode": "MULTIPLE_MAIN_PARTS", "FieldPath": "WarrantyClaim.Job", "Message": "exactly one causal part is allowed"})
    count = h["ClaimSubmissionCountNumeric"]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 999:
        errs.append({"ErrorCode": "NOT_RESUBMITTABLE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimSubmissionCountNumeric",
                     "Message": "submission count must be 1 for a first submission, prior + 1 after a return"})
    elif count > 1:
        if prior_status(h["ClaimNumberString"], count - 1) != "RETURNED":
            errs.append({"ErrorCode": "NOT_RESUBMITTABLE", "FieldPath": "WarrantyClaim.WarrantyClaimHeader.ClaimSubmissionCountNumeric",
                         "Message": "only a RETURNED claim may be resubmitted, with its submission count + 1"})
    return errs


def oem_number(dealer: str, claim: str, count: int) -> str:
    return "OEM" + hashlib.sha1(f"{dealer}:{claim}:{count}".encode()).hexdigest()[:10].upper()


def outcome(dealer: str, claim: str, count: int) -> str:
    """The portal's decision on a submission, drawn from its key (the same claim always gets the same):
    60 % APPROVED, 15 % PARTIALLY_APPROVED, 10 % REJECTED, 15 % RETURNED."""
    draw = int(hashlib.sha256(f"{dealer}:{claim}:{count}".encode()).hexdigest()[:8], 16) % 100
    return "APPROVED" if draw < 60 else "PARTIALLY_APPROVED" if draw < 75 else "REJECTED" if draw < 85 else "RETURNED"


def decision(outcome: str, amount: float) -> dict:
    """The status record's extra fields when the portal decides ``outcome`` on a claim of ``amount``."""
    if outcome == "APPROVED":
        return {"ToBePaidAmount": {"value": round(amount, 2), "currencyID": "CNY"}}
    if outcome == "PARTIALLY_APPROVED":
        return {"ToBePaidAmount": {"value": round(amount * 0.8, 2), "currencyID": "CNY"},
                "AdjustmentReason": [{"ReasonCode": "LABOR_HOURS", "Description": "工时超出标准工时"}]}
    if outcome == "REJECTED":
        return {"DispositionReason": [{"ReasonCode": "NOT_COVERED", "Description": "非质量问题，不予理赔"}]}
    if outcome == "RETURNED":
        return {"DispositionReason": [{"ReasonCode": "MISSING_PHOTO", "Description": "请补充故障件照片后重新提交"}]}
    return {}


def settlement(status: str, amount: float) -> dict:
    """The SETTLED record's extra fields of an APPROVED or PARTIALLY_APPROVED claim."""
    paid = round(amount * (1 if status == "APPROVED" else 0.8), 2)
    return {"ToBePaidAmount": {"value": paid, "currencyID": "CNY"},
            "PaymentCycleID": f"PC{datetime.now():%Y%m}", "SettlementDate": date.today().isoformat()}


# ------------------------------------------------------------------------------------ surveys

def survey_problems(body, area: dict | None) -> tuple[dict | None, list[dict]]:
    """(the CustomerSurveyResult, its 422 errors: empty when it passes)."""
    res = (body or {}).get("CustomerSurveyResult") if isinstance(body, dict) else None
    errs = []
    if not isinstance(area, dict) or not isinstance(area.get("Sender"), dict) or not area.get("BODID"):
        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "ApplicationArea", "Message": "required"})
    if not isinstance(res, dict):
        errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult", "Message": "required"})
        return res, errs
    for k in ("DocumentID", "SurveyTypeCode", "TriggerEvent", "CompletedDateTime", "Respondent", "Answer"):
        if res.get(k) in (None, "", []):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": f"CustomerSurveyResult.{k}",
                         "Message": f"{k} is required"})
    resp_ = res.get("Respondent") or {}
    if isinstance(resp_, dict):
        if not resp_.get("MasterCustomerID"):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Respondent.MasterCustomerID",
                         "Message": "required"})
        m = resp_.get("MaskedMobile")
        if m is not None and not MASKED_MOBILE.match(str(m)):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Respondent.MaskedMobile",
                         "Message": "only a masked mobile (138****5678) may be sent"})
    answers = res.get("Answer")
    if not isinstance(answers, list):
        if answers not in (None, ""):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": "CustomerSurveyResult.Answer",
                         "Message": "a list of answers is required"})
        answers = []
    for k in ("DocumentID", "SurveyTypeCode", "CompletedDateTime"):
        if res.get(k) not in (None, "", []) and not isinstance(res.get(k), str):
            errs.append({"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": f"CustomerSurveyResult.{k}",
                         "Message": f"{k} must be a string"})
    for i, a in enumerate(answers):
        # an object or a list as FactorCode is unhashable: checked as a string first (issue #15: 500)
        if not isinstance(a, dict) or not isinstance(a.get("FactorCode"), str) or a["FactorCode"] not in FACTORS:
            errs.append({"ErrorCode": "INVALID_REFERENCE", "FieldPath": f"CustomerSurveyResult.Answer[{i}].FactorCode",
                         "Message": "unknown factor"})
    return res, errs


# ------------------------------------------------------------------------------------ reports

def report_problem(fields: dict, data: bytes | None, max_bytes: int) -> tuple[int, list[dict]] | None:
    """(status, errors) of a report upload the portal refuses, or None. ``fields``: dealerNumberId,
    reportType, period as posted."""
    missing = [k for k, v in fields.items() if not isinstance(v, str) or not v] + ([] if data is not None else ["file"])
    if missing:
        return 422, [{"ErrorCode": "MANDATORY_FIELD_MISSING", "FieldPath": m, "Message": f"{m} is required"}
                     for m in missing]
    if len(data) > max_bytes:
        return 413, [{"ErrorCode": "PAYLOAD_TOO_LARGE", "Message": f"at most {max_bytes} bytes"}]
    rt, period = fields["reportType"], fields["period"]
    if rt not in REPORT_TYPES or not re.match(r"^\d{4}-\d{2}$" if rt.endswith("MONTHLY") else r"^\d{4}-\d{2}-\d{2}$",
                                              period):
        return 422, [{"ErrorCode": "INVALID_REFERENCE", "Message": "reportType or period invalid", "FieldPath": "period"}]
    return None
