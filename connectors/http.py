"""HTTP plumbing shared by the CRM and OEM portal clients: a client that trusts no server.

One logical call (``send``) is bounded and retried by one policy (``RetryPolicy``):

- retries with exponential backoff and full jitter for 429, 5xx and connection errors (never for
  business errors), waiting at least the server's ``Retry-After``; a wait that would not fit in the
  call's deadline (or exceeds ``max_retry_after``) ends the call with a ``TransientError`` carrying
  ``retry_after``, for the caller's next try (a Prefect task retry) to honour;
- timeouts: connect and read (per socket read) *and* an overall ``deadline`` for the whole call
  (every try, every wait, headers and body): a watchdog shuts the socket when it passes, so a server
  trickling one byte every 2 s cannot hold a call (``DeadlineExceeded``, issue #16 item 4);
- redirects (``RedirectRefused``): never followed for a request with a body (a 307 must not re-post a
  client secret or 100 contacts to another host); a GET/HEAD/DELETE without a body follows at most
  ``MAX_REDIRECTS`` redirects, each to the same origin (scheme, host, port) only;
- a maximum answer size (``max_body_bytes``): a ``Content-Length`` above it is refused unread, a body
  without one is read in chunks and refused as soon as it passes the limit (``ResponseTooLarge``);
- credentials in a ``requests`` auth object (``TokenAuth``, after dlt's ``OAuth2ImplicitFlow``): the
  token is obtained when missing or expired as each request is prepared, and one refused as expired
  is dropped, so a retry never carries an expired token;
- a client-side token-bucket rate limiter.

Over 400 lines on purpose: the one place every outbound HTTP call is bounded (retry policy, deadline
watchdog, redirects, size limits, error mapping); the rules depend on each other and are read together.
"""
from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from dealersync.errors import (ConfigurationError, ContractViolation, DeadlineExceeded, RedirectRefused,
                               ResponseTooLarge, TransientError)
from dealersync.privacy import mask_text, register_secret
from dealersync.retry import Backoff

RETRY_STATUS = {429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 3
CHUNK = 64 * 1024


@dataclass
class RetryPolicy(Backoff):
    """The one retry and limit policy of an HTTP call: ``dealersync.retry.Backoff`` (tries, jittered
    waits, deadline) plus what only HTTP has. Seconds and bytes."""
    max_retry_after: float = 120.0   # a server asking for longer than this is not waited for
    timeout: tuple[float, float] = (5.0, 30.0)   # connect, read (per socket read)
    max_body_bytes: int = 32 * 1024 * 1024

    @classmethod
    def from_settings(cls, s) -> "RetryPolicy":
        """From ``Settings`` (``http_*`` keys; defaults for any absent)."""
        d = cls()
        return cls(timeout=(getattr(s, "http_connect_timeout", d.timeout[0]), getattr(s, "http_read_timeout", d.timeout[1])),
                   deadline=getattr(s, "http_deadline_seconds", d.deadline),
                   max_body_bytes=getattr(s, "http_max_body_bytes", d.max_body_bytes))


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


# ------------------------------------------------------------------------------------ credentials

class BearerAuth(requests.auth.AuthBase):
    """A fixed bearer token (the CRM's API token)."""

    def __init__(self, token: str):
        self.token = token
        register_secret(token)

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r

    def refused(self, resp: requests.Response) -> bool:
        """A fixed token refused is a configuration error, never retried."""
        return False


class TokenAuth(requests.auth.AuthBase):
    """A bearer token obtained by ``fetch() -> (token, lifetime in seconds)`` when missing or expired
    (refreshed at 90 % of its lifetime), set on each request as it is prepared, so every try carries a
    live token. ``refused(resp)``: the server refused the token as expired (``is_expired(resp)``); it is
    dropped unless another thread already replaced it, and the caller tries once more. Thread-safe."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], is_expired: Callable[[requests.Response], bool],
                 clock=time.monotonic):
        self.fetch, self.is_expired, self.clock = fetch, is_expired, clock
        self.token: str | None = None
        self.expires = 0.0
        self.refreshes = 0
        self.lock = threading.Lock()

    def current(self) -> str:
        with self.lock:
            if self.token is None or self.clock() >= self.expires:
                token, lifetime = self.fetch()
                register_secret(token)
                self.token, self.expires = token, self.clock() + max(1.0, lifetime * 0.9)
                self.refreshes += 1
            return self.token

    def invalidate(self) -> None:
        with self.lock:
            self.token = None

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.current()}"
        return r

    def refused(self, resp: requests.Response) -> bool:
        if resp.status_code != 401 or not self.is_expired(resp):
            return False
        sent = (resp.request.headers.get("Authorization") or "")[len("Bearer "):] if resp.request is not None else ""
        with self.lock:
            if self.token == sent:
                self.token = None
        return True


# ------------------------------------------------------------------------------------ the deadline watchdog

_calls = threading.local()


class _Watch:
    """The deadline of the call running on this thread; at the deadline, shuts every socket it armed."""

    def __init__(self, deadline: float, clock):
        self.deadline, self.clock = deadline, clock
        self.fired = False
        self.timers: list[threading.Timer] = []

    def arm(self, conn: HTTPConnection) -> None:
        def kill():
            self.fired = True
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        t = threading.Timer(max(0.0, self.deadline - self.clock()), kill)
        t.daemon = True
        t.start()
        self.timers.append(t)

    def disarm(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()


class _Watched:
    def request(self, *a, **kw):
        w = getattr(_calls, "watch", None)
        if w is not None:
            w.arm(self)
        return super().request(*a, **kw)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _SPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the running call's deadline."""

    def init_poolmanager(self, *a, **kw):
        super().init_poolmanager(*a, **kw)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _SPool}


def guarded_session(session: requests.Session | None = None) -> requests.Session:
    """``session`` (or a new one) with the deadline-aware adapter mounted for http and https."""
    session = session or requests.Session()
    if not isinstance(session.get_adapter("http://x"), GuardedAdapter):
        session.mount("http://", GuardedAdapter())
        session.mount("https://", GuardedAdapter())
    return session


# ------------------------------------------------------------------------------------ one call

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


def _origin(url: str) -> tuple:
    p = urlsplit(url)
    return p.scheme.lower(), (p.hostname or "").lower(), p.port or {"http": 80, "https": 443}.get(p.scheme.lower())


_CAUSES = [
    ((ConnectionRefusedError,), "connection refused"),
    ((ConnectionResetError,), "connection reset by the server"),
    ((socket.gaierror, "NameResolutionError"), "host name not resolved"),
    ((requests.exceptions.SSLError,), "TLS handshake failed"),
    ((requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError), "connect timed out"),
    ((requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout), "timed out"),
    ((requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError), "connection broken mid-answer"),
]


def cause(e: BaseException) -> str:
    """A transport failure in a few words for people: "connection refused", "timed out"... found by
    walking the exception's causes; never ``requests``' own text (it repeats the URL with its query,
    which may carry a cursor or a token, and the pool's internals). Unknown: the innermost type's name."""
    seen, todo, chain = set(), [e], []
    while todo:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.add(id(x))
        chain.append(x)
        todo += [a for a in (*getattr(x, "args", ()), getattr(x, "reason", None), x.__cause__, x.__context__)
                 if isinstance(a, BaseException)]
    for kinds, words in _CAUSES:   # the most telling first: a refused connect is also a "connect error"
        types = tuple(k for k in kinds if isinstance(k, type))
        if any(isinstance(x, types) or type(x).__name__ in kinds for x in chain):
            return words
    return type(chain[-1]).__name__


def _where(url: str) -> str:
    """Scheme, host and path of a URL (no query: it may carry a cursor or a secret)."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def _read_body(resp: requests.Response, limit: int, what: str) -> None:
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        resp.close()
        raise ResponseTooLarge(f"{what}: answer of {int(declared)} bytes refused unread (limit {limit} bytes, "
                               f"setting http_max_body_bytes)", counts={"declared": int(declared), "limit": limit})
    chunks, size = [], 0
    for chunk in resp.raw.stream(CHUNK, decode_content=True):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise ResponseTooLarge(f"{what}: answer passed {limit} bytes and was refused (setting "
                                   f"http_max_body_bytes)", counts={"read": size, "limit": limit})
        chunks.append(chunk)
    resp._content = b"".join(chunks)
    resp._content_consumed = True


def _exchange(session, method: str, url: str, policy: RetryPolicy, watch: _Watch, has_body: bool,
              **kw) -> requests.Response:
    """One request and its answer read whole, following only the redirects allowed."""
    what = f"{method} {_where(url)}"
    for _hop in range(MAX_REDIRECTS + 1):
        remaining = watch.deadline - watch.clock()
        if remaining <= 0:
            raise DeadlineExceeded(f"{what}: no answer within the {policy.deadline:g} s deadline")
        timeout = (min(policy.timeout[0], remaining), min(policy.timeout[1], remaining))
        resp = session.request(method, url, allow_redirects=False, stream=True, timeout=timeout, **kw)
        if resp.status_code not in REDIRECT_STATUS or "Location" not in resp.headers:
            _read_body(resp, policy.max_body_bytes, what)
            return resp
        target = urljoin(url, resp.headers["Location"])
        resp.close()
        if has_body or method.upper() not in ("GET", "HEAD", "DELETE"):
            raise RedirectRefused(f"{what}: HTTP {resp.status_code} redirect to {_where(target)} not followed "
                                  f"(a request with a body is never redirected); check the configured URL")
        if _origin(target) != _origin(url):
            raise RedirectRefused(f"{what}: HTTP {resp.status_code} redirect to another origin "
                                  f"({_where(target)}) not followed; check the configured URL")
        url = target
        kw.pop("params", None)   # the Location carries its own query
    raise RedirectRefused(f"{what}: more than {MAX_REDIRECTS} redirects")


def send(session: requests.Session, method: str, url: str, *, policy: RetryPolicy,
         limiter: RateLimiter | None = None, sleep=time.sleep, clock=time.monotonic,
         rng: random.Random | None = None, on_retry=None, on_attempt=None, retry_statuses=RETRY_STATUS,
         auth: requests.auth.AuthBase | None = None, auth_errors_are_answers: bool = False,
         **kw) -> requests.Response:
    """One logical call, within ``policy.deadline`` seconds. Returns the response, body read, for any
    status not retried (the caller interprets 2xx and business 4xx). Raises ``TransientError`` when the
    tries are exhausted or the next wait does not fit (``retry_after`` set when the server asked),
    ``DeadlineExceeded``, ``ResponseTooLarge``, ``RedirectRefused``, and ``ConfigurationError`` on
    401/403 (unless ``auth_errors_are_answers``); a token refused as expired is renewed and the call
    tried again."""
    rng = rng or random.Random()
    what = f"{method} {_where(url)}"
    has_body = any(kw.get(k) is not None for k in ("data", "json", "files"))
    watch = _Watch(clock() + policy.deadline, clock)
    last, refreshed = "", False
    attempt = 0
    while attempt < policy.attempts:
        if limiter:
            limiter.acquire()
        wait = None
        if on_attempt:
            on_attempt()
        outer, _calls.watch = getattr(_calls, "watch", None), watch   # a token fetched inside a call nests
        try:
            try:
                resp = _exchange(session, method, url, policy, watch, has_body, auth=auth, **kw)
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as e:
                raise ConfigurationError(f"{what}: not a usable URL ({type(e).__name__}); check the configured "
                                         f"URL") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError, urllib3.exceptions.HTTPError, ConnectionError,
                TimeoutError) as e:   # not InvalidURL, MissingSchema...: a wrong setting is not retried
            if watch.fired or clock() >= watch.deadline:
                raise DeadlineExceeded(f"{what}: no complete answer within the {policy.deadline:g} s deadline") from None
            last = cause(e)
        else:
            if watch.fired:   # the socket was shut under a close-delimited body: what came is not all
                raise DeadlineExceeded(f"{what}: no complete answer within the {policy.deadline:g} s deadline")
            if resp.status_code in (401, 403):
                if limiter:
                    limiter.refund()   # refused at the door: not charged to the quota
                if hasattr(auth, "refused") and auth.refused(resp):
                    if not refreshed:   # a new token, tried at once (and once per call without a wait)
                        refreshed = True
                        continue
                    last = "HTTP 401 token expired again"
                elif auth_errors_are_answers:
                    return resp
                else:
                    raise ConfigurationError(f"{what}: HTTP {resp.status_code} (check the credentials)")
            elif resp.status_code not in retry_statuses:
                return resp
            else:
                wait = retry_after_seconds(resp)
                last = f"HTTP {resp.status_code}"
                if limiter:
                    limiter.refund()   # a 5xx or a 429 was not admitted: it does not count against the quota
                if wait is not None and wait > policy.max_retry_after:
                    raise TransientError(f"{what}: {last}, server asks to wait {wait:.0f} s", retry_after=wait)
        finally:
            watch.disarm()
            _calls.watch = outer
        if attempt == policy.attempts - 1:
            break
        delay = policy.backoff(attempt, rng, wait)
        if clock() + delay >= watch.deadline:
            raise TransientError(f"{what}: {last}; the next try would pass the {policy.deadline:g} s deadline",
                                 retry_after=wait)
        if on_retry:
            on_retry(attempt + 1, last, delay)
        sleep(delay)
        attempt += 1
    raise TransientError(f"{what}: gave up after {policy.attempts} tries ({last})")


def json_body(resp: requests.Response, what: str):
    """The answer's JSON (any JSON value); ``ContractViolation`` when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        raise ContractViolation(f"{what}: HTTP {resp.status_code} with a body that is not JSON",
                                sample=[mask_text(resp.text[:200])]) from None


def json_object(resp: requests.Response, what: str) -> dict:
    """The answer's JSON object; ``ContractViolation`` for a list, a string or anything but an object."""
    body = json_body(resp, what)
    if not isinstance(body, dict):
        raise ContractViolation(f"{what}: HTTP {resp.status_code} with a JSON {type(body).__name__} where the "
                                f"contract has an object")
    return body
