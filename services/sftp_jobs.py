"""Pull the OEM's (and the DMS's) drops from SFTP into the ingestion, push reports to the OEM inbox.

Plain Python; ``flows/sftp.py`` wraps these in Prefect. Every transfer is recorded in the
``sftp_transfer`` ledger only once it is complete, so a crash or a retry repeats the transfer
at most, never half of it: a file already pulled (same remote path, size and mtime) is not
downloaded again, identical bytes already pushed are not sent again.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from dealersync.connectors.files import EXPORT_SUFFIXES, sha256_of
from dealersync.connectors.sftp import RemoteFile, SftpConnector
from dealersync.schemas.feeds import DMS_FEEDS, OEM_FEEDS
from dealersync.schemas.profiles import load_profiles
from dealersync.store import repository as repo
from dealersync.store.tables import TransferStatus

from dealersync.retry import Backoff, retrying
from dealersync.services.ingest import ingest_file, load_order

log = logging.getLogger("dealersync.sftp")

SFTP_RETRY = Backoff(attempts=3, base=1.0, cap=30.0, deadline=3600.0)
"""A dropped SFTP download: waits of up to 1 s, 2 s... (jittered), and no wait past an hour from the first try."""


def feed_patterns(dealer: str, tokens: list[str]) -> list[str]:
    return [f"{dealer}_{t}_*{ext}" for t in tokens for ext in EXPORT_SUFFIXES]


def stable_files(session, folder: str, patterns: list[str], *, stable_seconds: float,
                 require_done_marker: bool = False, sleep=time.sleep) -> list[RemoteFile]:
    """Files whose size and mtime did not change over ``stable_seconds`` (a file still being
    written is left for the next run), and that carry their ``.done`` marker when required."""
    first = session.list(folder, patterns)
    if stable_seconds > 0 and first:
        sleep(stable_seconds)
        again = {(f.name, f.size, f.mtime) for f in session.list(folder, patterns)}
        first = [f for f in first if (f.name, f.size, f.mtime) in again]
    if require_done_marker:
        markers = {f.name for f in session.list(folder, [p + ".done" for p in patterns])}
        first = [f for f in first if f.name + ".done" in markers]
    return first


def pull(engine: Engine, connector: SftpConnector, *, dealer: str, local_dir: Path, tokens: list[str] | None = None,
         folder: str | None = None, stable_seconds: float = 5.0, require_done_marker: bool = False,
         attempts: int = 3, ingest: bool = True, profiles=None, chunk_rows: int = 200_000,
         workers: int = 2, retry: Backoff | None = None, sleep=time.sleep) -> list[dict]:
    """Download new stable drops of ``dealer`` and ingest them. Returns one dict per file. A dropped
    connection is retried by ``retry`` (default ``SFTP_RETRY`` with ``attempts`` tries): the one backoff
    policy of ``dealersync.retry``, jittered and bounded by its deadline."""
    retry = retry or replace(SFTP_RETRY, attempts=attempts)
    tokens = tokens or [f.token for f in OEM_FEEDS]
    host = connector.settings.host
    results = []
    with connector.session() as ses:
        remote_folder = folder or ses.remote("outbound", dealer)
        candidates = stable_files(ses, remote_folder, feed_patterns(dealer, tokens), stable_seconds=stable_seconds,
                                  require_done_marker=require_done_marker)
    with engine.connect() as conn:
        todo = [f for f in candidates if not repo.pulled_before(conn, host, f.path, f.size, f.mtime)]
    todo.sort(key=lambda f: load_order(Path(f.name)))
    local = threading.local()
    downloaders: list[_Downloader] = []

    def fetch(f: RemoteFile):
        d = getattr(local, "downloader", None)
        if d is None:
            d = local.downloader = _Downloader(connector, retry, sleep)
            downloaders.append(d)
        t0, started = time.monotonic(), repo.now()
        path, sha = d.download(f, local_dir)
        return f, path, sha, started, t0

    # transfers overlap (each worker its own session); ingestion and the ledger stay in file order
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sftp") as pool:
            for f, path, sha, started, t0 in pool.map(fetch, todo):
                results.append(_record_pull(engine, f, path, sha, started, t0, host, dealer, ingest, profiles,
                                            chunk_rows))
    finally:
        for d in downloaders:
            d.close()
    return results


def _record_pull(engine, f: RemoteFile, path: Path, sha: str, started: datetime, t0: float, host: str, dealer: str,
                 ingest: bool, profiles, chunk_rows: int) -> dict:
    res = ingest_file(engine, path, dealer=dealer, profiles=profiles, chunk_rows=chunk_rows) if ingest else None
    with engine.begin() as conn:
        repo.record_transfer(conn, direction="PULL", host=host, remote_path=f.path, size=f.size,
                             remote_mtime=f.mtime, sha256=sha, local_path=str(path),
                             load_id=res.load_id if res else None, status=TransferStatus.DONE.value, started_at=started,
                             finished_at=repo.now(),
                             seconds=round(time.monotonic() - t0, 3))
    log.info("pulled %s (%d bytes)", f.path, f.size)
    return {"file": f.name, "remote": f.path, "size": f.size, "sha256": sha, "local": str(path),
            "ingest": res.to_json() if res else None}


class _Downloader:
    """One SFTP session for a whole pull; a dropped connection is reopened and the file
    downloaded again from the start (never resumed into a possibly corrupt temp file)."""

    def __init__(self, connector: SftpConnector, policy: Backoff, sleep=time.sleep):
        self.connector, self.policy, self.sleep, self.session = connector, policy, sleep, None

    def download(self, f: RemoteFile, local_dir: Path):
        def once():
            if self.session is None:
                self.session = self.connector.session()
            return self.session.download(f, local_dir)
        return retrying(once, self.policy, what=f"download {f.name}", on_failure=lambda e: self.close(),
                        sleep=self.sleep)

    def close(self):
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # noqa: BLE001  (closing a dead connection)
                pass
            self.session = None


def push(engine: Engine, connector: SftpConnector, files: list[Path], *, dealer: str,
         folder: str | None = None) -> list[dict]:
    """Upload reports to ``/inbound/<dealer>/``; identical bytes already uploaded are skipped."""
    host = connector.settings.host
    results = []
    with connector.session() as ses:
        remote_dir = folder or ses.remote("inbound", dealer)
        for f in files:
            f = Path(f)
            sha = sha256_of(f)
            target = f"{remote_dir.rstrip('/')}/{f.name}"
            with engine.connect() as conn:
                prior = repo.pushed_before(conn, host, target, sha)
            if prior is not None:
                results.append({"file": f.name, "remote": target, "status": "skipped", "sha256": sha,
                                "receipt": str(prior["finished_at"])})
                continue
            t0 = time.monotonic()
            started = repo.now()
            ses.upload(f, remote_dir)
            finished = repo.now()
            with engine.begin() as conn:
                repo.record_transfer(conn, direction="PUSH", host=host, remote_path=target, size=f.stat().st_size,
                                     remote_mtime=None, sha256=sha, local_path=str(f), load_id=None,
                                     status=TransferStatus.DONE.value,
                                     started_at=started, finished_at=finished, seconds=round(time.monotonic() - t0, 3))
            results.append({"file": f.name, "remote": target, "status": "uploaded", "sha256": sha,
                            "receipt": str(finished)})
    return results


def pull_all(engine: Engine, connector: SftpConnector, settings) -> list[dict]:
    """The configured pulls: the OEM's drops from ``/outbound/<dealer>/`` and, when
    ``sftp_dms_folder`` is set, the DMS exports from there."""
    profiles = load_profiles(settings.profile_files)

    def marker(profile_name: str | None) -> bool:  # the setting, or the profile's own rule
        prof = profiles.get(profile_name or "")
        return settings.sftp_require_done_marker or bool(prof and prof.require_done_marker)
    common = dict(dealer=settings.dealer_code, local_dir=settings.sftp_inbox, stable_seconds=settings.sftp_stable_seconds,
                  profiles=profiles, chunk_rows=settings.chunk_rows)
    results = pull(engine, connector, require_done_marker=marker("oem"), **common)
    if settings.sftp_dms_folder:
        results += pull(engine, connector, tokens=[f.token for f in DMS_FEEDS], folder=settings.sftp_dms_folder,
                        require_done_marker=marker(settings.profile), **common)
    return results
