"""HTTP plumbing shared by the CRM and OEM portal clients: retries with exponential backoff and full
jitter honouring ``Retry-After`` for 429, 5xx and connection errors (never for business errors),
timeouts on every call, and a client-side token-bucket rate limiter."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests

from dealersync.errors import ConfigurationError, ContractViolation, TransientError

RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass
class RetryPolicy:
    attempts: int = 6                # tries in all
    base: float = 0.2                # seconds; the n-th wait is uniform(0, base * 2**n), capped
    cap: float = 20.0
    max_retry_after: float = 120.0   # a server asking for longer than this is not waited for
    timeout: tuple[float, float] = (5.0, 30.0)   # connect, read


class RateLimiter:
    """Token bucket: at most ``rate`` requests a second on average, ``burst`` at once. Thread-safe."""

    def __init__(self, rate: float | None, burst: int = 1, clock=time.monotonic, sleep=time.sleep):
        self.rate, self.burst = rate, max(1, burst)
        self.tokens = float(self.burst)
        self.at = clock()
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if not self.rate:
            return
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            self.sleep(wait)

    def refund(self) -> None:
        """Give back the token of a request the server failed (a 5xx is not charged to the quota)."""
        if not self.rate:
            return
        with self.lock:
            self.tokens = min(self.burst, self.tokens + 1)


def retry_after_seconds(resp: requests.Response) -> float | None:
    v = resp.headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def send(session: requests.Session, method: str, url: str, *, policy: RetryPolicy,
         limiter: RateLimiter | None = None, sleep=time.sleep, rng: random.Random | None = None,
         on_retry=None, on_attempt=None, retry_statuses=RETRY_STATUS, auth_errors_are_answers: bool = False,
         **kw) -> requests.Response:
    """One logical call with retries. Returns the response for any status that is not retried
    (the caller interprets 2xx and business 4xx); raises TransientError when the retries are
    exhausted, ConfigurationError on 401/403."""
    rng = rng or random.Random()
    kw.setdefault("timeout", policy.timeout)
    last: str = ""
    for attempt in range(policy.attempts):
        if limiter:
            limiter.acquire()
        wait = None
        if on_attempt:
            on_attempt()
        try:
            resp = session.request(method, url, **kw)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            last = f"{type(e).__name__}: {str(e)[:200]}"
        else:
            if resp.status_code in (401, 403) and not auth_errors_are_answers:
                raise ConfigurationError(f"{method} {url}: HTTP {resp.status_code} (check the credentials)")
            if resp.status_code not in retry_statuses:
                return resp
            wait = retry_after_seconds(resp)
            last = f"HTTP {resp.status_code}"
            if limiter:
                limiter.refund()   # a 5xx or a 429 was not admitted: it does not count against the quota
            if wait is not None and wait > policy.max_retry_after:
                raise TransientError(f"{method} {url}: {last}, server asks to wait {wait:.0f} s", retry_after=wait)
        if attempt == policy.attempts - 1:
            break
        backoff = rng.uniform(0, min(policy.cap, policy.base * (2 ** attempt)))
        delay = max(wait or 0.0, backoff)
        if on_retry:
            on_retry(attempt + 1, last, delay)
        sleep(delay)
    raise TransientError(f"{method} {url}: gave up after {policy.attempts} tries ({last})")


def json_body(resp: requests.Response, what: str):
    try:
        return resp.json()
    except ValueError:
        raise ContractViolation(f"{what}: HTTP {resp.status_code} with a body that is not JSON",
                                sample=[resp.text[:200]]) from None
