"""Shared task plumbing."""
from __future__ import annotations


def transient_only(task, task_run, state) -> bool:
    """Retry a task only when it failed on a transient error (network, lock, 5xx)."""
    try:
        state.result()
    except Exception as e:  # noqa: BLE001
        from dealersync.errors import DealersyncError
        from sqlalchemy.exc import OperationalError
        if isinstance(e, DealersyncError):
            return e.retryable
        return isinstance(e, (OperationalError, ConnectionError, TimeoutError))
    return False


def settings_with_privacy():
    """The settings, with the log filter that masks personal data and secrets installed."""
    from dealersync.config import get_settings
    from dealersync.privacy import install_log_filter
    s = get_settings()
    install_log_filter(s)
    return s
