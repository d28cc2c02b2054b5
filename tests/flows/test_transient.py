"""One verdict "is this error transient?" (``flows.common.is_transient``) for ``_masked`` and the
task retry condition ``transient_only``, in the order they meet it: ``_masked`` sees the original
error, ``transient_only`` the ``MaskedError`` that carries the verdict (issue #14 review)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from dealersync.errors import ConfigurationError, TransientError
from dealersync.flows.common import _masked, is_transient, transient_only
from dealersync.privacy import MaskedError

TASK = SimpleNamespace(retry_delay_seconds=[10, 60, 300], retries=3)
RUN = SimpleNamespace(run_count=1)


def failed_by(fn):
    """The failed state of a task whose body is ``fn``, run as the task runs it (through ``_masked``)."""
    def result():
        _masked(fn)()
    return SimpleNamespace(result=result)


def raising(e):
    def fn():
        raise e
    return fn


@pytest.fixture(autouse=True)
def budget(monkeypatch):
    monkeypatch.setenv("DEALERSYNC_RETRY_BUDGET_SECONDS", "900")


@pytest.mark.parametrize("error, retried", [
    (OperationalError("SELECT 1", {}, Exception("server closed the connection 13800138000")), True),
    (ConnectionResetError("reset by peer"), True),
    (TimeoutError("read timed out"), True),
    (ValueError("a bug, mobile 13800138000"), False),
    (KeyError("vin"), False),
    (TransientError("HTTP 503"), True),
    (ConfigurationError("bad URL"), False),
])
def test_a_masked_failure_keeps_the_verdict_on_the_original(error, retried):
    with pytest.raises(Exception) as got:
        _masked(raising(error))()
    if not isinstance(error, (TransientError, ConfigurationError)):
        assert isinstance(got.value, MaskedError)   # the class no longer tells: the verdict must travel
        assert "13800138000" not in str(got.value)
    assert is_transient(got.value) is retried
    assert transient_only(TASK, RUN, failed_by(raising(error)), sleep=lambda s: None) is retried


def test_an_error_raised_outside_the_masked_body_is_judged_by_its_class():
    """Prefect's own failures (a task timeout...) reach ``transient_only`` unmasked."""
    assert transient_only(TASK, RUN, SimpleNamespace(result=raising(TimeoutError("task timed out"))),
                          sleep=lambda s: None) is True
    assert transient_only(TASK, RUN, SimpleNamespace(result=raising(RuntimeError("no"))),
                          sleep=lambda s: None) is False
