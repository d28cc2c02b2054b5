"""Client of the OEM dealer portal (``shared/specs/oem-portal.openapi.yaml``), built to the contract.

Token cache with refresh before expiry and one retry on 401 ``TOKEN_EXPIRED``; retries with backoff and
jitter honouring ``Retry-After`` for 429, 5xx and connection errors (connectors.http); business errors
(409, 422) are answers, not retried; a client-side rate limiter; timeouts everywhere. Takes its
``requests.Session``; no network I/O in the constructor; ``check()`` is the preflight.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator

import requests

from dealersync.errors import ConfigurationError, ContractViolation, TransientError

from .http import RateLimiter, RetryPolicy, json_body, send


@dataclass
class OemSettings:
    url: str
    client_id: str
    client_secret: str
    dealer_number: str
    rate_per_second: float | None = None
    creator_name_code: str = "DEALERSYNC"
    environment: str = "Test"

    @classmethod
    def from_settings(cls, s) -> "OemSettings":
        return cls(url=s.oem_url.rstrip("/"), client_id=s.oem_client_id,
                   client_secret=s.oem_client_secret.get_secret_value(), dealer_number=s.oem_dealer_number,
                   rate_per_second=s.oem_rate_per_second)


@dataclass
class Answer:
    """A portal answer the caller acts on: status and JSON body."""
    status: int
    body: dict

    @property
    def error_codes(self) -> list[str]:
        return [e.get("ErrorCode") for e in self.body.get("Errors", [])]


class OemClient:
    def __init__(self, settings: OemSettings, session: requests.Session | None = None,
                 policy: RetryPolicy | None = None, sleep=time.sleep, clock=time.monotonic):
        self.s = settings
        self.session = session or requests.Session()
        self.policy = policy or RetryPolicy()
        self.limiter = RateLimiter(settings.rate_per_second, burst=2) if settings.rate_per_second else None
        self.sleep, self.clock = sleep, clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.requests_sent = 0
        self.token_refreshes = 0

    def _count(self) -> None:
        self.requests_sent += 1

    # ------------------------------------------------------------------ auth
    def _fetch_token(self) -> str:
        # the token endpoint is not the rate-limited API: no limiter token spent on it
        r = send(self.session, "POST", self.s.url + "/oauth/token", policy=self.policy, limiter=None,
                 sleep=self.sleep, on_attempt=self._count, retry_statuses={429, 500, 502, 503, 504},
                 data={"grant_type": "client_credentials", "client_id": self.s.client_id,
                       "client_secret": self.s.client_secret})
        if r.status_code != 200:
            raise ConfigurationError(f"OEM portal {self.s.url}: token refused (HTTP {r.status_code}); "
                                     f"check DEALERSYNC_OEM_CLIENT_ID / DEALERSYNC_OEM_CLIENT_SECRET")
        body = json_body(r, "POST /oauth/token")
        if not body.get("access_token"):
            raise ContractViolation("token response without access_token")
        self._token = body["access_token"]
        # refresh a little before the portal says it expires
        self._expires = self.clock() + max(1.0, float(body.get("expires_in", 60)) * 0.9)
        self.token_refreshes += 1
        return self._token

    def token(self, expired: str | None = None) -> str:
        """The cached token, fetched when missing or near expiry; ``expired``: the portal refused this token,
        so fetch a new one unless another thread already has (one refresh for many refused calls)."""
        with self._lock:
            if self._token is None or self.clock() >= self._expires or (expired is not None and expired == self._token):
                return self._fetch_token()
            return self._token

    def _call(self, method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
        """One logical call. On 401 TOKEN_EXPIRED: a new token and the call again (a token can die early
        more than once in a row, so up to three times, then a transient error); any other 401 is a
        configuration error."""
        refused = None
        for attempt in range(4):
            tok = self.token(expired=refused)
            h = {"Authorization": f"Bearer {tok}", "Accept": "application/json", **(headers or {})}
            r = send(self.session, method, self.s.url + path, policy=self.policy, limiter=self.limiter,
                     sleep=self.sleep, on_attempt=self._count, headers=h, auth_errors_are_answers=True, **kw)
            if r.status_code not in (401, 403):
                return r
            codes = [e.get("ErrorCode") for e in (_safe_json(r).get("Errors") or [])]
            if self.limiter:
                self.limiter.refund()   # refused at the door: not charged to the portal's quota
            if "TOKEN_EXPIRED" not in codes:
                raise ConfigurationError(f"OEM portal {method} {path}: HTTP {r.status_code} {codes} "
                                         f"(check DEALERSYNC_OEM_CLIENT_ID / _SECRET)")
            refused = tok
        raise TransientError(f"OEM portal {method} {path}: the token kept expiring")

    def check(self) -> dict:
        self._token = None
        self.token()
        ops = self.labor_operations()
        return {"url": self.s.url, "dealer": self.s.dealer_number, "token": "ok", "labor_operations": len(ops)}

    # ------------------------------------------------------------------ operations
    def application_area(self, bodid: str, created: str) -> dict:
        return {"Sender": {"CreatorNameCode": self.s.creator_name_code, "DealerNumberID": self.s.dealer_number},
                "CreationDateTime": created, "BODID": bodid}

    def submit_claim(self, payload: dict, idempotency_key: str) -> Answer:
        r = self._call("POST", "/warranty-claims", headers={"Idempotency-Key": idempotency_key}, json=payload)
        return self._answer(r, "POST /warranty-claims", {200, 202, 409, 422})

    def claim_status(self, claim_number: str) -> dict | None:
        r = self._call("GET", f"/warranty-claims/{requests.utils.quote(claim_number, safe='')}")
        if r.status_code == 404:
            return None
        return self._answer(r, "GET /warranty-claims/{n}", {200}).body

    def claim_changes(self, updated_since: str | None = None, cursor: str | None = None,
                      limit: int = 500) -> Iterator[tuple[list[dict], str | None]]:
        while True:
            params = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            elif updated_since:
                params["updatedSince"] = updated_since
            body = self._answer(self._call("GET", "/warranty-claims", params=params), "GET /warranty-claims", {200}).body
            cursor = body.get("nextCursor")
            yield body.get("items", []), cursor
            if not cursor:
                return

    def submit_survey(self, payload: dict, idempotency_key: str) -> Answer:
        r = self._call("POST", "/survey-results", headers={"Idempotency-Key": idempotency_key}, json=payload)
        return self._answer(r, "POST /survey-results", {200, 202, 409, 422})

    def upload_report(self, report_type: str, period: str, filename: str, data: bytes, idempotency_key: str) -> Answer:
        r = self._call("POST", "/reports", headers={"Idempotency-Key": idempotency_key},
                       data={"dealerNumberId": self.s.dealer_number, "reportType": report_type, "period": period},
                       files={"file": (filename, data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
        return self._answer(r, "POST /reports", {200, 201, 409, 413, 422})

    def labor_operations(self) -> list[dict]:
        out, cursor = [], None
        while True:
            body = self._answer(self._call("GET", "/code-tables/labor-operations",
                                           params={"cursor": cursor} if cursor else None),
                                "GET /code-tables/labor-operations", {200}).body
            out += body.get("items", [])
            cursor = body.get("nextCursor")
            if not cursor:
                return out

    @staticmethod
    def _answer(r: requests.Response, what: str, expected: set[int]) -> Answer:
        if r.status_code not in expected:
            raise ContractViolation(f"OEM portal {what}: unexpected HTTP {r.status_code}", sample=[r.text[:300]])
        return Answer(r.status_code, json_body(r, what))


def _safe_json(r: requests.Response) -> dict:
    try:
        b = r.json()
        return b if isinstance(b, dict) else {}
    except ValueError:
        return {}
