"""The pandera models of schemas/feeds.py are the one declaration; ingestion validates with their polars
form. Every feed must translate, column for column and check for check."""
import polars as pl
import pytest

from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.validate import _failures, polars_schema


@pytest.mark.parametrize("name", list(FEEDS))
def test_every_feed_model_has_a_polars_form(name):
    feed = FEEDS[name]
    pandas_schema, pl_schema = feed.model.to_schema(), polars_schema(feed)
    assert list(pl_schema.columns) == list(pandas_schema.columns)
    for col, c in pandas_schema.columns.items():
        p = pl_schema.columns[col]
        assert p.nullable == c.nullable
        assert [k.name for k in p.checks] == [k.name for k in c.checks]


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
