"""pandera models of the canonical feeds (``shared/specs/dms-exports.md`` sections 2 and 3), declared for
the backend that runs them: ``pandera.polars`` (ingestion validates polars frames, ``validate``).

Each field's ``metadata`` says what kind of value it holds (the normaliser and the store read it),
whether it is required (an invalid required value quarantines the row, an invalid optional one is
blanked and recorded as a value issue) and whether it is part of the feed's natural key.
Models validate the *normalised string* frame: dates are ISO strings, mobiles 11 digits, etc.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandera.extensions as extensions
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from . import checks_pl, rules


def _register(name: str) -> None:
    """``checks_pl.CHECKS[name]`` as a pandera check method ``Field(name=())``: a polars expression over
    the column (``map_batches``: the one implementation runs on the whole Series). Blanks pass: they
    are the nullable rule's business."""
    fn = checks_pl.CHECKS[name]

    def batch(s: pl.Series) -> pl.Series:
        return fn(s) | s.is_null()

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).map_batches(batch, return_dtype=pl.Boolean))
    check.__name__ = name
    extensions.register_check_method(check)


for _name in checks_pl.CHECKS:
    if _name not in pa.Check.REGISTERED_CUSTOM_CHECKS:   # not twice (module reloaded)
        _register(_name)

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
    customer_id: str = col(key=True, max_len=64)
    name: str = col(required=True, person_name=True)
    customer_type: str = col("enum", values=["PERSON", "ORGANISATION"], mapping={
        "个人": "PERSON", "私人": "PERSON", "PERSON": "PERSON", "单位": "ORGANISATION", "公司": "ORGANISATION",
        "企业": "ORGANISATION", "集团": "ORGANISATION", "ORGANISATION": "ORGANISATION"})
    gender: str = col("enum", values=["M", "F"], mapping={"男": "M", "女": "F", "M": "M", "F": "F"})
    mobile: str = col("mobile")
    phone: str = col("phone")
    id_type: str = col("enum", values=list(rules.ID_TYPES), mapping=rules.ID_TYPE_WORDS)
    id_number: str = col("id_number")
    address: str = col()
    postcode: str = col("postcode")
    email: str = col("email")
    birthday: str = col("date")
    created_date: str = col("date")
    advisor: str = col()
    source_channel: str = col("enum", values=["展厅", "电话", "网络", "转介绍", "车展", "其他"],
                              mapping={"其它": "其他", "网站": "网络", "介绍": "转介绍"})
    marketing_consent: str = col("bool", **YN)


class Vehicles(FeedModel):
    vin: str = col("vin", key=True)
    engine_no: str = col()
    plate: str = col("plate")
    brand: str = col()
    model: str = col()
    color: str = col()
    displacement: str = col()
    production_date: str = col("date")
    sale_date: str = col("date")
    registration_date: str = col("date")
    owner_customer_id: str = col()
    mileage_km: str = col("integer")


REPAIR_TYPES = ["首保", "定保", "保养", "三包", "索赔", "小修", "二保", "大修", "事故", "保险", "内部", "返修"]
RO_STATUSES = ["在修", "已完工", "已结算", "已交车", "作废"]


class RepairOrders(FeedModel):
    ro_number: str = col(key=True, max_len=64)
    opened_at: str = col("datetime", required=True)
    closed_at: str = col("datetime")
    delivered_at: str = col("datetime")
    vin: str = col("vin", required=True)
    plate: str = col("plate")
    customer_id: str = col()
    sender_name: str = col(person_name=True)
    sender_mobile: str = col("mobile")
    mileage_km: str = col("integer")
    repair_type: str = col("enum", values=REPAIR_TYPES)
    advisor: str = col()
    labor_amount: str = col("decimal")
    parts_amount: str = col("decimal")
    total_amount: str = col("decimal")
    complaint: str = col()
    status: str = col("enum", values=RO_STATUSES)


class RepairOrderLines(FeedModel):
    ro_number: str = col(key=True, max_len=64)
    line_no: str = col("integer", key=True)
    line_type: str = col("enum", values=["工时", "配件", "外加工"])
    code: str = col()
    description: str = col()
    quantity: str = col("decimal")
    hours: str = col("decimal")
    unit_price: str = col("decimal")
    amount: str = col("decimal")
    pay_type: str = col("enum", values=["客户付费", "索赔", "保险", "内部", "免费"])
    causal_part: str = col("bool", **YN)


class VehicleSales(FeedModel):
    sale_no: str = col(key=True, max_len=64)
    order_date: str = col("date")
    invoice_date: str = col("date")
    delivery_date: str = col("date")
    vin: str = col("vin", required=True)
    customer_id: str = col()
    customer_name: str = col(person_name=True)
    mobile: str = col("mobile")
    id_number: str = col("id_number")
    salesperson: str = col()
    model: str = col()
    price: str = col("decimal")
    payment: str = col("enum", values=["全款", "贷款", "分期"], mapping={"按揭": "贷款"})


CLAIM_TYPES = ["保修", "三包", "召回", "首保", "技术服务活动", "预授权"]


class WarrantyClaims(FeedModel):
    claim_no: str = col(key=True, max_len=64)
    ro_number: str = col(required=True)
    vin: str = col("vin", required=True)
    mileage_km: str = col("integer")
    claim_type: str = col("enum", values=CLAIM_TYPES)
    complaint_code: str = col()
    complaint: str = col()
    cause_code: str = col()
    cause: str = col()
    correction: str = col()
    defect_code: str = col()
    causal_part_no: str = col()
    labor_op_codes: str = col()
    claim_amount: str = col("decimal")
    authorization_no: str = col()


# ---------------------------------------------------------------- OEM drops (spec section 3), UTF-8 CSV

class Recalls(FeedModel):
    campaign_code: str = col(key=True, max_len=64)
    campaign_name: str = col()
    vin: str = col("vin", key=True)
    start_date: str = col("date")
    end_date: str = col("date")


class Deliveries(FeedModel):
    vin: str = col("vin", key=True)
    retail_date: str = col("date", required=True)
    customer_name: str = col()
    masked_mobile: str = col("masked_mobile")


CLAIM_RESULT_STATUSES = ["SUBMITTED", "UNDER_REVIEW", "APPROVED", "PARTIALLY_APPROVED", "REJECTED", "RETURNED",
                         "SETTLED", "CANCELLED", "DEBITED", "APPEALED", "CLOSED"]


class ClaimResults(FeedModel):
    claim_no: str = col(key=True, max_len=64)
    oem_claim_no: str = col()
    status: str = col("enum", required=True, values=CLAIM_RESULT_STATUSES, mapping={
        "已上报": "SUBMITTED", "审核中": "UNDER_REVIEW", "理赔": "APPROVED", "批准": "APPROVED", "部分理赔": "PARTIALLY_APPROVED",
        "拒赔": "REJECTED", "退回": "RETURNED", "结算": "SETTLED", "已结算": "SETTLED", "作废": "CANCELLED",
        "索赔扣款": "DEBITED", "复判": "APPEALED", "关闭": "CLOSED", **{v: v for v in CLAIM_RESULT_STATUSES}})
    paid_amount: str = col("decimal")
    reason: str = col()


class LaborOperations(FeedModel):
    code: str = col(key=True, max_len=64)
    description: str = col()
    standard_hours: str = col("decimal")
    valid_from: str = col("date", key=True)


STOCK_STATUSES = ["在途", "在库", "已订", "已售未交", "调出"]
CERTIFICATE_STATUSES = ["在店", "抵押", "已交客户"]


class Stock(FeedModel):
    """Section 2.7: the new-vehicle inventory, a full snapshot per business day (key: the day and VIN)."""
    vin: str = col("vin", key=True)
    model: str = col(required=True)
    trim: str = col()
    color: str = col()
    arrival_date: str = col("date")
    stock_status: str = col("enum", values=STOCK_STATUSES, mapping={
        "在途中": "在途", "库存": "在库", "在店": "在库", "已预订": "已订", "预订": "已订", "已售": "已售未交",
        "已售待交": "已售未交", "调拨": "调出", "已调出": "调出"})
    location: str = col()
    certificate_status: str = col("enum", values=CERTIFICATE_STATUSES, mapping={
        "在库": "在店", "店内": "在店", "质押": "抵押", "已抵押": "抵押", "银行": "抵押", "已交": "已交客户",
        "已交付": "已交客户"})
    purchase_price: str = col("decimal")


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
