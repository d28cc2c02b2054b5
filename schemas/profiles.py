"""Export profiles: how one DMS names its columns, encodes its files and writes its values.

Built-in profiles ship as TOML next to this module; an operator declares more in their own TOML
file(s) (``profile_files`` in the settings), in the same form, without code::

    [dms_c]
    extends = "dms_a"                 # optional: start from another profile
    encoding = "utf-8"
    date_formats = ["%d.%m.%Y"]
    require_done_marker = true
    sheet = "客户档案"                  # workbooks: the sheet to read (default: the first visible one)
    [dms_c.columns.customers]
    customer_id = ["客户ID", "顾客编号"]  # one header or several aliases
    [dms_c.values.customer_type]       # raw word -> canonical value, for a column of any feed
    "私人客户" = "PERSON"
"""
from __future__ import annotations

import copy
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from dealersync.errors import BadSourceData, ConfigurationError

from .feeds import FEEDS

_BUILTIN_DIR = Path(__file__).parent / "profiles"


def header_key(h) -> str:
    """Header comparison key: NFKC (full-width parentheses and letters), no white space, lower case."""
    s = unicodedata.normalize("NFKC", "" if h is None else str(h))
    return "".join(s.split()).lower().lstrip("\ufeff")


@dataclass
class Profile:
    name: str
    description: str = ""
    encoding: str = "utf-8"
    date_formats: list[str] = field(default_factory=list)
    require_done_marker: bool = False
    sheet: str | None = None   # workbooks: the sheet to read (default: the first visible one)
    columns: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # feed -> canonical -> aliases
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> raw -> canonical

    def aliases(self, feed: str) -> dict[str, str]:
        """header key -> canonical column, for one feed (the canonical name itself is always an alias)."""
        out = {header_key(c): c for c in FEEDS[feed].columns}
        for canonical, names in self.columns.get(feed, {}).items():
            for n in names:
                out[header_key(n)] = canonical
        return out


_TYPES = {"extends": (str, "a profile name (text)"), "description": (str, "text"), "encoding": (str, "an encoding name "
          "(text, e.g. \"gb18030\")"), "require_done_marker": (bool, "true or false"),
          "date_formats": (list, "a list of strptime formats, e.g. [\"%d.%m.%Y\"]"),
          "sheet": (str, "a sheet name (text): the workbook sheet to read"),
          "columns": (dict, "a table of feeds"), "values": (dict, "a table of columns")}


def _check_types(name: str, d: dict, origin: str) -> None:
    """Every key of a profile table known and of its type: a malformed profile is one clear
    ConfigurationError naming the file, the profile and the key (never a KeyError or TypeError)."""
    where = f"{origin}: profile {name!r}"
    for key, value in d.items():
        if key not in _TYPES:
            raise ConfigurationError(f"{where}: unknown key {key!r} (one of {', '.join(sorted(_TYPES))})")
        typ, words = _TYPES[key]
        if not isinstance(value, typ):
            raise ConfigurationError(f"{where}: {key} = {value!r} must be {words}")
    if not all(isinstance(f, str) for f in d.get("date_formats", [])):
        raise ConfigurationError(f"{where}: date_formats must be a list of text formats")
    for feed, cols in (d.get("columns") or {}).items():
        if not isinstance(cols, dict):
            raise ConfigurationError(f"{where}: columns.{feed} must be a table of column = header(s)")
        for canonical, aliases in cols.items():
            if not (isinstance(aliases, str) or (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases))):
                raise ConfigurationError(f"{where}: columns.{feed}.{canonical} must be a header or a list of headers")
    for column, mapping in (d.get("values") or {}).items():
        if not isinstance(mapping, dict):
            raise ConfigurationError(f"{where}: values.{column} must be a table of raw word = canonical value")


def _from_dict(name: str, d: dict, known: dict[str, Profile], origin: str) -> Profile:
    _check_types(name, d, origin)
    parent = d.get("extends")
    if parent == name:
        raise ConfigurationError(f"{origin}: profile {name!r} extends itself")
    if parent and parent not in known:
        raise ConfigurationError(f"{origin}: profile {name!r} extends unknown profile {parent!r} (known: "
                                 f"{', '.join(sorted(known))}; a profile must be declared before one that extends it)")
    base = copy.deepcopy(known[parent]) if parent else Profile(name)
    base.name = name
    for attr in ("description", "encoding", "require_done_marker", "sheet"):
        if attr in d:
            setattr(base, attr, d[attr])
    if "date_formats" in d:
        base.date_formats = list(d["date_formats"])
    for feed, cols in (d.get("columns") or {}).items():
        if feed not in FEEDS:
            raise ConfigurationError(f"{origin}: profile {name!r} names unknown feed {feed!r}")
        target = base.columns.setdefault(feed, {})
        for canonical, aliases in cols.items():
            if canonical not in FEEDS[feed].columns:
                raise ConfigurationError(
                    f"{origin}: profile {name!r}, feed {feed}: unknown column {canonical!r}")
            target[canonical] = [aliases] if isinstance(aliases, str) else list(aliases)
    for column, mapping in (d.get("values") or {}).items():
        base.values.setdefault(column, {}).update({str(k): str(v) for k, v in mapping.items()})
    try:
        "".encode(base.encoding)
    except LookupError:
        raise ConfigurationError(f"{origin}: profile {name!r}: unknown encoding {base.encoding!r}") from None
    return base


def _load_file(path: Path, known: dict[str, Profile]) -> None:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"profile file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"profile file {path}: not valid TOML: {e}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"profile file {path} is a folder, not a TOML file") from None
    for name, d in data.items():
        if not isinstance(d, dict):
            raise ConfigurationError(f"profile file {path}: top-level {name!r} is not a profile table")
        known[name] = _from_dict(name, d, known, str(path))


def load_profiles(extra_files: list[Path] | tuple = ()) -> dict[str, Profile]:
    known: dict[str, Profile] = {}
    for p in sorted(_BUILTIN_DIR.glob("*.toml")):
        _load_file(p, known)
    for p in extra_files:
        _load_file(Path(p), known)
    return known


# ------------------------------------------------------------------------------------ matching a header

@dataclass
class HeaderMatch:
    """What a file's header says under the profile it matches best: that profile, the position of each
    canonical column in the file's rows, the warnings (unknown, duplicated, optional columns absent) and
    the required columns it lacks (the file is rejected when any)."""
    profile: Profile
    positions: dict[str, int]
    warnings: list[str]
    missing: list[str]

    def missing_error(self, feed_name: str, file_name: str) -> BadSourceData | None:
        """The rejection of a header without a required column (None when it has them all)."""
        if not self.missing:
            return None
        col = self.missing[0]
        names = self.profile.columns.get(feed_name, {}).get(col, []) or [col]
        return BadSourceData(f"missing required column {col} (header {' / '.join(names)}); "
                             f"the file is rejected, nothing was loaded",
                             file=file_name, row=None, column=names[0], reason="MISSING_COLUMN")


class HeaderMatcher:
    """Matches header rows of one feed's file against the profiles' column aliases, in one place: the
    reader asks :meth:`score` of each candidate row to find the header, and :meth:`match` of the header
    found gives the profile and the column map from the same overlap (each row's overlap with every
    profile is computed once). ``wanted``: the profile named by the operator (``--profile``)."""

    def __init__(self, feed, profiles: dict[str, Profile], wanted: str | None = None):
        self.feed, self.profiles, self.wanted = feed, profiles, wanted
        self.candidates = [profiles[wanted]] if wanted and wanted in profiles else list(profiles.values())
        self._aliases = {name: p.aliases(feed.name) for name, p in profiles.items()}
        self._overlaps: dict[frozenset, dict[str, int]] = {}

    def _overlap(self, keys: frozenset) -> dict[str, int]:
        """{profile name: how many of the row's header keys are its aliases}."""
        if keys not in self._overlaps:
            self._overlaps[keys] = {name: len(keys & a.keys()) for name, a in self._aliases.items()}
        return self._overlaps[keys]

    def score(self, cells: list[str]) -> int:
        """How well a row reads as this feed's header: its best overlap among the candidate profiles
        (0 for a row of fewer than two distinct cells)."""
        keys = frozenset(header_key(c) for c in cells)
        if len(keys) <= 1:
            return 0
        overlap = self._overlap(keys)
        return max(overlap[p.name] for p in self.candidates)

    def choose(self, header: list[str]) -> Profile:
        """The profile of a header: the one wanted, else ``oem`` for an OEM feed, else the best overlap
        (the first declared on a tie)."""
        if self.wanted:
            if self.wanted not in self.profiles:
                raise ConfigurationError(f"unknown profile {self.wanted!r}; known: {', '.join(sorted(self.profiles))}")
            return self.profiles[self.wanted]
        if self.feed.source == "OEM" and "oem" in self.profiles:
            return self.profiles["oem"]
        overlap = self._overlap(frozenset(header_key(h) for h in header))
        return max(self.profiles.values(), key=lambda p: overlap[p.name])

    def match(self, header: list[str]) -> HeaderMatch:
        """The header's profile (:meth:`choose`) and its column map under that profile: the first column
        of each canonical name counts; an unknown or repeated header is a warning."""
        profile = self.choose(header)
        aliases = self._aliases[profile.name]
        positions: dict[str, int] = {}
        warnings: list[str] = []
        for i, h in enumerate(header):
            key = header_key(h)
            if not key:
                continue
            canonical = aliases.get(key)
            if canonical is None:
                warnings.append(f"unknown column {h!r} (column {i + 1}) ignored")
            elif canonical in positions:
                warnings.append(f"duplicated header {h!r}: column {i + 1} ignored, column "
                                f"{positions[canonical] + 1} used for {canonical}")
            else:
                positions[canonical] = i
        missing = [c for c in self.feed.required if c not in positions]
        absent = [c for c in self.feed.columns if c not in positions]
        if absent and not missing:
            warnings.append(f"optional columns absent: {', '.join(absent)}")
        return HeaderMatch(profile, positions, warnings, missing)
