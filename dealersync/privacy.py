"""Masking of personal data and secrets in anything a person or a log aggregator may read.

``mask_text`` masks CN mobiles (``138****5678``), resident IDs (``110105********002X``), e-mail
addresses (``u***@example.cn``) and any registered secret value. ``PiiFilter`` applies it to every
log record; ``install_log_filter`` puts it on the root handlers and Prefect's loggers.
"""
from __future__ import annotations

import logging
import re

_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])")
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})(?:19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}([0-9Xx])(?![0-9A-Za-z])")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears (tokens, passwords); short values are ignored."""
    if value and len(value) >= 4:
        _secrets.add(value)


def mask_text(text: str) -> str:
    if not text:
        return text
    for s in _secrets:
        if s in text:
            text = text.replace(s, "******")
    text = _RESIDENT_ID.sub(lambda m: f"{m[1]}********{m[0][-4:-1]}{m[2].upper()}", text)
    text = _MOBILE.sub(lambda m: f"{m[1]}****{m[3]}", text)
    return _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", text)


class PiiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a broken format string: leave it to logging)
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_filter(settings=None) -> None:
    """Mask personal data and the configured secrets in every log line (our loggers, Prefect's)."""
    if settings is not None:
        for name in ("oem_client_secret", "crm_token", "sftp_password"):
            v = getattr(settings, name, None)
            register_secret(v.get_secret_value() if v is not None else None)
    f = PiiFilter()
    root = logging.getLogger()
    for h in root.handlers:
        if not any(isinstance(x, PiiFilter) for x in h.filters):
            h.addFilter(f)
    for name in ("dealersync", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        lg = logging.getLogger(name)
        if not any(isinstance(x, PiiFilter) for x in lg.filters):
            lg.addFilter(f)


_LANDLINE = re.compile(r"(?<![0-9])(?:\(0[0-9]{2,3}\)|0[0-9]{2,3}-)[0-9]{7,8}(?![0-9])")
SCRUBBED = "[已删除]"


def scrub_text(text: str | None) -> tuple[str | None, int]:
    """Free text about to leave for the OEM portal or the CRM (a claim's 故障现象, a task's subject),
    with every resident ID (GB 11643), CN mobile, landline (``020-12345678``) and e-mail address replaced
    by ``[已删除]``: (scrubbed text, number of patterns removed). PIPL art. 6 (minimisation); the count,
    never the values, is what the caller records."""
    if not text or not isinstance(text, str):
        return text, 0
    n = 0
    for rx in (_RESIDENT_ID, _MOBILE, _LANDLINE, _EMAIL):
        text, k = rx.subn(SCRUBBED, text)
        n += k
    return text, n


def scrub_fields(obj, keys: set[str] | frozenset[str]) -> int:
    """Scrub (``scrub_text``), in place, every string value stored under one of ``keys`` anywhere in a
    JSON-like payload of dicts and lists: the number of patterns removed."""
    n = 0
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and isinstance(v, str):
                obj[k], m = scrub_text(v)
                n += m
            else:
                n += scrub_fields(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            n += scrub_fields(v, keys)
    return n
