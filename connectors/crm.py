"""Client of the dealer CRM (``shared/specs/crm.openapi.yaml``). Takes its ``requests.Session`` (the
deadline-aware adapter of ``connectors.http`` is mounted on it); no network I/O in the constructor;
``check()`` is the preflight. Every call is bounded by ``connectors.http.send`` (deadline, answer size,
no redirect of a batch); an answer that is not the contract's object is a ``ContractViolation``."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import requests

from dealersync.errors import ConfigurationError, ContractViolation

from .http import BearerAuth, RateLimiter, RetryPolicy, guarded_session, json_object, send

MAX_BATCH = 100


@dataclass
class CrmSettings:
    url: str
    token: str
    rate_per_second: float | None = None
    page_size: int = 500
    policy: RetryPolicy | None = None

    @classmethod
    def from_settings(cls, s) -> "CrmSettings":
        return cls(url=s.crm_url.rstrip("/"), token=s.crm_token.get_secret_value(),
                   rate_per_second=s.crm_rate_per_second, page_size=s.crm_page_size,
                   policy=RetryPolicy.from_settings(s))


class CrmClient:
    def __init__(self, settings: CrmSettings, session: requests.Session | None = None,
                 policy: RetryPolicy | None = None, sleep=time.sleep):
        self.s = settings
        self.session = guarded_session(session)
        self.policy = policy or settings.policy or RetryPolicy()
        self.auth = BearerAuth(settings.token)
        self.limiter = RateLimiter(settings.rate_per_second, burst=5) if settings.rate_per_second else None
        self.sleep = sleep
        self.requests_sent = 0

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        return send(self.session, method, self.s.url + path, policy=self.policy, limiter=self.limiter,
                    sleep=self.sleep, headers={"Accept": "application/json"}, auth=self.auth,
                    on_attempt=self._count, **kw)

    def _count(self) -> None:
        self.requests_sent += 1

    def check(self) -> dict:
        """Preflight: the CRM answers and accepts the token."""
        r = self._call("GET", "/contacts", params={"limit": 1})
        if r.status_code != 200:
            raise ConfigurationError(f"CRM {self.s.url}: HTTP {r.status_code} on GET /contacts")
        items = json_object(r, "GET /contacts").get("items")
        return {"url": self.s.url, "status": "ok", "sample_contacts": len(items) if isinstance(items, list) else 0}

    def _batch(self, kind: str, records: list[dict]) -> list[dict]:
        if len(records) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} records per batch")
        r = self._call("POST", f"/{kind}/batch-upsert", json={"records": records})
        if r.status_code != 200:
            body = json_object(r, f"POST /{kind}/batch-upsert")
            raise ContractViolation(f"CRM refused a {kind} batch: HTTP {r.status_code} {body.get('code')}: "
                                    f"{body.get('message')}", counts={"records": len(records)},
                                    sample=[x.get("externalId") for x in records[:5]])
        results = json_object(r, f"POST /{kind}/batch-upsert").get("results")
        if not isinstance(results, list) or len(results) != len(records):
            n = len(results) if isinstance(results, list) else 0
            raise ContractViolation(f"CRM answered {kind} batch with {n} results for "
                                    f"{len(records)} records", counts={"records": len(records)})
        if not all(isinstance(x, dict) and x.get("status") in ("created", "updated", "unchanged", "error")
                   for x in results):
            raise ContractViolation(f"CRM answered a {kind} batch with results outside the contract "
                                    f"(each an object with status created, updated, unchanged or error)",
                                    counts={"records": len(records)})
        return results

    def upsert_contacts(self, records: list[dict]) -> list[dict]:
        return self._batch("contacts", records)

    def upsert_tasks(self, records: list[dict]) -> list[dict]:
        return self._batch("tasks", records)

    def delete_contact(self, external_id: str) -> bool:
        """True if deleted now, False if it was not there (already deleted: idempotent)."""
        r = self._call("DELETE", f"/contacts/{requests.utils.quote(external_id, safe='')}")
        if r.status_code == 204:
            return True
        if r.status_code == 404:
            return False
        raise ContractViolation(f"CRM DELETE /contacts/{external_id}: HTTP {r.status_code}")

    def get_contact(self, external_id: str) -> dict | None:
        r = self._call("GET", f"/contacts/{requests.utils.quote(external_id, safe='')}")
        if r.status_code == 404:
            return None
        return json_object(r, "GET /contacts/{id}")

    def pages(self, kind: str, modified_since: str | None = None, cursor: str | None = None) -> Iterator[tuple[list, str | None]]:
        """Pages of a change feed (``leads``, ``contacts``, ``activities``): (items, next cursor). A page
        that is not an object with an ``items`` list (and a string or null ``nextCursor``) is a
        ``ContractViolation``; the items themselves are checked by the caller, one by one."""
        while True:
            params = {"limit": self.s.page_size}
            if cursor:
                params["cursor"] = cursor
            elif modified_since:
                params["modifiedSince"] = modified_since
            r = self._call("GET", f"/{kind}", params=params)
            if r.status_code != 200:
                raise ContractViolation(f"CRM GET /{kind}: HTTP {r.status_code}")
            body = json_object(r, f"GET /{kind}")
            items, cursor = body.get("items", []), body.get("nextCursor")
            if not isinstance(items, list) or not (cursor is None or isinstance(cursor, str)):
                raise ContractViolation(f"CRM GET /{kind}: a page without an items list or with a "
                                        f"nextCursor that is not a string")
            yield items, cursor
            if not cursor:
                return
