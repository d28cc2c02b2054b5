"""The pandera models of schemas/feeds.py are the one declaration, declared for the backend that runs them
(``pandera.polars``): ingestion validates with the models themselves, no translation at run time."""
import pandera.polars as pa
import polars as pl
import pytest

from dealersync.schemas import checks_pl
from dealersync.schemas.feeds import _KIND_CHECKS, FEEDS
from dealersync.schemas.validate import _failures


@pytest.mark.parametrize("name", list(FEEDS))
def test_every_feed_model_is_a_polars_model(name):
    feed = FEEDS[name]
    schema = feed.model.to_schema()
    assert isinstance(schema, pa.DataFrameSchema)
    assert list(schema.columns) == list(feed.columns)
    for col, c in schema.columns.items():
        meta = feed.columns[col]
        assert c.dtype.type == pl.String
        assert c.nullable == (not meta["required"])
        names = [k.name for k in c.checks]
        assert [n for n in names if n in checks_pl.CHECKS] == list(_KIND_CHECKS.get(meta["kind"], {}))
        assert ("isin" in names) == (meta["values"] is not None)
        assert set(names) <= {*checks_pl.CHECKS, "isin", "str_length"}


def test_failures_name_row_column_and_check_and_blanks_are_the_nullable_rule():
    feed = FEEDS["repair_orders"]
    rows = {c: ["x"] * 3 for c in feed.columns}
    rows.update(ro_number=["RO1", None, "RO3"], opened_at=["2024-03-05 10:00:00"] * 3,
                vin=["1M8GDM9AXKP042788", "1M8GDM9A1KP042788", "1M8GDM9AXKP042788"],
                sender_mobile=[None, "13812345678", "123"], status=["在修", "已结算", "修好了"])
    for c in ("closed_at", "delivered_at", "plate", "mileage_km", "labor_amount", "parts_amount", "total_amount",
              "repair_type"):
        rows[c] = [None] * 3
    got = _failures(pl.DataFrame(rows), feed)
    assert sorted(zip(got["index"], got["column"], got["check"])) == [
        (1, "ro_number", "not_nullable"), (1, "vin", "vin"), (2, "sender_mobile", "cn_mobile"),
        (2, "status", "isin(['在修', '已完工', '已结算', '已交车', '作废'])")]
