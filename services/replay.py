"""``quarantine replay FILE.xlsx``: load corrected quarantine rows back (issue #19 item 3).

The workbook is the one ``quarantine list --xlsx`` wrote: each ``修正-<feed>`` sheet holds quarantined
rows under their original headers, after four lineage columns (编号 = quarantine id, 文件, 行号, 原因).
Each row goes through the same normalisation and checks as at ingestion (:func:`validate_chunk` with
the original load's profile) and is stored with its original lineage (source file and row, dealer,
business day) under a new ledger entry for the workbook; a row that still fails is quarantined again
(new record, same file and row) and the old record is marked resolved either way, so the list shows
only what is still open. A personal cell left masked (``138****5678``) goes back as the original raw
value; replaying the same workbook bytes again is a no-op (the ledger's SHA-256).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from openpyxl import load_workbook
from sqlalchemy import Engine

from dealersync.connectors.files import sha256_of
from dealersync.errors import BadSourceData
from dealersync.schemas.feeds import FEEDS
from dealersync.schemas.profiles import header_key, load_profiles
from dealersync.schemas.validate import validate_chunk
from dealersync.privacy import mask_text
from dealersync.services.worklists import mask_value
from dealersync.store import ledger
from dealersync.store import repository as repo

LINEAGE_HEADERS = 4


def _read_sheets(path: Path) -> dict[str, list[dict]]:
    """feed -> [{id, cells: {header: text}}] from the ``修正-`` sheets."""
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable workbook is bad input
        raise BadSourceData(f"not a workbook written by `quarantine list --xlsx`: {type(e).__name__}",
                            file=path.name) from None
    out: dict[str, list[dict]] = {}
    for ws in wb.worksheets:
        if not ws.title.startswith("修正-"):
            continue
        feed = ws.title[3:]
        rows = list(ws.iter_rows(values_only=True))
        head_at = next((i for i, r in enumerate(rows) if r and str(r[0] or "").startswith("编号")), None)
        if head_at is None:
            raise BadSourceData("no header row starting 编号", file=path.name, column=ws.title)
        headers = [str(h) for h in rows[head_at] if h is not None]
        for i, r in enumerate(rows[head_at + 1:], start=head_at + 2):
            if not r or r[0] is None or not str(r[0]).strip().isdigit():
                continue
            cells = {h: (None if v is None else str(v)) for h, v in zip(headers[LINEAGE_HEADERS:], r[LINEAGE_HEADERS:])}
            out.setdefault(feed, []).append({"id": int(r[0]), "sheet_row": i, "cells": cells})
    if not out:
        raise BadSourceData("no 修正- sheet with rows to replay", file=path.name)
    return out


def _restore(original: dict, edited: dict) -> dict:
    """Cells left as the list showed them masked are taken from the original raw row."""
    cells = {}
    for h, v in edited.items():
        raw = original.get(h)
        masked = v is not None and raw is not None and v != raw and v in (mask_value("name", raw), mask_text(str(raw)))
        cells[h] = raw if masked else v
    return cells


def replay_workbook(engine: Engine, path: str | Path, profiles: dict | None = None) -> dict:
    """Replay every correction sheet of ``path``; returns counts per feed:
    ``{"file", "status", "feeds": {feed: {"rows", "loaded", "quarantined"}}}``."""
    path = Path(path)
    profiles = profiles or load_profiles()
    sheets = _read_sheets(path)
    sha = sha256_of(path)
    result = {"file": path.name, "status": "loaded", "feeds": {}}
    seq = 0   # ledger entries of this workbook: the first carries its SHA-256, the others a derived one
    with engine.begin() as conn:
        prior = repo.find_by_sha(conn, sha)
        if prior is not None and prior["status"] in repo.DONE_STATUSES:
            return dict(result, status="skipped", message=f"same bytes already replayed as load {prior['id']}")
    for feed_name, items in sheets.items():
        if feed_name not in FEEDS:
            raise BadSourceData(f"sheet names unknown feed {feed_name!r}", file=path.name)
        fd = FEEDS[feed_name]
        with engine.begin() as conn:
            ids = [it["id"] for it in items]
            origin = ledger.quarantine_origin(conn, ids)
            missing = [it for it in items if it["id"] not in origin]
            if missing:
                raise BadSourceData(f"quarantine record {missing[0]['id']} does not exist", file=path.name,
                                    row=missing[0]["sheet_row"], column="编号")
            # one ledger entry per (dealer, business day, source file) group keeps each row's lineage
            groups: dict[tuple, list[dict]] = {}
            for it in items:
                o = origin[it["id"]]
                groups.setdefault((o["dealer_code"], o["business_date"], o["source_file"], o["profile"]), []).append(it)
            stats = {"rows": 0, "loaded": 0, "quarantined": 0}
            for (dealer, bdate, source_file, prof_name), its in sorted(groups.items(), key=str):
                prof = profiles.get(prof_name or "") or profiles["dms_a"]
                aliases = prof.aliases(feed_name)
                cells = [_restore(json.loads(origin[it["id"]]["raw_row"] or "{}"), it["cells"]) for it in its]
                header = list(its[0]["cells"])
                canon = {h: aliases.get(header_key(h)) for h in header}
                raw = pl.DataFrame({c: pl.Series([cs.get(h) for cs in cells], dtype=pl.Utf8)
                                    for h, c in canon.items() if c})
                for c in fd.columns:
                    if c not in raw.columns:
                        raw = raw.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c))
                rownums = np.array([origin[it["id"]]["row_number"] for it in its], dtype=np.int64)
                out = validate_chunk(raw.select(list(fd.columns)), rownums, fd, prof, source_file=source_file,
                                     header=header, raw_cells=lambda pos: [[cells[p].get(h) for h in header] for p in pos])
                load_id = ledger.claim_load(conn, key=f"r{seq}:{sha[:56]}", alive=lambda row: True,
                                            path=f"{path.resolve()}#{seq}", file_name=path.name,
                                            size=path.stat().st_size, source=fd.source, feed=feed_name,
                                            dealer_code=dealer, business_date=bdate).load_id
                seq += 1
                lineage = repo.Lineage(dealer, bdate, source_file, load_id, repo.now())
                stage: list = []
                repo.add_quarantine(conn, load_id, out.quarantine)
                repo.add_issues(conn, load_id, feed_name, dealer, out.issues)
                repo.add_warnings(conn, repo.write_chunk(conn, fd, out.frame, lineage,
                                                         lambda: stage.append(repo.create_stage(conn, fd, load_id))
                                                         or stage[0]))
                if stage:
                    repo.drop_stage(conn, stage[0])
                ledger.resolve_quarantine(conn, [it["id"] for it in its], load_id)
                loaded = len(its) - len(out.quarantine)
                ledger.finish_load(conn, load_id, "LOADED", sha256=sha if seq == 1 else f"{sha[:56]}{seq:08x}",
                                   profile=prof.name, encoding=None, rows_read=len(its),
                                 rows_loaded=loaded, rows_quarantined=len(out.quarantine), rows_superseded=0,
                                 value_issues=len(out.issues), warnings=0,
                                 message=f"replay of quarantined rows of {source_file}")
                stats["rows"] += len(its)
                stats["loaded"] += loaded
                stats["quarantined"] += len(out.quarantine)
            result["feeds"][feed_name] = stats
    return result
