"""Ingest one export file into the store: read in chunks, validate, load or quarantine, ledger.

Plain Python (no Prefect): the flow in ``flows/ingest.py`` wraps :func:`ingest_file` in a task.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from dealersync.connectors.files import Batch, ReadLimits, open_table, parse_file_name
from dealersync.schemas.feeds import FeedDef, get_feed
from dealersync.schemas.profiles import HeaderMatcher, Profile, load_profiles
from dealersync.schemas.validate import validate_chunk
from dealersync.store import ledger
from dealersync.store import repository as repo

from dealersync.config import get_settings
from dealersync.errors import BadSourceData, ConfigurationError, ValueRefused
from dealersync.runtime import tune_memory
# the files to ingest and the result of one live beside this module; importable from here too
from dealersync.services.ingest_paths import FEED_ORDER, done_marker_required, expand_paths  # noqa: F401
from dealersync.services.ingest_paths import load_order, pending_files  # noqa: F401
from dealersync.services.ingest_result import FileResult, busy, fail, reject
from dealersync.services.pipeline import ChunkWriter, Phases, Prefetch  # noqa: F401  (importable from here too)

log = logging.getLogger("dealersync.services.ingest")


def read_limits(settings=None) -> ReadLimits:
    """The reader's size limits from ``settings`` (default: the current settings; issue #15: a file over
    one is refused)."""
    s = settings or get_settings()
    return ReadLimits(s.max_workbook_bytes, s.max_workbook_cells, s.max_line_bytes)


def _process_chunk(batch: Batch, table, feed, profile, positions: dict[str, int], file_name):
    raw = pl.DataFrame([pl.Series(col, batch.columns[pos]) for col, pos in positions.items()])
    return validate_chunk(raw, batch.rownums, feed, profile, source_file=file_name, header=table.header,
                          raw_cells=batch.cells_of, bad_structure=batch.bad,
                          undecodable=table.is_workbook or table.stats.undecodable_lines > 0)


def ingest_file(engine: Engine, path: str | Path, *, feed: str | None = None, profile: str | None = None,
                dealer: str | None = None, profiles: dict[str, Profile] | None = None, chunk_rows: int = 200_000,
                default_dealer: str = "UNKNOWN", force: bool = False, progress=None,
                stale_seconds: float = 3600.0, limits: ReadLimits | None = None) -> FileResult:
    """Load or quarantine every row of one file. Idempotent: the same bytes again are a no-op (``force``
    re-reads them, e.g. after a profile change, and the new load replaces the old); a corrected
    re-export of the same dealer, feed and business day replaces that day's rows, decided by the
    export's sequence number then its mtime, whatever the arrival order. The whole load is one
    transaction: a crash leaves the previous state intact.

    One process per load (issue #15): the load is claimed in the ledger first; another process's live
    claim answers ``status="busy"``, a dead one's (killed process; ``stale_seconds`` where liveness
    cannot be seen) is taken over. The ledger's SHA-256 is of the bytes the reader read, with size and
    mtime checked before and after: a file that changed meanwhile is FAILED (tried again once stable).
    A value the database refuses fails this file only (``status="failed"``, ledger FAILED, reason
    VALUE_REFUSED naming file, row and column); the ledger row never stays LOADING. ``limits``: the
    reader's size limits (default: the settings ``max_workbook_bytes``, ``max_workbook_cells``,
    ``max_line_bytes``); a file over one is rejected with a message naming the setting."""
    t0 = time.monotonic()
    tune_memory()
    path = Path(path)
    res = FileResult(file=path.name, path=str(path))
    fname = parse_file_name(path.name)
    if not path.is_file():
        raise BadSourceData("no such file", file=str(path), reason="NO_FILE")
    fd = get_feed(feed) if feed else _feed_of_name(fname.feed_token)
    res.feed = fd.name if fd else None
    res.dealer = (dealer or fname.dealer or default_dealer).upper()
    bdate: date | None = fname.business_date
    res.business_date = bdate.isoformat() if bdate else None
    profiles = profiles if profiles is not None else load_profiles()

    st = path.stat()
    rpath = str(path.resolve())
    key = ledger.claim_key(rpath)
    # a rejected file is tried again when the operator says more about it (--feed, --profile) or forces it
    retry_rejected = force or bool(feed) or bool(profile)
    with ledger.load_lock(engine, key) as free:
        if free is False:
            return busy(res, "another process", None, t0)
        with engine.begin() as conn:
            prior = _settled(conn, res, path, rpath, st, force, retry_rejected)
            if res.status != "pending":
                res.seconds = round(time.monotonic() - t0, 3)
                return res

            def alive(row) -> bool:
                return not free and ledger.holder_alive(row["claimed_by"], row["claimed_at"], stale_seconds)
            claim = ledger.claim_load(conn, key=key, alive=alive, path=rpath, file_name=path.name[:255],
                                      size=st.st_size, mtime_ns=st.st_mtime_ns, source=fd.source if fd else "DMS",
                                      feed=res.feed, dealer_code=res.dealer if len(res.dealer) <= MAX_DEALER else None,
                                      business_date=bdate, export_seq=fname.seq)
        if claim.load_id is None:
            return busy(res, claim.holder, claim.since, t0)
        res.load_id = claim.load_id
        also = (prior["id"],) if prior is not None and prior["status"] == "LOADED" else ()
        try:
            return _ingest_claimed(engine, res, path, st, fd, bdate, fname.seq, profiles, profile, chunk_rows,
                                   progress, force, also, t0, limits)
        except ValueRefused as e:
            return fail(engine, res, e.reason, str(e), t0)
        except BaseException as e:   # never left LOADING; a refusal outside a chunk's write fails the file only
            err = repo.refused(e, path.name) if isinstance(e, Exception) else e
            if isinstance(err, ValueRefused):
                return fail(engine, res, err.reason, str(err), t0)
            fail(engine, res, "ERROR", f"{type(e).__name__} while loading {path.name}", t0)
            raise


def _feed_of_name(token: str | None) -> FeedDef | None:
    """The feed a file name's token names, or None (an unknown token is the file's fault: a name rejection)."""
    try:
        return get_feed(token) if token else None
    except ConfigurationError:
        return None


MAX_DEALER = 32   # ingest_file.dealer_code and the feed tables' lineage column


class _Changed(Exception):
    """The file changed while it was read."""


class _Duplicate(Exception):
    """The bytes read are already loaded (found once the read ended)."""

    def __init__(self, prior):
        super().__init__(prior["id"])
        self.prior = prior


def _settled(conn, res: FileResult, path: Path, rpath: str, st, force: bool, retry_rejected: bool):
    """Answer from the ledger without reading the file when it already says what to do: the same path
    at the same size and mtime done (skipped) or rejected (rejected before), or this name rejected for
    its name (keyed on the name: a correctly renamed copy loads). Returns the prior row, if any."""
    prior, named = ledger.prior_unchanged(conn, rpath, st.st_size, st.st_mtime_ns), None
    if prior is not None and prior["status"] in ledger.DONE_STATUSES and not force:
        res.status = "skipped"
        res.message = f"same bytes already ingested as load {prior['id']} ({prior['file_name']}, {prior['status']})"
    elif not retry_rejected:
        named = ledger.rejected_name(conn, path.name)
        if prior is not None and prior["status"] == "REJECTED" and prior["reason"] not in ledger.NAME_REASONS:
            named = prior
        if named is not None:
            res.status = "rejected"
            res.message = f"rejected before (load {named['id']}): {named['message']}"
    if res.status != "pending":
        res.load_id = prior["id"] if prior is not None and res.status == "skipped" else (
            named["id"] if res.status == "rejected" else None)
    return prior


def _ingest_claimed(engine: Engine, res: FileResult, path: Path, st, fd: FeedDef | None, bdate: date | None,
                    seq: int | None, profiles: dict[str, Profile], profile: str | None, chunk_rows: int, progress,
                    force: bool, also: tuple[int, ...], t0: float, limits: ReadLimits | None = None) -> FileResult:
    load_id = res.load_id
    if fd is None:
        return reject(engine, res, BadSourceData(
            "cannot tell the feed from the file name (<Dealer>_<FEED>_<YYYYMMDD>.csv); give --feed",
            file=path.name, reason="UNKNOWN_FEED"), t0)
    if len(res.dealer) > MAX_DEALER:
        return reject(engine, res, BadSourceData(
            f"the dealer code is {len(res.dealer)} characters long; at most {MAX_DEALER} are stored "
            "(rename the file or give --dealer)", file=path.name, column="dealer_code", reason="BAD_NAME"), t0)
    if fd.dated and bdate is None:
        return reject(engine, res, BadSourceData(
            f"a {fd.token} file is a daily snapshot: its name must carry the business day "
            f"(<Dealer>_{fd.token}_<YYYYMMDD>.csv)", file=path.name, reason="NO_BUSINESS_DATE"), t0)

    try:
        # the header is matched to the profiles once: the reader finds the header row by its score, and the
        # same match gives the profile and the column map
        matcher = HeaderMatcher(fd, profiles, profile)
        sheets = [p.sheet for p in matcher.candidates if p.sheet]
        table = open_table(path, matcher.score, sheets=sheets, limits=limits or read_limits())
    except BadSourceData as e:
        return reject(engine, res, e, t0)
    try:
        match = matcher.match(table.header)
        prof = match.profile
        res.profile, res.encoding, res.sheet = prof.name, table.encoding, table.sheet
        missing = match.missing_error(fd.name, path.name)
        if missing is not None:
            missing.row, missing.file = table.header_row, table.where
            return reject(engine, res, missing, t0)
        file_warnings = list(table.notes) + list(match.warnings)
        if table.title_rows:
            file_warnings.append(f"title row(s) {', '.join(map(str, table.title_rows))} above the header skipped")
        if table.encoding and prof.encoding and table.encoding.replace("-sig", "") != prof.encoding.lower():
            file_warnings.append(f"profile {prof.name} says {prof.encoding}, content is {table.encoding}")
        read = ReadCheck(path, st, table, force)
        try:
            _load(engine, res, table, fd, prof, match.positions, path, bdate, load_id, chunk_rows, progress, file_warnings, t0,
                  seq=seq, mtime_ns=st.st_mtime_ns, also=also, read=read)
        except BadSourceData as e:  # structure broken mid-file: the transaction rolled back, nothing loaded
            if isinstance(e, ValueRefused):
                raise
            return reject(engine, res, e, t0)
        except _Changed as e:
            return fail(engine, res, "CHANGED_DURING_READ", f"{path.name}: {e}; nothing was loaded, the file is "
                         "tried again once it is stable", t0)
        except _Duplicate as e:
            res.rows_read = res.rows_loaded = res.rows_quarantined = res.rows_superseded = res.value_issues = 0
            res.warnings = 0
            res.status = "skipped"
            res.message = (f"same bytes already ingested as load {e.prior['id']} ({e.prior['file_name']}, "
                           f"{e.prior['status']})")
            with engine.begin() as conn:   # the claim loaded nothing: it leaves no trace
                ledger.release(conn, load_id)
                if e.prior["path"] == str(path.resolve()):   # touched, same bytes: remember the new mtime
                    ledger.touch(conn, e.prior["id"], size=st.st_size, mtime_ns=st.st_mtime_ns)
            res.load_id = e.prior["id"]
            res.seconds = round(time.monotonic() - t0, 3)
            return res
    finally:
        table.close()
    log.info("%s: %s, read %d, loaded %d, quarantined %d", table.where, res.status, res.rows_read,
             res.rows_loaded, res.rows_quarantined)
    return res


class ReadCheck:
    """What the ledger records of the read: the SHA-256 of the bytes the reader read (``table.digest()``)
    and the file's size, mtime and inode, the same before and after. ``verify(conn, load_id)`` raises
    ``_Changed`` when the file changed during the read, ``_Duplicate`` when these bytes are loaded
    already (unless forced)."""

    def __init__(self, path: Path, st, table, force: bool):
        self.path, self.st, self.table, self.force = path, st, table, force
        self.sha256: str | None = None

    def verify(self, conn, load_id: int) -> str:
        sha, nread = self.table.digest()
        self.sha256 = sha
        try:
            after = self.path.stat()
        except OSError:
            raise _Changed("the file disappeared while it was read") from None
        before = self.st
        if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino) \
                or nread != before.st_size:
            raise _Changed(f"the file changed while it was read ({before.st_size} bytes before, {nread} read, "
                           f"{after.st_size} after)")
        if not self.force:
            dup = ledger.find_by_sha(conn, sha, ledger.DONE_STATUSES, exclude=load_id)
            if dup is not None:
                raise _Duplicate(dup)
        return sha


def _load(engine, res: FileResult, table, fd: FeedDef, prof: Profile, positions: dict[str, int], path: Path,
          bdate: date | None, load_id: int, chunk_rows: int, progress, file_warnings: list[str], t0: float, *,
          seq: int | None, mtime_ns: int | None, also: tuple[int, ...], read: "ReadCheck") -> None:
    """Stream, validate and write the file in one transaction; fills ``res``.

    The rows of a corrected re-export's earlier load go first; then each chunk is validated while the
    previous one is written (on PostgreSQL the write runs on its own thread, so parsing and validating
    overlap with the server's COPY); superseded rows and mileage warnings are recorded at the end."""
    reasons: Counter = Counter()
    phase = Phases()
    vins = repo.RepeatedValues("vin", where="mileage_km")
    with engine.begin() as conn:
        lineage = repo.Lineage(res.dealer, bdate, path.name, load_id, repo.now())
        with phase("replace"):
            ledger.lock_day(conn, res.dealer, fd.name, bdate)
            rep = ledger.replace_day(conn, feed=fd.name, dealer_code=res.dealer, business_date=bdate,
                                     load_id=load_id, seq=seq, mtime_ns=mtime_ns, also=also)
            res.replaced_loads = rep.replaced
        if rep.superseded_by is not None:   # a later export of the day is loaded: this one adds nothing
            sha = read.verify(conn, load_id)
            res.status = "replaced"
            res.message = (f"a later export of the same day is already loaded (load {rep.superseded_by}); "
                           "nothing of this file was loaded")
            res.profile, res.seconds = prof.name, round(time.monotonic() - t0, 3)
            ledger.finish_load(conn, load_id, "REPLACED", replaced_by=rep.superseded_by, sha256=sha,
                               profile=prof.name, encoding=table.encoding, message=res.message,
                               duration_ms=int(res.seconds * 1000))
            return
        stage: list = []

        def staging():
            if not stage:
                stage.append(repo.create_stage(conn, fd, load_id))
            return stage[0]

        def write(out) -> int:
            with phase("write"):
                repo.add_quarantine(conn, load_id, out.quarantine)
                repo.add_issues(conn, load_id, fd.name, res.dealer, out.issues)
                superseded = repo.write_chunk(conn, fd, out.frame, lineage, staging)
                repo.add_warnings(conn, superseded)
            return len(superseded)

        threaded = conn.dialect.name == "postgresql"
        with ChunkWriter(write, threaded=threaded) as writer, \
                Prefetch(table.batches(chunk_rows)) as batches:
            for batch in phase.timed(batches, "read"):
                with phase("validate"):
                    out = _process_chunk(batch, table, fd, prof, positions, path.name)
                res.rows_read += len(batch)
                res.rows_quarantined += len(out.quarantine)
                res.value_issues += len(out.issues)
                reasons.update(q["reason_code"] for q in out.quarantine)
                reasons.update(i["reason_code"] for i in out.issues)
                writer.submit(out)
                vins.add(out.frame)
                if progress:
                    progress(res)
            with phase("row_rules"):
                repeated = vins.repeated()   # while the last chunk is written
        res.rows_superseded = writer.total
        with phase("row_rules"):
            res.warnings = res.rows_superseded + repo.mileage_warnings(
                conn, fd, lineage, res.rows_read - res.rows_quarantined, repeated)
        if stage:
            repo.drop_stage(conn, stage[0])
        if res.rows_superseded:
            reasons["SUPERSEDED"] += res.rows_superseded
        res.timings = phase.summary()
        res.rows_loaded = res.rows_read - res.rows_quarantined
        res.status = "loaded"
        res.file_warnings = file_warnings + _decode_warnings(table)
        res.top_reasons = dict(reasons.most_common(5))
        sha = read.verify(conn, load_id)
        res.seconds = round(time.monotonic() - t0, 3)
        ledger.finish_load(conn, load_id, "LOADED", sha256=sha, profile=prof.name, encoding=table.encoding,
                         rows_read=res.rows_read, rows_loaded=res.rows_loaded,
                         rows_quarantined=res.rows_quarantined, rows_superseded=res.rows_superseded,
                         value_issues=res.value_issues, warnings=res.warnings,
                         file_warnings=json.dumps(res.file_warnings, ensure_ascii=False),
                         timings=json.dumps(res.timings), duration_ms=int(res.seconds * 1000),
                         message=f"{len(res.replaced_loads)} earlier load(s) of the day replaced"
                         if res.replaced_loads else None)


def _decode_warnings(table) -> list[str]:
    st, out = table.stats, []
    if st.fallback_lines - st.undecodable_lines:
        other = "UTF-8" if (table.encoding or "").startswith("gb") else "GB18030"
        out.append(f"{st.fallback_lines - st.undecodable_lines} line(s) were {other}, not {table.encoding}, "
                   f"and were read as {other}")
    if st.undecodable_lines:
        out.append(f"{st.undecodable_lines} line(s) hold bytes that are neither UTF-8 nor GB18030 "
                   "(see ENCODING_ERROR issues)")
    return out
