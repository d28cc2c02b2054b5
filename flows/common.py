"""Shared task plumbing: the retry condition (bounded), the clients (refusing unset production
identifiers), how a flow that had failures ends (not plain green, and a notification), and the
Prefect API server a one-shot command runs against (a child that ends with its parent)."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time

import prefect
from prefect.exceptions import PrefectException
from sqlalchemy.exc import OperationalError

from dealersync.config import get_settings
from dealersync.errors import ConfigurationError, DealersyncError, ItemsFailed
from dealersync.privacy import MaskedError, install_log_filter, mask_exception
from dealersync.processes import die_with_parent
from dealersync.services.context import build_context, notifier

log = logging.getLogger(__name__)


MAX_RETRY_AFTER = 900.0   # seconds: a server asking a task to wait longer is not waited for here
TRANSIENT_FOREIGN = (OperationalError, ConnectionError, TimeoutError)
"""Errors not of ours that another try can cure (a dropped database connection, a network hiccup)."""


def is_transient(e: BaseException) -> bool:
    """Whether another try can help: the one verdict of ``transient_only`` and ``_masked``. Ours say so
    (``retryable``); a foreign error is judged by its class here, *before* ``_masked`` turns it into a
    ``MaskedError``, which then carries the verdict in its ``retryable`` (its class no longer tells)."""
    if isinstance(e, DealersyncError):
        return e.retryable
    return isinstance(e, TRANSIENT_FOREIGN)


def transient_only(task, task_run, state, sleep=time.sleep) -> bool:
    """Retry a task only when it failed on a transient error (network, lock, 5xx), and only while the
    waits so far plus the next stay within ``retry_budget_seconds``: an outage fails the stage in
    about that long instead of the full retry schedule (issue 15: no 7-minute silence). A
    ``TransientError`` whose server asked to wait (``retry_after``, from ``Retry-After``) longer than the
    task's next ``retry_delay_seconds`` gets the difference (up to ``MAX_RETRY_AFTER``, and within the
    budget) before the retry: the same policy as ``connectors.http.RetryPolicy.backoff``, one level up."""
    try:
        state.result()
    except Exception as e:  # noqa: BLE001
        if not is_transient(e):
            return False
        extra = 0.0
        if getattr(e, "retry_after", None):
            extra = max(0.0, min(e.retry_after, MAX_RETRY_AFTER) - _next_delay(task, task_run))
        if not _within_budget(task, task_run, extra):
            return False
        if extra > 0:
            sleep(extra)
        return True
    return False


def _next_delay(task, task_run) -> float:
    delays = getattr(task, "retry_delay_seconds", None) or 0
    if isinstance(delays, (int, float)):
        return float(delays)
    return float(delays[min(max(getattr(task_run, "run_count", 1) - 1, 0), len(delays) - 1)])


def _within_budget(task, task_run, extra: float = 0.0) -> bool:
    """The waits of the retries taken so far, the next one and ``extra`` stay within ``retry_budget_seconds``."""
    try:
        budget = get_settings().retry_budget_seconds
    except ConfigurationError:
        return False
    delays = getattr(task, "retry_delay_seconds", None) or 0
    retries = max(1, getattr(task, "retries", None) or 1)
    delays = list(delays) if isinstance(delays, (list, tuple)) else [float(delays)] * retries
    done = max(0, (getattr(task_run, "run_count", 1) or 1) - 1)   # retries already taken
    spent = sum(delays[:done + 1]) + (delays[-1] * (done + 1 - len(delays)) if done >= len(delays) else 0)
    return spent + extra <= budget


RETRY = dict(retries=3, retry_delay_seconds=[10, 60, 300], retry_condition_fn=transient_only)
"""The one retry policy of a task that talks to a service or the store (``transient_only`` bounds it
by ``retry_budget_seconds`` and honours a server's ``retry_after``)."""


def settings_with_privacy():
    """The settings, with the log filter that masks personal data and secrets installed."""
    s = get_settings()
    install_log_filter(s)
    return s


def context(today: str | None = None):
    """The run context of a task or flow (``services.context.build_context``), from the settings with
    the privacy log filter installed; ``with context() as ctx: ...`` disposes its engine on exit."""
    return build_context(settings_with_privacy(), today=today)


def finish(what: str, out, problems: list[str], settings=None, facts: dict | None = None):
    """How a flow ends. No problems: ``out`` (the run is Completed). Problems (claims refused or failing
    validation, rows quarantined above ``quarantine_alert_ratio``, pushes refused): a notification to
    every ``notify_urls`` target, and a ``Failed`` state whose message lists the problems and whose
    data is ``ItemsFailed`` carrying ``out`` as ``.result`` (the work that did succeed stays committed;
    the run shows red in the Prefect UI). Calling the flow then raises ``ItemsFailed``; its ``.result``
    is the flow's result."""
    if not problems:
        return out
    from prefect.states import Failed
    message = f"{what}: " + "; ".join(problems)
    notify(f"{what}: needs attention", message, "failure", settings, facts)
    return Failed(message=message, data=ItemsFailed(message, result=out))


def notify(title: str, message: str, kind: str = "failure", settings=None, facts: dict | None = None) -> list:
    """Send to every ``notify_urls`` target (none configured: nothing is sent). Never raises for a
    target that does not answer; a malformed ``notify_urls`` entry is a ConfigurationError."""
    s = settings or get_settings()
    if not s.notify_urls:
        return []
    return notifier(s).send(title, message, kind, facts)


def task_runner(settings=None):
    """The task runner for fan-out (per dealer, per file), chosen by the ``task_runner`` setting."""
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


@contextlib.contextmanager
def prefect_api():
    """The Prefect API the flows of one command report to. ``PREFECT_API_URL`` set: that server.
    Otherwise a local one started as a child process that ends with this one (SIGTERM or SIGKILL of
    the parent included: ``dealersync.processes``), its runs kept in ``PREFECT_HOME``'s database,
    so ``prefect server start`` shows them afterwards. Yields the API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    server = _GuardedServer()
    server.start()
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        server.stop()


def _guarded_server_class():
    from prefect.server.api.server import SubprocessASGIServer

    class GuardedServer(SubprocessASGIServer):
        """Prefect's own ephemeral server, started with ``die_with_parent`` as its preexec hook."""

        def _run_uvicorn_command(self):
            import subprocess

            import prefect
            from prefect.settings import get_current_settings
            env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                   "PREFECT__SERVER_FINAL": "1",
                   **get_current_settings().to_environment_variables(exclude_unset=True)}
            env.pop("PREFECT_API_URL", None)
            return subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
                 "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--log-level", "error", "--lifespan", "on"], env=env, preexec_fn=die_with_parent(os.getpid()))
    return GuardedServer


def _GuardedServer():  # noqa: N802 - a class made on first use (Prefect's server module is heavy)
    return _guarded_server_class()(port=None)


# ------------------------------------------------------------------------------------ masked failures

def _masked(fn):
    """Run ``fn``; an exception leaves masked (``mask_exception``: ours keep their class, others become
    ``MaskedError``; no chained cause), so Prefect's state message, its logged traceback and the result it
    keeps hold no personal data."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (MaskedError, PrefectException):
            raise
        except Exception as e:  # noqa: BLE001
            raise mask_exception(e, retryable=is_transient(e)) from None
    return run


def flow(fn=None, **options):
    """``prefect.flow`` whose failures are masked (see ``_masked``)."""
    if fn is not None:
        return prefect.flow(_masked(fn))
    return lambda f: prefect.flow(**options)(_masked(f))


def task(fn=None, **options):
    """``prefect.task`` whose failures are masked (see ``_masked``)."""
    if fn is not None:
        return prefect.task(_masked(fn))
    return lambda f: prefect.task(**options)(_masked(f))
