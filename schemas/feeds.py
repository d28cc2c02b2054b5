"""pandera models of the canonical feeds (``shared/specs/dms-exports.md`` sections 2 and 3).

Each field's ``metadata`` says what kind of value it holds (the normaliser and the store read it),
whether it is required (an invalid required value quarantines the row, an invalid optional one is
blanked and recorded as a value issue) and whether it is part of the feed's natural key.
Models validate the *normalised string* frame: dates are ISO strings, mobiles 11 digits, etc.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandera.pandas as pa
from pandera.typing import Series

from . import checks  # noqa: F401  (registers the custom checks)
from . import rules

_KIND_CHECKS = {
    "mobile": {"cn_mobile": ()}, "phone": {"cn_phone": ()}, "id_number": {"id_number": ()},
    "vin": {"vin": ()}, "plate": {"cn_plate": ()}, "postcode": {"postcode": ()}, "email": {"email": ()},
    "date": {"iso_date": ()}, "datetime": {"iso_datetime": ()}, "decimal": {"decimal": ()},
    "integer": {"integer": ()}, "masked_mobile": {"masked_mobile": ()},
}


def col(kind: str = "text", *, required: bool = False, key: bool = False, values=None,
        mapping: dict | None = None, max_len: int | None = None, person_name: bool = False):
    """Declare a canonical column. ``values``: allowed canonical values of an enumeration;
    ``mapping``: built-in raw word -> canonical value (profiles may add their own); ``person_name``:
    a name (a private-use character in it is reported, see ``validate``)."""
    kw = dict(_KIND_CHECKS.get(kind, {}))
    if values is not None:
        kw["isin"] = list(values)
    if max_len:
        kw["str_length"] = {"max_value": max_len}
    required = required or key
    return pa.Field(nullable=not required, **kw,
                    metadata={"kind": kind, "required": required, "key": key, "person_name": person_name,
                              "values": list(values) if values is not None else None,
                              "mapping": dict(mapping or {})})


class FeedModel(pa.DataFrameModel):
    class Config:
        strict = False
        coerce = False


YN = {"values": ["Y", "N"], "mapping": rules.BOOL_WORDS}


class Customers(FeedModel):
    customer_id: Series[str] = col(key=True, max_len=64)
    name: Series[str] = col(required=True, person_name=True)
    customer_type: Series[str] = col("enum", values=["PERSON", "ORGANISATION"], mapping={
        "个人": "PERSON", "私人": "PERSON", "PERSON": "PERSON", "单位": "ORGANISATION", "公司": "ORGANISATION",
        "企业": "ORGANISATION", "集团": "ORGANISATION", "ORGANISATION": "ORGANISATION"})
    gender: Series[str] = col("enum", values=["M", "F"], mapping={"男": "M", "女": "F", "M": "M", "F": "F"})
    mobile: Series[str] = col("mobile")
    phone: Series[str] = col("phone")
    id_type: Series[str] = col("enum", values=list(rules.ID_TYPES), mapping=rules.ID_TYPE_WORDS)
    id_number: Series[str] = col("id_number")
    address: Series[str] = col()
    postcode: Series[str] = col("postcode")
    email: Series[str] = col("email")
    birthday: Series[str] = col("date")
    created_date: Series[str] = col("date")
    advisor: Series[str] = col()
    source_channel: Series[str] = col("enum", values=["展厅", "电话", "网络", "转介绍", "车展", "其他"],
                                      mapping={"其它": "其他", "网站": "网络", "介绍": "转介绍"})
    marketing_consent: Series[str] = col("bool", **YN)


class Vehicles(FeedModel):
    vin: Series[str] = col("vin", key=True)
    engine_no: Series[str] = col()
    plate: Series[str] = col("plate")
    brand: Series[str] = col()
    model: Series[str] = col()
    color: Series[str] = col()
    displacement: Series[str] = col()
    production_date: Series[str] = col("date")
    sale_date: Series[str] = col("date")
    registration_date: Series[str] = col("date")
    owner_customer_id: Series[str] = col()
    mileage_km: Series[str] = col("integer")


REPAIR_TYPES = ["首保", "定保", "保养", "三包", "索赔", "小修", "二保", "大修", "事故", "保险", "内部", "返修"]
RO_STATUSES = ["在修", "已完工", "已结算", "已交车", "作废"]


class RepairOrders(FeedModel):
    ro_number: Series[str] = col(key=True, max_len=64)
    opened_at: Series[str] = col("datetime", required=True)
    closed_at: Series[str] = col("datetime")
    delivered_at: Series[str] = col("datetime")
    vin: Series[str] = col("vin", required=True)
    plate: Series[str] = col("plate")
    customer_id: Series[str] = col()
    sender_name: Series[str] = col(person_name=True)
    sender_mobile: Series[str] = col("mobile")
    mileage_km: Series[str] = col("integer")
    repair_type: Series[str] = col("enum", values=REPAIR_TYPES)
    advisor: Series[str] = col()
    labor_amount: Series[str] = col("decimal")
    parts_amount: Series[str] = col("decimal")
    total_amount: Series[str] = col("decimal")
    complaint: Series[str] = col()
    status: Series[str] = col("enum", values=RO_STATUSES)


class RepairOrderLines(FeedModel):
    ro_number: Series[str] = col(key=True, max_len=64)
    line_no: Series[str] = col("integer", key=True)
    line_type: Series[str] = col("enum", values=["工时", "配件", "外加工"])
    code: Series[str] = col()
    description: Series[str] = col()
    quantity: Series[str] = col("decimal")
    hours: Series[str] = col("decimal")
    unit_price: Series[str] = col("decimal")
    amount: Series[str] = col("decimal")
    pay_type: Series[str] = col("enum", values=["客户付费", "索赔", "保险", "内部", "免费"])
    causal_part: Series[str] = col("bool", **YN)


class VehicleSales(FeedModel):
    sale_no: Series[str] = col(key=True, max_len=64)
    order_date: Series[str] = col("date")
    invoice_date: Series[str] = col("date")
    delivery_date: Series[str] = col("date")
    vin: Series[str] = col("vin", required=True)
    customer_id: Series[str] = col()
    customer_name: Series[str] = col(person_name=True)
    mobile: Series[str] = col("mobile")
    id_number: Series[str] = col("id_number")
    salesperson: Series[str] = col()
    model: Series[str] = col()
    price: Series[str] = col("decimal")
    payment: Series[str] = col("enum", values=["全款", "贷款", "分期"], mapping={"按揭": "贷款"})


CLAIM_TYPES = ["保修", "三包", "召回", "首保", "技术服务活动", "预授权"]


class WarrantyClaims(FeedModel):
    claim_no: Series[str] = col(key=True, max_len=64)
    ro_number: Series[str] = col(required=True)
    vin: Series[str] = col("vin", required=True)
    mileage_km: Series[str] = col("integer")
    claim_type: Series[str] = col("enum", values=CLAIM_TYPES)
    complaint_code: Series[str] = col()
    complaint: Series[str] = col()
    cause_code: Series[str] = col()
    cause: Series[str] = col()
    correction: Series[str] = col()
    defect_code: Series[str] = col()
    causal_part_no: Series[str] = col()
    labor_op_codes: Series[str] = col()
    claim_amount: Series[str] = col("decimal")
    authorization_no: Series[str] = col()


# ---------------------------------------------------------------- OEM drops (spec section 3), UTF-8 CSV

class Recalls(FeedModel):
    campaign_code: Series[str] = col(key=True, max_len=64)
    campaign_name: Series[str] = col()
    vin: Series[str] = col("vin", key=True)
    start_date: Series[str] = col("date")
    end_date: Series[str] = col("date")


class Deliveries(FeedModel):
    vin: Series[str] = col("vin", key=True)
    retail_date: Series[str] = col("date", required=True)
    customer_name: Series[str] = col()
    masked_mobile: Series[str] = col("masked_mobile")


CLAIM_RESULT_STATUSES = ["SUBMITTED", "UNDER_REVIEW", "APPROVED", "PARTIALLY_APPROVED", "REJECTED", "RETURNED",
                         "SETTLED", "CANCELLED", "DEBITED", "APPEALED", "CLOSED"]


class ClaimResults(FeedModel):
    claim_no: Series[str] = col(key=True, max_len=64)
    oem_claim_no: Series[str] = col()
    status: Series[str] = col("enum", required=True, values=CLAIM_RESULT_STATUSES, mapping={
        "已上报": "SUBMITTED", "审核中": "UNDER_REVIEW", "理赔": "APPROVED", "批准": "APPROVED", "部分理赔": "PARTIALLY_APPROVED",
        "拒赔": "REJECTED", "退回": "RETURNED", "结算": "SETTLED", "已结算": "SETTLED", "作废": "CANCELLED",
        "索赔扣款": "DEBITED", "复判": "APPEALED", "关闭": "CLOSED", **{v: v for v in CLAIM_RESULT_STATUSES}})
    paid_amount: Series[str] = col("decimal")
    reason: Series[str] = col()


class LaborOperations(FeedModel):
    code: Series[str] = col(key=True, max_len=64)
    description: Series[str] = col()
    standard_hours: Series[str] = col("decimal")
    valid_from: Series[str] = col("date", key=True)


STOCK_STATUSES = ["在途", "在库", "已订", "已售未交", "调出"]
CERTIFICATE_STATUSES = ["在店", "抵押", "已交客户"]


class Stock(FeedModel):
    """Section 2.7: the new-vehicle inventory, a full snapshot per business day (key: the day and VIN)."""
    vin: Series[str] = col("vin", key=True)
    model: Series[str] = col(required=True)
    trim: Series[str] = col()
    color: Series[str] = col()
    arrival_date: Series[str] = col("date")
    stock_status: Series[str] = col("enum", values=STOCK_STATUSES, mapping={
        "在途中": "在途", "库存": "在库", "在店": "在库", "已预订": "已订", "预订": "已订", "已售": "已售未交",
        "已售待交": "已售未交", "调拨": "调出", "已调出": "调出"})
    location: Series[str] = col()
    certificate_status: Series[str] = col("enum", values=CERTIFICATE_STATUSES, mapping={
        "在库": "在店", "店内": "在店", "质押": "抵押", "已抵押": "抵押", "银行": "抵押", "已交": "已交客户",
        "已交付": "已交客户"})
    purchase_price: Series[str] = col("decimal")


@dataclass(frozen=True)
class FeedDef:
    name: str            # canonical feed name typed on the command line
    token: str           # FEED token in file names
    model: type[FeedModel]
    table: str           # canonical table in the store
    source: str = "DMS"
    columns: dict = field(default_factory=dict, compare=False)
    dated: bool = False  # a daily snapshot: the business day is part of the stored key (spec 2.7)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(c for c, m in self.columns.items() if m["key"])

    @property
    def store_key(self) -> tuple[str, ...]:
        """The key rows are stored under (after ``dealer_code``): the natural key, with the business
        day first for a snapshot feed."""
        return ("business_date", *self.key) if self.dated else self.key

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c for c, m in self.columns.items() if m["required"])


def _feed(name, token, model, table, source="DMS", dated=False) -> FeedDef:
    schema = model.to_schema()
    cols = {c: dict(schema.columns[c].metadata) for c in schema.columns}
    return FeedDef(name, token, model, table, source, cols, dated)


# in load order: parents before children, code tables before what refers to them
FEEDS: dict[str, FeedDef] = {f.name: f for f in [
    _feed("customers", "CUSTOMER", Customers, "dms_customer"),
    _feed("vehicles", "VEHICLE", Vehicles, "dms_vehicle"),
    _feed("vehicle_sales", "SALE", VehicleSales, "dms_vehicle_sale"),
    _feed("repair_orders", "RO", RepairOrders, "dms_repair_order"),
    _feed("repair_order_lines", "ROLINE", RepairOrderLines, "dms_repair_order_line"),
    _feed("warranty_claims", "CLAIM", WarrantyClaims, "dms_warranty_claim"),
    _feed("stock", "STOCK", Stock, "dms_stock", dated=True),
    _feed("labor_operations", "LABOROPS", LaborOperations, "oem_labor_op", "OEM"),
    _feed("recalls", "RECALL", Recalls, "oem_recall", "OEM"),
    _feed("deliveries", "DELIVERY", Deliveries, "oem_delivery", "OEM"),
    _feed("claim_results", "CLAIMRESULT", ClaimResults, "oem_claim_result", "OEM"),
]}
DMS_FEEDS = [f for f in FEEDS.values() if f.source == "DMS"]
OEM_FEEDS = [f for f in FEEDS.values() if f.source == "OEM"]
FEEDS_BY_TOKEN = {f.token: f for f in FEEDS.values()}


def get_feed(name_or_token: str) -> FeedDef:
    f = FEEDS.get(name_or_token.lower()) or FEEDS_BY_TOKEN.get(name_or_token.upper())
    if f is None:
        from dealersync.errors import ConfigurationError
        raise ConfigurationError(f"unknown feed {name_or_token!r}; known: {', '.join(FEEDS)}")
    return f
