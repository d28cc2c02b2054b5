"""The one backoff policy (``dealersync.retry``) that HTTP and SFTP both use."""
from __future__ import annotations

import random

import pytest

from dealersync.connectors.http import RetryPolicy
from dealersync.errors import TransientError
from dealersync.retry import Backoff, retrying


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def failing(times, then="ok"):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= times:
            raise TransientError("connection dropped")
        return then
    return fn, calls


def test_waits_are_jittered_within_the_exponential_bound():
    clock, slept = Clock(), []
    fn, calls = failing(4)
    policy = Backoff(attempts=5, base=1.0, cap=3.0, deadline=100.0)
    assert retrying(fn, policy, sleep=lambda s: (slept.append(s), clock.sleep(s)), clock=clock,
                    rng=random.Random(7)) == "ok"
    assert len(calls) == 5 and len(slept) == 4
    assert all(0 <= w <= min(3.0, 2 ** n) for n, w in enumerate(slept))
    assert slept != [1.0, 2.0, 4.0, 8.0] and len(set(slept)) == 4   # not a fixed doubling


def test_the_last_error_is_raised_after_the_tries():
    fn, calls = failing(10)
    with pytest.raises(TransientError):
        retrying(fn, Backoff(attempts=3, base=0.0), sleep=lambda s: None)
    assert len(calls) == 3


def test_no_wait_past_the_deadline():
    clock = Clock()
    fn, calls = failing(10)
    with pytest.raises(TransientError):
        retrying(fn, Backoff(attempts=50, base=1.0, cap=1.0, deadline=3.0), sleep=clock.sleep, clock=clock)
    assert clock.now < 3.0 and len(calls) < 50


def test_a_server_asked_wait_is_honoured_and_other_errors_are_not_retried():
    clock = Clock()
    calls = []

    def fn():
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("busy", retry_after=5.0)
        raise ValueError("a bug is not retried")
    with pytest.raises(ValueError):
        retrying(fn, Backoff(attempts=5, base=0.01), sleep=clock.sleep, clock=clock)
    assert clock.now >= 5.0 and len(calls) == 2


def test_http_uses_the_same_policy():
    assert issubclass(RetryPolicy, Backoff)
    assert RetryPolicy.backoff is Backoff.backoff
