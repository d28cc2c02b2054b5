"""The error family.

Every error is picklable (Prefect ships exceptions between processes) and small: a contract
violation carries counts and a short sample, never a whole DataFrame.
"""
from __future__ import annotations


class TransientException(Exception):
    """Marker (as in dlt's ``dlt/common/exceptions.py``): another try, later, may succeed."""


class TerminalException(Exception):
    """Marker: another try cannot succeed until something (configuration, data, the peer) changes."""


class DealersyncError(Exception):
    """Base class. ``retryable`` tells task retry conditions whether another try can help."""

    retryable = False

    def __reduce__(self):  # keep keyword state through pickling
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls, args, state):
    obj = cls.__new__(cls)
    Exception.__init__(obj, *args)
    obj.__dict__.update(state)
    return obj


class ConfigurationError(DealersyncError, TerminalException):
    """Wrong or missing configuration: never retried."""


class TransientError(DealersyncError, TransientException):
    """A network or service hiccup: retried, honouring ``retry_after`` seconds when known."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BadSourceData(DealersyncError, TerminalException):
    """A source file or record that cannot be used as it is. Names the file, row and column."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, reason: str = "BAD_SOURCE"):
        self.file, self.row, self.column, self.reason = file, row, column, reason
        super().__init__(message)

    def __str__(self) -> str:
        where = [p for p in (self.file, f"row {self.row}" if self.row else None,
                             f"column {self.column}" if self.column else None) if p]
        msg = self.args[0] if self.args else ""
        return f"{': '.join([', '.join(where), msg]) if where else msg}"


class ContractViolation(DealersyncError, TerminalException):
    """A peer broke its contract. Carries counts and a small sample only."""

    def __init__(self, message: str, *, counts: dict | None = None, sample: list | None = None):
        self.counts = dict(counts or {})
        self.sample = list(sample or [])[:5]
        super().__init__(message)


class StoreBusy(TransientError):
    """Another process holds the store lock of a job that runs one at a time (``dealersync resolve``):
    waited for it as long as configured (``lock_wait_seconds``); another try later may succeed."""


class DeadlineExceeded(TransientError):
    """An HTTP call ran past its overall deadline (a slow or trickling server); ``retry_after``: None."""


class ResponseTooLarge(ContractViolation):
    """A peer's answer is larger than the configured maximum; refused before it was read whole."""


class RedirectRefused(ConfigurationError):
    """A peer redirected a call the client does not follow (a body or credentials on board, or another
    origin): the configured URL is wrong or the peer is not to be trusted with the request."""


class ItemsFailed(DealersyncError):
    """A flow did its work but some items need a person (claims refused or failing validation, rows
    quarantined above the threshold, pushes refused). ``result`` holds the flow's full result; the flow
    run ends ``Failed`` with this as its data (issue 15: no plain green over failures)."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class ValueRefused(BadSourceData):
    """The database refused a value of a file (a NUL byte, a text longer than its column): the file's
    load fails and rolls back, the run goes on with the next file. The message names the file, the row
    and the column where the database says them, never the value (it may be personal data)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, reason: str = "VALUE_REFUSED"):
        super().__init__(message, file=file, row=row, column=column, reason=reason)
