"""Write a report's bytes and hand them to the OEM exactly once (architecture: exactly-once effects).

The ``report_upload`` ledger has one row per (report type, period, SHA-256), written *before* anything
is sent, with the idempotency key the portal sees (BODID, uuid5 of type, dealer, period and bytes):

- portal ``/reports`` (only for the kinds its contract accepts: ``CSI_MONTHLY``, ``SSI_MONTHLY``,
  ``SALES_DAILY``): sent while the row is not ``UPLOADED``; a retry after a crash repeats the same key,
  and the portal answers 200 with the first receipt;
- SFTP ``/inbound/<DealerCode>/``: the file is placed in the outbox (temporary name, then rename) and,
  when a pusher is given, pushed at once through the SFTP transfer ledger (same bytes never resent);
  ``sftp`` becomes ``SENT``.

A second run for the same period with the same content finds the row done and sends nothing; corrected
data (other bytes) is a new row, uploaded again (the portal's ``supersedes``).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine

from dealersync.connectors.oem import OemClient
from dealersync.store import surveys as store_uploads
from dealersync.store.tables import OutboxStatus, UploadStatus

NS = uuid.UUID("1b0d9c6a-8f1e-4b52-a5d4-6a7c3e9f2b10")   # the CSI report's namespace: one key space
PORTAL_TYPES = {"CSIMONTH": "CSI_MONTHLY", "SALESDAY": "SALES_DAILY"}
CONTENT_TYPES = {".csv": "text/csv; charset=utf-8",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` under a temporary name and rename; unchanged bytes are left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _row(engine: Engine, kind: str, period: str, sha: str, path: Path, dealer: str, portal: bool, sftp: bool) -> dict:
    with engine.begin() as conn:   # idempotent: the row another run wrote first is read, not overwritten
        return store_uploads.add_upload(
            conn, report_type=kind, period=period, sha256=sha, path=str(path),
            bodid=str(uuid.uuid5(NS, f"report:{kind}:{dealer}:{period}:{sha}")),
            status=(UploadStatus.PREPARED if portal else UploadStatus.NO_PORTAL).value,
            sftp=OutboxStatus.QUEUED.value if sftp else None, created_at=_now())


def publish(engine: Engine, *, kind: str, period: str, dealer: str, data: bytes, out_dir: Path, filename: str,
            client: OemClient | None = None, outbox: Path | None = None,
            push: Callable[[Path], list[dict]] | None = None) -> dict:
    """Write ``out_dir/filename`` and upload it once: to the portal when ``client`` is given and the kind
    has a portal type, to the SFTP outbox when ``outbox`` is given (pushed now when ``push`` is given).

    Returns ``{"file", "sha256", "portal", "sftp", "sent_now"}``: ``portal``/``sftp`` are the ledger's
    statuses (``UPLOADED``, ``NO_PORTAL``, ``SENT``, ``QUEUED`` ...), ``sent_now`` lists what this call
    sent (empty on a second run)."""
    path = write_atomic(Path(out_dir) / filename, data)
    sha = hashlib.sha256(data).hexdigest()
    portal_type = PORTAL_TYPES.get(kind)
    row = _row(engine, kind, period, sha, path, dealer, bool(portal_type), outbox is not None)
    sent: list[str] = []
    if client is not None and portal_type and row["status"] != UploadStatus.UPLOADED.value:
        ans = client.upload_report(portal_type, period, filename, data, row["bodid"],
                                   content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        status = (UploadStatus.UPLOADED if ans.status in (200, 201) else UploadStatus.REJECTED).value
        with engine.begin() as conn:
            store_uploads.set_upload(conn, row["id"], status=status, receipt=json.dumps(ans.body, ensure_ascii=False),
                                     uploaded_at=_now())
        row["status"] = status
        sent.append("portal")
    if outbox is not None and row["sftp"] != OutboxStatus.SENT.value:
        target = write_atomic(Path(outbox) / filename, data)
        status = OutboxStatus.QUEUED.value
        if push is not None:
            push(target)
            status = OutboxStatus.SENT.value
            sent.append("sftp")
        with engine.begin() as conn:
            store_uploads.set_upload(conn, row["id"], sftp=status)
        row["sftp"] = status
    return {"file": str(path), "sha256": sha, "portal": row["status"], "sftp": row["sftp"], "sent_now": sent}
