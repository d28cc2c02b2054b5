"""Masking of personal data and secrets in anything a person or a log aggregator may read.

``mask_text`` masks CN mobiles (``138****5678``), resident IDs (``110105********002X``), e-mail
addresses (``u***@example.cn``) and any registered secret value. ``PiiFilter`` applies it to every
log record (message, arguments, the attached traceback and stack); ``install_log_filter`` puts it on the
root handlers and Prefect's loggers and their handlers. ``render_exception`` is the one way an error
becomes text for a person (the CLI) or for Prefect (state messages: ``MaskedError``). ``consented``
decides consent on explicit values only (PIPL art. 13-14: no answer is no consent).
"""
from __future__ import annotations

import logging
import math
import re
import traceback

from dealersync.errors import DealersyncError

_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])")
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})(?:19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}([0-9Xx])(?![0-9A-Za-z])")
# ASCII boundaries, not \b: in Chinese text an address runs straight into CJK characters (联系人a@b.com手机)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})(?![A-Za-z])")
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


def mask_name(name: str | None) -> str | None:
    """A person's name as shared outside: the first character kept, the rest starred (张伟 -> 张*)."""
    if not name or not isinstance(name, str):
        return name
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def render_exception(exc: BaseException, *, with_traceback: bool = False) -> str:
    """``Type: message`` (and the formatted traceback, chained causes included, when asked), masked.
    The only way an exception's text reaches a terminal, a log or Prefect: driver errors quote the SQL
    parameters and the offending row (``DETAIL: Key (mobile)=(...)``)."""
    if with_traceback:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    else:
        text = str(exc) if isinstance(exc, DealersyncError) else f"{type(exc).__name__}: {exc}"
    return mask_text(text)


class MaskedError(DealersyncError):
    """An exception re-raised with its text masked (flows and tasks hand this to Prefect, which stores
    the message in its state and logs). ``retryable`` and the original type's name are kept."""

    def __init__(self, message: str, *, kind: str = "", retryable: bool = False):
        super().__init__(message)
        self.kind, self.retryable = kind, retryable

    @classmethod
    def of(cls, exc: BaseException, retryable: bool = False) -> "MaskedError":
        return cls(render_exception(exc), kind=type(exc).__name__, retryable=retryable)


def _masked_value(v):
    if isinstance(v, str):
        return mask_text(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_masked_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _masked_value(x) for k, x in v.items()}
    return v if v is None or isinstance(v, (int, float, bool)) else mask_text(str(v))


def mask_exception(exc: BaseException, retryable: bool = False) -> Exception:
    """The exception to hand on, masked: one of ours stays its own class (callers catch
    ``ConfigurationError``, ``BadSourceData``...), its arguments and attributes masked; any other
    becomes ``MaskedError`` (a driver's error quotes rows and parameters)."""
    if isinstance(exc, DealersyncError):
        out = type(exc).__new__(type(exc))
        Exception.__init__(out, *[_masked_value(a) for a in exc.args])
        out.__dict__.update({k: _masked_value(v) for k, v in exc.__dict__.items()})
        return out
    return MaskedError.of(exc, retryable=retryable)


_YES = {"1", "y", "yes", "true", "t", "是", "同意"}
_NO = {"0", "n", "no", "false", "f", "否", "不同意"}


def consented(value) -> bool:
    """True only for an explicit yes: ``True`` (Python or numpy), 1, or a yes word (是, Y, 1...). No,
    blank, NULL, NaN / pd.NA and anything unknown are False (no answer is no consent)."""
    if value is None or value is True or value is False:
        return value is True
    if isinstance(value, str):
        return value.strip().lower() in _YES
    try:
        if isinstance(value, float) and math.isnan(value):
            return False
        return bool(value == 1)
    except (TypeError, ValueError):   # pd.NA compares to NA: ambiguous, so no consent
        return False


class PiiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a broken format string: leave it to logging)
            message = None
        if message is not None:
            masked = mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # the formatted traceback goes in exc_text (every Formatter appends it); the live exception
            # is dropped so no handler renders it again from the frames
            exc = record.exc_info[1]
            record.exc_text = render_exception(exc, with_traceback=True).rstrip("\n")
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install_log_filter(settings=None) -> None:
    """Mask personal data and the configured secrets in every log line (our loggers, Prefect's)."""
    if settings is not None:
        for name in ("oem_client_secret", "crm_token", "sftp_password"):
            v = getattr(settings, name, None)
            register_secret(v.get_secret_value() if v is not None else None)
    f = PiiFilter()
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in
                                       ("dealersync", "prefect", "prefect.flow_runs", "prefect.task_runs",
                                        "prefect.engine", "prefect.flow_engine", "prefect.task_engine",
                                        "sqlalchemy", "py.warnings")]
    for lg in loggers:
        # a logger's own filter sees only records logged on it; its handlers see its children's too
        for target in (lg, *lg.handlers):
            if not any(isinstance(x, PiiFilter) for x in target.filters):
                target.addFilter(f)


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
