"""``docs/profiles.md`` lists every canonical column of every feed and the canonical values each
enumeration accepts (issue #17 item 9), and is what ``schemas/profile_doc.py`` generates today."""
from __future__ import annotations

import re
from pathlib import Path

from dealersync.schemas import profile_doc
from dealersync.schemas.feeds import FEEDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "profiles.md"


def documented(text: str) -> dict[str, dict[str, str]]:
    """feed -> column -> the row's canonical-values cell, read from the Markdown tables."""
    out: dict[str, dict[str, str]] = {}
    feed = None
    for line in text.splitlines():
        m = re.match(r"^## (\w+)$", line)
        if m:
            feed = m.group(1) if m.group(1) in FEEDS else None
            continue
        m = re.match(r"^\| `(\w+)` \| (\w+) \| (\w+) \| (.*?) \|", line)
        if feed and m:
            out.setdefault(feed, {})[m.group(1)] = m.group(4)
    return out


def gaps(text: str) -> list[str]:
    """Columns missing from the doc, and canonical values missing from their column's row."""
    doc = documented(text)
    out = []
    for name, feed in FEEDS.items():
        for col, meta in feed.columns.items():
            if col not in doc.get(name, {}):
                out.append(f"{name}.{col}")
                continue
            for v in meta["values"] or []:
                if f"`{v}`" not in doc[name][col]:
                    out.append(f"{name}.{col}={v}")
    return out


def test_every_column_of_every_feed_and_every_canonical_value_is_in_the_doc():
    assert gaps(DOC.read_text(encoding="utf-8")) == []


def test_a_missing_column_or_value_is_caught():
    text = profile_doc.render()
    assert gaps(text) == []
    without_line_no = "\n".join(l for l in text.splitlines() if not l.startswith("| `line_no` "))
    assert gaps(without_line_no) == ["repair_order_lines.line_no"]
    assert gaps(text.replace("`ORGANISATION`", "ORG")) == ["customers.customer_type=ORGANISATION"]


def test_the_doc_is_in_step_with_the_feeds_and_profiles():
    assert DOC.read_text(encoding="utf-8") == profile_doc.render(), \
        "docs/profiles.md is stale: python -m dealersync.schemas.profile_doc > docs/profiles.md"


def test_every_kind_of_column_is_described():
    kinds = {m["kind"] for f in FEEDS.values() for m in f.columns.values()}
    assert kinds <= set(profile_doc.KINDS)
