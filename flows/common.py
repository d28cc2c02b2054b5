"""Shared task plumbing."""
from __future__ import annotations

import time


MAX_RETRY_AFTER = 900.0   # seconds: a server asking a task to wait longer is not waited for here


def transient_only(task, task_run, state, sleep=time.sleep) -> bool:
    """Retry a task only when it failed on a transient error (network, lock, 5xx). A ``TransientError``
    whose server asked to wait (``retry_after``, from ``Retry-After``) longer than the task's next
    ``retry_delay_seconds`` gets the difference (up to ``MAX_RETRY_AFTER``) before the retry: the same
    policy as ``connectors.http.RetryPolicy.backoff``, one level up."""
    try:
        state.result()
    except Exception as e:  # noqa: BLE001
        from dealersync.errors import DealersyncError
        from sqlalchemy.exc import OperationalError
        if isinstance(e, DealersyncError):
            if e.retryable and getattr(e, "retry_after", None):
                extra = min(e.retry_after, MAX_RETRY_AFTER) - _next_delay(task, task_run)
                if extra > 0:
                    sleep(extra)
            return e.retryable
        return isinstance(e, (OperationalError, ConnectionError, TimeoutError))
    return False


def _next_delay(task, task_run) -> float:
    delays = getattr(task, "retry_delay_seconds", None) or 0
    if isinstance(delays, (int, float)):
        return float(delays)
    return float(delays[min(max(getattr(task_run, "run_count", 1) - 1, 0), len(delays) - 1)])


def settings_with_privacy():
    """The settings, with the log filter that masks personal data and secrets installed."""
    from dealersync.config import get_settings
    from dealersync.privacy import install_log_filter
    s = get_settings()
    install_log_filter(s)
    return s


def task_runner(settings=None):
    """The task runner for fan-out (per dealer, per file), chosen by the ``task_runner`` setting."""
    from dealersync.errors import ConfigurationError
    s = settings or settings_with_privacy()
    if s.task_runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigurationError("task_runner = dask needs prefect-dask: pip install 'dealersync[dask]'") from None
        if s.dask_address:
            return DaskTaskRunner(address=s.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": s.task_workers, "threads_per_worker": 1})
    from prefect.task_runners import ThreadPoolTaskRunner
    return ThreadPoolTaskRunner(max_workers=s.task_workers)
