"""File names we are willing to act on, local (drop folders) and remote (SFTP).

A name arrives from outside (a DMS export job, the OEM's SFTP server). One carrying a line break or
another control character forges log lines and creates local files a person cannot type; one carrying a
path separator or ``..`` walks out of its folder. Both are refused, and the refusal names the file
with those characters escaped (``'a\\nb'``), never as they are.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

from dealersync.errors import BadSourceData

# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides that reorder a name on screen);
# Zl / Zp: the Unicode line and paragraph separators (a log viewer breaks the line there)
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def printable(name: str) -> str:
    """``name`` for a message: quoted, control characters and separators escaped (``repr``-style)."""
    return ascii(name) if unsafe_reason(name) else repr(name)


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` is refused as a file name, or None when it is acceptable."""
    if not name or name in (".", ".."):
        return "empty or a folder reference"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    for ch in name:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            return f"contains the control character U+{ord(ch):04X}"
    return None


def check_name(name: str, what: str = "file name", reason: str = "UNSAFE_NAME") -> str:
    """``name`` unchanged when acceptable; else ``BadSourceData`` naming it escaped."""
    why = unsafe_reason(name)
    if why:
        shown = printable(name)
        raise BadSourceData(f"refusing {what} {shown}: {why}", file=shown, reason=reason)
    return name


def inside(folder: Path, entry: Path) -> bool:
    """True when ``entry`` (a symlink included) resolves to a place inside ``folder``."""
    try:
        entry.resolve(strict=True).relative_to(folder.resolve(strict=True))
        return True
    except (ValueError, OSError, RuntimeError):   # outside, dangling, or a symlink loop
        return False
