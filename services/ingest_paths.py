"""Which export files to ingest, and in what order: files and folders as given (names with control
characters and symlinks leading out of their folder refused), the files of the drop folders complete and
not yet in the ledger, business day then parents before children. Part of
:mod:`dealersync.services.ingest`."""
from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from dealersync.connectors.files import EXPORT_SUFFIXES, parse_file_name
from dealersync.errors import BadSourceData
from dealersync.names import check_name, inside, printable, unsafe_reason
from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.profiles import Profile
from dealersync.store import ledger

log = logging.getLogger("dealersync.services.ingest")


FEED_ORDER = [f.token for f in FEEDS.values()]  # FEEDS is declared in load order


def load_order(path: Path):
    """Business day first, then parents before children (customers ... repair orders, lines, claims)."""
    fn = parse_file_name(path.name)
    rank = FEED_ORDER.index(fn.feed_token) if fn.feed_token in FEED_ORDER else len(FEED_ORDER)
    return (fn.business_date or date.min, rank, fn.seq or 0, path.name)


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, and the export files inside given folders (in load order). In a folder, an entry
    whose name carries a control character or a symlink leading out of the folder is refused (a
    warning naming it, escaped); a file given by name with such a name, or a symlink leading out of its own
    folder, raises ``BadSourceData``."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted((f for f in p.iterdir() if f.name.lower().endswith(EXPORT_SUFFIXES)
                               and not f.name.startswith(".") and "_truth_" not in f.name
                               and _acceptable(p, f)), key=load_order))
        else:
            f = p.with_name(check_name(p.name)) if p.name else p
            if f.is_symlink() and not inside(f.parent, f):
                raise BadSourceData(f"refusing {printable(f.name)}: a symbolic link leading out of its folder",
                                    file=printable(f.name), reason="SYMLINK_OUTSIDE")
            out.append(f)
    return out


def _acceptable(folder: Path, f: Path) -> bool:
    if unsafe_reason(f.name):
        log.warning("%s: refusing file %s: %s", folder, printable(f.name), unsafe_reason(f.name))
        return False
    if f.is_symlink() and not inside(folder, f):
        log.warning("%s: refusing %s: a symbolic link leading out of the drop folder", folder, printable(f.name))
        return False
    return f.is_file()


def pending_files(engine: Engine, folders: list[str | Path], *, stable_seconds: float = 10.0,
                  require_done_marker: bool = False) -> list[Path]:
    """Export files in ``folders`` that are complete and not in the ledger yet at this size and mtime.

    Complete: its ``<name>.done`` marker exists when ``require_done_marker`` (the profile's
    ``require_done_marker``), and unchanged for ``stable_seconds`` (the ``stable_seconds`` setting). No
    file is hashed here: the load hashes the bytes it reads (issue #15)."""
    now = time.time()
    out = []
    with engine.connect() as conn:
        for f in expand_paths([d for d in folders if Path(d).is_dir()]):
            if require_done_marker and not f.with_name(f.name + ".done").exists():
                continue
            st = f.stat()
            if stable_seconds and now - st.st_mtime < stable_seconds:
                continue  # still being written
            if ledger.prior_unchanged(conn, str(f.resolve()), st.st_size, st.st_mtime_ns) is not None:
                continue  # same path, size and mtime as a file done or rejected
            if not _named_rejected(conn, f):
                out.append(f)
    return out


def _named_rejected(conn, f: Path) -> bool:
    return ledger.rejected_name(conn, f.name) is not None


def done_marker_required(profiles: dict[str, Profile], profile: str | None) -> bool:
    """Whether local drops wait for their ``.done`` marker: the configured profile says so."""
    prof = profiles.get(profile) if profile else None
    return bool(prof and prof.require_done_marker)
