"""``docs/profiles.md``, generated: every canonical column of every feed, what it accepts, the canonical
values of enumerations with the words mapped to them, and each built-in profile's headers.

    python -m dealersync.schemas.profile_doc > docs/profiles.md

Sources: the pandera models' metadata (``schemas/feeds.py``, spec ``dms-exports.md`` sections 2 and 3),
the built-in profiles (``schemas/profiles/*.toml``) and the parsing defaults of ``schemas/checks.py``.
``tests/schemas/test_profile_doc.py`` fails when the file is out of step with them.
"""
from __future__ import annotations

import sys

from . import checks
from .feeds import FEEDS, FeedDef
from .profiles import Profile, load_profiles

KINDS = {
    "text": ("any text (in every column: Excel's `=\"...\"` text-forcing and leading `'` are removed)",
             "trimmed, full-width forms folded (NFKC), runs of white space made one space"),
    "enum": ("one of the canonical values, or a word mapped to one (any letter case)",
             "the canonical value"),
    "bool": ("a yes/no word (below)", "`Y` or `N` in the files' terms; a boolean in the store"),
    "mobile": ("a mainland mobile, 11 digits from 13-19; spaces, dashes, dots, brackets and a "
               "`+86` / `0086` / `86` prefix are dropped", "11 digits"),
    "masked_mobile": ("a masked mobile as the OEM sends it, `138****1234`", "as given"),
    "phone": ("a landline with its area code (`020-87654321`, `(010)62345678`, `0755 8888 1234`), a local "
              "number, a 400/800 number or a mobile, with an extension (`转`, `ext`, `分机`)",
              "`AREA-LOCAL` (area codes of 3 digits for 010 and 020-029, 4 otherwise), `转EXT` after it"),
    "id_number": ("with an ID type (`id_type`), that type's document only: a resident ID (GB 11643, MOD 11-2 "
                  "check), a unified social credit code (GB 32100, MOD 31 check), a passport, another document "
                  "(其他: a Hong Kong / Macau or Taiwan permit...) of 5-20 letters and digits; without one, a resident ID or credit code with a valid check character "
                  "or another document number of 5-20 letters and digits",
                  "upper case, no spaces"),
    "vin": ("17 characters with a valid check digit in position 9 (ISO 3779 / GB 16735), no I, O or Q; "
            "spaces and dashes dropped", "upper case"),
    "plate": ("a plate in a GA 36 form: province, letter, 5 characters; new-energy plates with A-K (no I) "
              "in third place or last; the suffixes 挂 / 学 / 警 / 港 / 澳 / 领 / 试 / 超 / 应急; embassy plates (使)",
              "no separators, upper case"),
    "postcode": ("6 digits", "6 digits"),
    "email": ("an e-mail address", "lower case"),
    "date": ("a date in one of the profile's `date_formats`, then {dates}, or an Excel serial day",
             "a date (`YYYY-MM-DD`)"),
    "datetime": ("a time stamp in one of the profile's `date_formats`, then {datetimes} (a fraction of a "
                 "second, `08:31:07.337`, is dropped), or an Excel serial",
                 "a timestamp (`YYYY-MM-DD HH:MM:SS`)"),
    "decimal": ("a number of at most 12 digits before the point and 4 after; thousands separators, "
                "`¥`, `￥`, `元`, `CNY`, `RMB` are dropped", "NUMERIC(16, 4)"),
    "integer": ("a whole number of at most 12 digits; thousands separators, a `km` / `公里` suffix and a "
                "`.0` are dropped", "BIGINT"),
}


def _formats(fmts: list[str]) -> str:
    return ", ".join(f"`{f}`" for f in fmts)


def _code(v: str) -> str:
    return f"`{v}`"


def _values(meta: dict) -> str:
    """The canonical values, each with the built-in words mapped to it."""
    if meta["kind"] not in ("enum", "bool") or not meta["values"]:
        return ""
    words: dict[str, list[str]] = {v: [] for v in meta["values"]}
    for raw, canonical in (meta.get("mapping") or {}).items():
        if canonical in words and raw != canonical:
            words[canonical].append(raw)
    parts = []
    for v, ws in words.items():
        parts.append(_code(v) + (f" ({', '.join(ws)})" if ws else ""))
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _feed_section(feed: FeedDef, profiles: dict[str, Profile]) -> list[str]:
    named = [p for p in profiles.values() if feed.name in p.columns]
    out = [f"## {feed.name}", "",
           f"File token `{feed.token}` (`<Dealer>_{feed.token}_<YYYYMMDD>.csv`), table `{feed.table}`, "
           f"source {feed.source}. Natural key: {', '.join(_code(k) for k in feed.key)} (per dealer).", ""]
    head = ["column", "kind", "rule", "canonical values (words mapped to them)"] + [f"{p.name} header" for p in named]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for c, m in feed.columns.items():
        rule = "key" if m["key"] else ("required" if m["required"] else "optional")
        kind = m["kind"]
        row = [_code(c), kind, rule, _values(m)]
        row += [" / ".join(p.columns[feed.name].get(c, [])) for p in named]
        out.append("| " + " | ".join(_cell(x) for x in row) + " |")
    if not named:
        out += ["Headers: the canonical column names (profile `oem`).", ""]
    return out


def render(profiles: dict[str, Profile] | None = None) -> str:
    """The whole of ``docs/profiles.md`` (Markdown text) for the built-in profiles (or ``profiles``)."""
    profiles = profiles if profiles is not None else load_profiles()
    kinds = sorted({m["kind"] for f in FEEDS.values() for m in f.columns.values()})
    lines = [
        "# Export profiles: the canonical columns and the values they accept",
        "",
        "<!-- generated by `python -m dealersync.schemas.profile_doc > docs/profiles.md` from schemas/feeds.py,",
        "     schemas/profiles/*.toml and schemas/checks.py; tests/schemas/test_profile_doc.py keeps it in step -->",
        "",
        "A profile says how one DMS names its columns, encodes its files and writes its values. The built-in",
        f"profiles are {', '.join(_code(p) for p in profiles)}; an operator adds more, without code, in TOML files",
        "named by the `profile_files` setting (`DEALERSYNC_PROFILE_FILES`):",
        "",
        "```toml",
        "[dms_c]",
        'extends = "dms_a"                  # optional: start from another profile',
        'encoding = "utf-8"',
        'date_formats = ["%d.%m.%Y"]        # tried before the defaults below',
        "require_done_marker = true         # load a file only once <file>.done is there",
        "[dms_c.columns.customers]",
        'customer_id = ["客户ID", "顾客编号"]  # the header, or several aliases, of a canonical column',
        "[dms_c.values.customer_type]        # a raw word -> a canonical value (below), any feed's column",
        '"私人客户" = "PERSON"',
        "```",
        "",
        "A header is matched ignoring white space, letter case and full-width forms; the canonical column",
        "name itself is always accepted as a header. A word of an enumeration column is matched ignoring",
        "letter case; the profile's `values` come on top of the built-in words listed below. The value on the",
        "right of a `values` entry must be one of the column's canonical values, as listed here.",
        "",
        "What happens to a value that does not fit its column: in a `key` or `required` column the row is",
        "quarantined (`dealersync quarantine list`); in an `optional` column the value is blanked and",
        "recorded as a value issue (the row is loaded). Blank cells and the null words "
        + ", ".join(_code(t) for t in checks.NULL_TOKENS if t) + " are blank.",
        "",
        "## What each kind of column accepts",
        "",
        "| kind | accepts | stored as |",
        "|---|---|---|",
    ]
    for k in kinds:
        accepts, stored = KINDS.get(k, ("", ""))
        accepts = accepts.format(dates=_formats(checks.DEFAULT_DATE_FORMATS),
                                 datetimes=_formats(checks.DEFAULT_DATETIME_FORMATS))
        lines.append(f"| {k} | {_cell(accepts)} | {_cell(stored)} |")
    lines.append("")
    lines += ["Key columns of text hold at most 64 characters.", ""]
    for feed in FEEDS.values():
        lines += _feed_section(feed, profiles)
    extra = [(p, col, mapping) for p in profiles.values() for col, mapping in p.values.items()]
    if extra:
        lines += ["## Words the built-in profiles add", ""]
        for p, col, mapping in extra:
            lines.append(f"- {p.name}, `{col}`: " + ", ".join(f"{k} -> `{v}`" for k, v in mapping.items()))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
