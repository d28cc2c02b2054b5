"""The one backoff policy of every retried call, whatever the transport (HTTP in
``connectors.http``, SFTP in ``services.sftp_jobs``): a bounded number of tries, exponential waits
with full jitter (the n-th wait is uniform(0, base * 2**n), capped at ``cap``, so clients that failed
together do not retry together), never shorter than what the server asked (``retry_after``), and one
``deadline`` for the whole logical call, tries and waits included."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from dealersync.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("dealersync.retry")


@dataclass
class Backoff:
    """How many tries, how long between them, and the whole call's deadline. Seconds."""
    attempts: int = 6                # tries in all
    base: float = 0.2                # the n-th wait is uniform(0, base * 2**n), capped
    cap: float = 20.0
    deadline: float = 180.0          # one logical call, all tries and waits included

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1``: full jitter, never shorter than ``retry_after``."""
        return max(retry_after or 0.0, rng.uniform(0, min(self.cap, self.base * (2 ** attempt))))


def retrying(fn: Callable[[], T], policy: Backoff, *, what: str = "call", retry_on=(TransientError,),
             on_failure: Callable[[BaseException], None] | None = None, sleep=time.sleep,
             clock=time.monotonic, rng: random.Random | None = None) -> T:
    """``fn()``, tried again on ``retry_on`` errors by ``policy``: at most ``policy.attempts`` tries, waits
    by ``policy.backoff``, and no wait that would pass ``policy.deadline`` (then the last error is raised).
    ``on_failure(e)`` runs after every failed try (to drop a broken connection, say)."""
    rng = rng or random.Random()
    end = clock() + policy.deadline
    for attempt in range(policy.attempts):
        try:
            return fn()
        except retry_on as e:
            if on_failure:
                on_failure(e)
            if attempt == policy.attempts - 1:
                raise
            delay = policy.backoff(attempt, rng, getattr(e, "retry_after", None))
            if clock() + delay >= end:
                raise
            log.warning("%s: %s (try %d of %d); retrying in %.1f s", what, e, attempt + 1, policy.attempts, delay)
            sleep(delay)
    raise AssertionError("unreachable")
