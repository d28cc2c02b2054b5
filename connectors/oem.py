"""Client of the OEM dealer portal (``shared/specs/oem-portal.openapi.yaml``), built to the contract.

The token lives in a ``connectors.http.TokenAuth`` (obtained when missing or near expiry, dropped and
renewed on 401 ``TOKEN_EXPIRED``, so no try carries an expired one); the token request is a POST with the
client secret and is never redirected. Retries with backoff and jitter honouring ``Retry-After`` for
429, 5xx and connection errors, an overall deadline and a maximum answer size (connectors.http);
business errors (409, 422) are answers, not retried; a client-side rate limiter. A malformed token
answer (not an object, no ``access_token``, ``expires_in`` not a number) is one ``ContractViolation``.
Takes its ``requests.Session``; no network I/O in the constructor; ``check()`` is the preflight.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import requests

from dealersync.errors import ConfigurationError, ContractViolation

from .http import RateLimiter, RetryPolicy, TokenAuth, guarded_session, json_object, send


@dataclass
class OemSettings:
    url: str
    client_id: str
    client_secret: str
    dealer_number: str
    rate_per_second: float | None = None
    creator_name_code: str = "DEALERSYNC"
    environment: str = "Test"
    policy: RetryPolicy | None = None

    @classmethod
    def from_settings(cls, s) -> "OemSettings":
        return cls(url=s.oem_url.rstrip("/"), client_id=s.oem_client_id,
                   client_secret=s.oem_client_secret.get_secret_value(), dealer_number=s.oem_dealer_number,
                   rate_per_second=s.oem_rate_per_second, policy=RetryPolicy.from_settings(s))


@dataclass
class Answer:
    """A portal answer the caller acts on: status and JSON body."""
    status: int
    body: dict

    @property
    def error_codes(self) -> list[str]:
        errors = self.body.get("Errors")
        return [e.get("ErrorCode") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class OemClient:
    def __init__(self, settings: OemSettings, session: requests.Session | None = None,
                 policy: RetryPolicy | None = None, sleep=time.sleep, clock=time.monotonic):
        self.s = settings
        self.session = guarded_session(session)
        self.policy = policy or settings.policy or RetryPolicy()
        self.limiter = RateLimiter(settings.rate_per_second, burst=2) if settings.rate_per_second else None
        self.sleep, self.clock = sleep, clock
        self.auth = TokenAuth(self._fetch_token, _token_expired, clock=clock)
        self.requests_sent = 0

    @property
    def token_refreshes(self) -> int:
        return self.auth.refreshes

    def _count(self) -> None:
        self.requests_sent += 1

    # ------------------------------------------------------------------ auth
    def _fetch_token(self) -> tuple[str, float]:
        """(access token, lifetime in seconds) from ``POST /oauth/token`` (client credentials)."""
        # the token endpoint is not the rate-limited API: no limiter token spent on it
        r = send(self.session, "POST", self.s.url + "/oauth/token", policy=self.policy, limiter=None,
                 sleep=self.sleep, on_attempt=self._count, auth_errors_are_answers=True,
                 data={"grant_type": "client_credentials", "client_id": self.s.client_id,
                       "client_secret": self.s.client_secret})
        if r.status_code != 200:
            raise ConfigurationError(f"OEM portal {self.s.url}: token refused (HTTP {r.status_code}); "
                                     f"check DEALERSYNC_OEM_CLIENT_ID / DEALERSYNC_OEM_CLIENT_SECRET")
        return parse_token(json_object(r, "POST /oauth/token"))

    def token(self) -> str:
        """The current access token (fetched when missing or near expiry)."""
        return self.auth.current()

    def _call(self, method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
        """One logical call (connectors.http.send). A token refused as expired is renewed and the call
        tried again; any other 401/403 is a ``ConfigurationError``."""
        h = {"Accept": "application/json", **(headers or {})}
        r = send(self.session, method, self.s.url + path, policy=self.policy, limiter=self.limiter,
                 sleep=self.sleep, on_attempt=self._count, headers=h, auth=self.auth, auth_errors_are_answers=True,
                 **kw)
        if r.status_code in (401, 403):
            codes = [e.get("ErrorCode") for e in (_safe_json(r).get("Errors") or []) if isinstance(e, dict)]
            raise ConfigurationError(f"OEM portal {method} {path}: HTTP {r.status_code} {codes} "
                                     f"(check DEALERSYNC_OEM_CLIENT_ID / _SECRET)")
        return r

    def check(self) -> dict:
        self.auth.invalidate()
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
            cursor, items = body.get("nextCursor"), body.get("items", [])
            if not isinstance(items, list):
                raise ContractViolation("OEM portal GET /warranty-claims: a page without an items list")
            yield items, cursor
            if not cursor:
                return

    def submit_survey(self, payload: dict, idempotency_key: str) -> Answer:
        r = self._call("POST", "/survey-results", headers={"Idempotency-Key": idempotency_key}, json=payload)
        return self._answer(r, "POST /survey-results", {200, 202, 409, 422})

    def upload_report(self, report_type: str, period: str, filename: str, data: bytes, idempotency_key: str,
                      content_type: str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") -> Answer:
        r = self._call("POST", "/reports", headers={"Idempotency-Key": idempotency_key},
                       data={"dealerNumberId": self.s.dealer_number, "reportType": report_type, "period": period},
                       files={"file": (filename, data, content_type)})
        return self._answer(r, "POST /reports", {200, 201, 409, 413, 422})

    def labor_operations(self) -> list[dict]:
        out, cursor = [], None
        while True:
            body = self._answer(self._call("GET", "/code-tables/labor-operations",
                                           params={"cursor": cursor} if cursor else None),
                                "GET /code-tables/labor-operations", {200}).body
            items = body.get("items", [])
            if not isinstance(items, list):
                raise ContractViolation("OEM portal GET /code-tables/labor-operations: a page without an items list")
            out += items
            cursor = body.get("nextCursor")
            if not cursor:
                return out

    @staticmethod
    def _answer(r: requests.Response, what: str, expected: set[int]) -> Answer:
        if r.status_code not in expected:
            raise ContractViolation(f"OEM portal {what}: unexpected HTTP {r.status_code}", sample=[r.text[:300]])
        return Answer(r.status_code, json_object(r, what))


def parse_token(body: dict) -> tuple[str, float]:
    """(access_token, expires_in seconds) from a token answer, checked against the contract
    (``access_token`` a non-empty string, ``expires_in`` a positive number; absent: 60 s)."""
    tok = body.get("access_token")
    if not isinstance(tok, str) or not tok:
        raise ContractViolation("OEM portal POST /oauth/token: the answer has no access_token string")
    life = body.get("expires_in", 60)
    if isinstance(life, bool) or not isinstance(life, (int, float)) or not math.isfinite(life) or life <= 0:
        shown = repr(life)[:20] if isinstance(life, (int, float, bool)) or life is None else type(life).__name__
        raise ContractViolation(f"OEM portal POST /oauth/token: expires_in is {shown}, not a number of seconds")
    return tok, float(life)


def _token_expired(r: requests.Response) -> bool:
    """The portal refused the token because it expired (401 ``TOKEN_EXPIRED``)."""
    return any(isinstance(e, dict) and e.get("ErrorCode") == "TOKEN_EXPIRED" for e in (_safe_json(r).get("Errors") or []))


def _safe_json(r: requests.Response) -> dict:
    try:
        b = r.json()
        return b if isinstance(b, dict) else {}
    except ValueError:
        return {}
