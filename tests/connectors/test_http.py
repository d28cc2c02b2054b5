"""The HTTP clients against hostile servers on 127.0.0.1 (issue #16 item 4, issue #15 "Contain the
damage"): no redirect of a body or credentials, an overall deadline, a maximum answer size, a token
that is never sent expired, one clear error for a malformed answer. Real sockets, no mocks."""
from __future__ import annotations

import json
import pickle
import time
import tracemalloc

import pytest

from dealersync.connectors.crm import CrmClient, CrmSettings
from dealersync.connectors.http import RetryPolicy
from dealersync.connectors.oem import OemClient, OemSettings
from dealersync.errors import (ConfigurationError, ContractViolation, DeadlineExceeded, RedirectRefused,
                               ResponseTooLarge, TerminalException, TransientError, TransientException)

from .hostile import HostileServer, answer, huge, redirect, trickle

SECRET = "s3cret-client-secret-value"
FAST = dict(base=0.01, cap=0.02, attempts=3)


def oem(url, **kw) -> OemClient:
    policy = kw.pop("policy", None) or RetryPolicy(**FAST)
    return OemClient(OemSettings(url=url, client_id="dealersync", client_secret=SECRET, dealer_number="GZ0012"),
                     policy=policy, **kw)


def crm(url, **kw) -> CrmClient:
    policy = kw.pop("policy", None) or RetryPolicy(**FAST)
    return CrmClient(CrmSettings(url=url, token="crm-token-1234"), policy=policy, **kw)


def token_ok(h, body):
    answer(h, 200, {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600})


def labor_ok(h, body):
    answer(h, 200, {"items": [{"LaborOperationID": "A0101"}], "nextCursor": None})


# ------------------------------------------------------------------------------------ redirects

def test_a_307_on_the_token_endpoint_does_not_repost_the_secret():
    with HostileServer({}) as evil, HostileServer({"POST /oauth/token": redirect("")}) as portal:
        portal.routes["POST /oauth/token"] = redirect(evil.url + "/steal")
        evil.routes["POST /steal"] = token_ok
        with pytest.raises(RedirectRefused) as e:
            oem(portal.url).labor_operations()
    assert evil.seen == []                         # nothing, let alone the secret, reached the other host
    assert SECRET not in str(e.value) and "/steal" in str(e.value)


def test_a_307_on_the_crm_batch_does_not_repost_the_contacts():
    contacts = [{"externalId": f"M{i}", "name": f"客户{i}", "mobile": f"1380013{i:04d}"} for i in range(100)]
    with HostileServer({}) as evil, HostileServer({}) as crm_server:
        crm_server.routes["POST /contacts/batch-upsert"] = redirect(evil.url + "/contacts/batch-upsert")
        evil.routes["POST /contacts/batch-upsert"] = lambda h, b: answer(h, 200, {"results": []})
        with pytest.raises(RedirectRefused):
            crm(crm_server.url).upsert_contacts(contacts)
        # even to the same origin: a body is never re-posted
        crm_server.routes["POST /tasks/batch-upsert"] = redirect("/elsewhere")
        with pytest.raises(RedirectRefused):
            crm(crm_server.url).upsert_tasks([{"externalId": "T1"}])
    assert evil.seen == []
    assert [s[1] for s in crm_server.seen] == ["/contacts/batch-upsert", "/tasks/batch-upsert"]


def test_a_get_follows_a_redirect_only_to_the_same_origin():
    with HostileServer({}) as evil, HostileServer({}) as crm_server:
        crm_server.routes["GET /contacts"] = redirect("/v2/contacts?limit=1")
        crm_server.routes["GET /v2/contacts"] = lambda h, b: answer(h, 200, {"items": [{"externalId": "M1"}]})
        assert crm(crm_server.url).check()["sample_contacts"] == 1
        crm_server.routes["GET /contacts"] = redirect(evil.url + "/contacts")
        evil.routes["GET /contacts"] = lambda h, b: answer(h, 200, {"items": []})
        with pytest.raises(RedirectRefused):
            crm(crm_server.url).check()
    assert evil.seen == []                         # the bearer token stayed home


# ------------------------------------------------------------------------------------ deadline and size

@pytest.mark.parametrize("headers_too", [False, True])
def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(headers_too):
    policy = RetryPolicy(**FAST, deadline=2.0, timeout=(5.0, 30.0))
    with HostileServer({"POST /oauth/token": token_ok,
                        "GET /code-tables/labor-operations": trickle(0.4, headers_too=headers_too)}) as s:
        client = oem(s.url, policy=policy)
        client.token()
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.labor_operations()
        took = time.monotonic() - t0
    # the read timeout (30 s) never fires: one byte arrives every 0.4 s; only the deadline ends the call
    assert took < policy.deadline + 1.5, took


def test_a_huge_answer_is_refused_without_reading_it_whole():
    big = huge(300 * 1024 * 1024)
    policy = RetryPolicy(**FAST, max_body_bytes=4 * 1024 * 1024)
    with HostileServer({"GET /leads": big}) as s:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge) as e:
                list(crm(s.url, policy=policy).pages("leads"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, peak           # about the limit, not 300 MB (nor the 1.16 GB of #15)
    assert big.sent < 100 * 1024 * 1024            # the client hung up early
    assert "http_max_body_bytes" in str(e.value)


def test_a_declared_huge_answer_is_refused_unread():
    with HostileServer({"GET /leads": huge(300 * 1024 * 1024, declare=True)}) as s:
        with pytest.raises(ResponseTooLarge) as e:
            list(crm(s.url, policy=RetryPolicy(**FAST, max_body_bytes=1024 * 1024)).pages("leads"))
    assert e.value.counts["declared"] == 300 * 1024 * 1024


# ------------------------------------------------------------------------------------ tokens

class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_a_retry_never_carries_an_expired_token():
    """The token expires while the client waits between tries: the next try fetches a new one."""
    issued, clock = [], Clock()

    def token(h, body):
        issued.append(f"tok-{len(issued) + 1}")
        answer(h, 200, {"access_token": issued[-1], "token_type": "Bearer", "expires_in": 60})
    calls = []

    def labor(h, body):
        calls.append(h.headers["Authorization"])
        if len(calls) == 1:
            return answer(h, 503, {"Errors": [{"ErrorCode": "UNAVAILABLE"}]})
        labor_ok(h, body)

    def sleep(d):
        clock.t += 120   # the 60 s token lapses during the wait
    with HostileServer({"POST /oauth/token": token, "GET /code-tables/labor-operations": labor}) as s:
        client = oem(s.url, sleep=sleep, clock=clock)
        assert client.labor_operations() == [{"LaborOperationID": "A0101"}]
    assert calls == ["Bearer tok-1", "Bearer tok-2"] and client.token_refreshes == 2


def test_a_token_refused_as_expired_is_renewed_once_and_the_call_goes_on():
    issued, calls = [], []

    def token(h, body):
        issued.append(f"tok-{len(issued) + 1}")
        answer(h, 200, {"access_token": issued[-1], "token_type": "Bearer", "expires_in": 3600})

    def labor(h, body):
        calls.append(h.headers["Authorization"])
        if h.headers["Authorization"] == "Bearer tok-1":
            return answer(h, 401, {"Errors": [{"ErrorCode": "TOKEN_EXPIRED"}]})
        labor_ok(h, body)
    with HostileServer({"POST /oauth/token": token, "GET /code-tables/labor-operations": labor}) as s:
        client = oem(s.url)
        assert len(client.labor_operations()) == 1
        s.routes["GET /code-tables/labor-operations"] = lambda h, b: answer(h, 401, {"Errors": [{"ErrorCode": "INVALID_CLIENT"}]})
        with pytest.raises(ConfigurationError):
            client.labor_operations()
    assert calls == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize("body,words", [
    ([{"access_token": "x"}], "JSON list"),
    ({"token_type": "Bearer", "expires_in": 60}, "no access_token"),
    ({"access_token": "tok", "token_type": "Bearer", "expires_in": "soon"}, "expires_in is str"),
    ({"access_token": "tok", "token_type": "Bearer", "expires_in": -5}, "expires_in is -5"),
    ({"access_token": "tok", "token_type": "Bearer", "expires_in": None}, "expires_in is None"),
])
def test_a_malformed_token_answer_is_one_clear_error(body, words):
    with HostileServer({"POST /oauth/token": lambda h, b: answer(h, 200, body)}) as s:
        with pytest.raises(ContractViolation) as e:
            oem(s.url).token()
    assert words in str(e.value) and "oauth/token" in str(e.value)


def test_a_list_where_an_object_is_expected_is_one_clear_error():
    with HostileServer({"POST /oauth/token": token_ok,
                        "GET /code-tables/labor-operations": lambda h, b: answer(h, 200, [1, 2]),
                        "GET /leads": lambda h, b: answer(h, 200, [{"leadId": "L1"}]),
                        "POST /tasks/batch-upsert": lambda h, b: answer(h, 200, {"results": [7]})}) as s:
        with pytest.raises(ContractViolation, match="JSON list"):
            oem(s.url).labor_operations()
        with pytest.raises(ContractViolation, match="JSON list"):
            list(crm(s.url).pages("leads"))
        with pytest.raises(ContractViolation, match="outside the contract"):
            crm(s.url).upsert_tasks([{"externalId": "T1"}])


# ------------------------------------------------------------------------------------ retries

def test_a_wait_that_does_not_fit_the_deadline_hands_retry_after_to_the_caller():
    with HostileServer({"GET /contacts": lambda h, b: answer(h, 429, {"code": "RATE_LIMITED"},
                                                            {"Retry-After": "30"})}) as s:
        slept = []
        with pytest.raises(TransientError) as e:
            crm(s.url, sleep=slept.append, policy=RetryPolicy(**FAST, deadline=10.0)).check()
    assert e.value.retry_after == 30.0 and e.value.retryable and slept == []


def test_retry_after_is_waited_for_when_it_fits():
    n = []

    def contacts(h, b):
        n.append(1)
        if len(n) == 1:
            return answer(h, 429, {"code": "RATE_LIMITED"}, {"Retry-After": "2"})
        answer(h, 200, {"items": []})
    with HostileServer({"GET /contacts": contacts}) as s:
        slept = []
        crm(s.url, sleep=slept.append).check()
    assert slept == [2.0]


def test_the_error_family_pickles_with_its_markers():
    errs = [TransientError("t", retry_after=3.0), DeadlineExceeded("d"), ResponseTooLarge("r", counts={"limit": 1}),
            RedirectRefused("x"), ContractViolation("c", sample=[1]), ConfigurationError("k")]
    for e in errs:
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and back.__dict__ == e.__dict__
        assert isinstance(back, TransientException) == back.retryable != isinstance(back, TerminalException)
    assert pickle.loads(pickle.dumps(errs[0])).retry_after == 3.0
    assert json.dumps(errs[2].counts)


def test_the_limits_come_from_the_settings(monkeypatch):
    from dealersync.config import Settings
    monkeypatch.setenv("DEALERSYNC_HTTP_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("DEALERSYNC_HTTP_DEADLINE_SECONDS", "9")
    s = Settings(crm_url="http://127.0.0.1:9/crm/v1", crm_token="tok", oem_url="http://127.0.0.1:9/api/v1",
                 oem_client_id="c", oem_client_secret="s", oem_dealer_number="SZ0417")   # no defaults (issue 15)
    c = CrmClient(CrmSettings.from_settings(s))
    o = OemClient(OemSettings.from_settings(s))
    assert c.policy.max_body_bytes == o.policy.max_body_bytes == 4096 and c.policy.deadline == 9.0
    with HostileServer({"GET /contacts": lambda h, b: answer(h, 200, {"items": [], "pad": "x" * 5000})}) as srv:
        c.s.url = srv.url
        with pytest.raises(ResponseTooLarge):
            c.check()


class _Failed:
    def __init__(self, e):
        self.e = e

    def result(self):
        raise self.e


def test_a_task_retry_honours_the_servers_retry_after():
    """Prefect's retry condition (flows.common.transient_only) waits what the server asked beyond the
    task's own retry delay; terminal errors are not retried."""
    from types import SimpleNamespace

    from dealersync.flows.common import transient_only
    task, run, slept = SimpleNamespace(retry_delay_seconds=[10, 60, 300]), SimpleNamespace(run_count=1), []
    assert transient_only(task, run, _Failed(TransientError("429", retry_after=45.0)), sleep=slept.append)
    assert transient_only(task, SimpleNamespace(run_count=2), _Failed(TransientError("429", retry_after=45.0)),
                          sleep=slept.append)
    assert slept == [35.0]                       # 45 asked, 10 planned; the second retry waits 60 anyway
    assert not transient_only(task, run, _Failed(RedirectRefused("307")), sleep=slept.append)
    assert not transient_only(task, run, _Failed(ResponseTooLarge("big")), sleep=slept.append)
    assert transient_only(task, run, _Failed(DeadlineExceeded("slow")), sleep=slept.append) and slept == [35.0]


def test_a_wrong_url_is_not_retried():
    slept = []
    with pytest.raises(ConfigurationError, match="not a usable URL"):
        crm("127.0.0.1:1/crm", sleep=slept.append).check()
    assert slept == []
