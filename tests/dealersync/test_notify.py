"""Notifications (issue 15): generic JSON webhook, WeCom and DingTalk robot formats, against a real
HTTP server on 127.0.0.1; texts carry no personal data; a flow with failed items ends Failed and
notifies; an unreachable target never fails the caller."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dealersync.config import Settings
from dealersync.connectors.notify import DINGTALK_URL, WECOM_URL, Notifier, parse_target
from dealersync.errors import ConfigurationError, ItemsFailed
from dealersync.flows.common import finish
from dealersync.flows.ingest import ingest_problems
from dealersync.flows.oem import claim_problems


class Hook:
    """A real webhook receiver: records (path, headers, JSON body); answers like a robot."""

    def __init__(self, answer: dict | None = None, status: int = 200):
        self.got: list[tuple[str, dict, dict]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.got.append((self.path, dict(self.headers), body))
                data = json.dumps(answer if answer is not None else {"errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


PII = "客户 13812345678 身份证 11010519491231002X 邮箱 someone@example.cn"


def test_generic_json_webhook(hook):
    n = Notifier([f"json://127.0.0.1:{hook.port}/hooks/ds"])
    (d,) = n.send("3 claims failed", "see " + PII, "failure", {"claims": 3, "who": "13812345678"})
    assert d.ok and d.detail == "HTTP 200"
    path, headers, body = hook.got[0]
    assert path == "/hooks/ds" and headers["Content-Type"] == "application/json"
    assert body["title"] == "3 claims failed" and body["type"] == "failure" and body["source"] == "dealersync"
    assert body["facts"]["claims"] == 3
    text = json.dumps(body, ensure_ascii=False)
    for secret in ("13812345678", "11010519491231002X", "someone@example.cn"):
        assert secret not in text
    assert "138****5678" in text


@pytest.mark.parametrize("kind", ["wecom", "dingtalk"])
def test_robot_formats(hook, kind):
    n = Notifier([f"{kind}+http://127.0.0.1:{hook.port}/robot/send?key=K-123"])
    (d,) = n.send("claims nearing their deadline", "2 claims within 5 days", "warning")
    assert d.ok and d.detail == "errcode 0"
    path, _, body = hook.got[0]
    assert path == "/robot/send?key=K-123"
    assert body["msgtype"] == "text" and "2 claims within 5 days" in body["text"]["content"]
    assert "K-123" not in d.target          # the robot's key is a secret


def test_robot_refusal_is_reported_not_raised():
    h = Hook(answer={"errcode": 93000, "errmsg": "invalid webhook url"})
    try:
        (d,) = Notifier([f"wecom+http://127.0.0.1:{h.port}/send?key=bad"]).send("t", "m")
        assert not d.ok and d.detail == "errcode 93000"
    finally:
        h.close()


def test_unreachable_target_does_not_raise():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))          # bound, never listening: connection refused
    port = s.getsockname()[1]
    try:
        (d,) = Notifier([f"json://127.0.0.1:{port}/x"], timeout=2).send("t", "m")
        assert not d.ok and d.detail == "ConnectionError"
    finally:
        s.close()


@pytest.mark.parametrize("url, kind, target", [
    ("wecombot://abc-KEY", "wecom", WECOM_URL + "abc-KEY"),
    ("dingtalk://tok123/", "dingtalk", DINGTALK_URL + "tok123"),
    ("jsons://hooks.example.cn/x", "json", "https://hooks.example.cn/x"),
    ("json://127.0.0.1:8080/x", "json", "http://127.0.0.1:8080/x"),
])
def test_apprise_style_urls(url, kind, target):
    t = parse_target(url)
    assert (t.kind, t.url) == (kind, target)


@pytest.mark.parametrize("bad", ["mailto://x@example.cn", "not a url", "wecombot://"])
def test_bad_target_is_a_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="notify_urls"):
        parse_target(bad)


def test_notify_urls_setting_forms(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEALERSYNC_NOTIFY_URLS", '["json://127.0.0.1:1/a", "wecombot://k"]')
    assert Settings().notify_urls == ["json://127.0.0.1:1/a", "wecombot://k"]
    monkeypatch.setenv("DEALERSYNC_NOTIFY_URLS", "json://127.0.0.1:1/a, dingtalk://t")
    assert Settings().notify_urls == ["json://127.0.0.1:1/a", "dingtalk://t"]


def test_a_flow_with_failed_items_ends_failed_and_notifies(hook, monkeypatch, tmp_path):
    """``finish`` (every flow's ending): problems -> a Failed state carrying the result, one notification
    without personal data; no problems -> the result itself, nothing sent."""
    monkeypatch.chdir(tmp_path)
    s = Settings(notify_urls=[f"json://127.0.0.1:{hook.port}/n"])
    out = {"validation_failed": 133, "accepted": 1, "rejected": 0, "failed": 0}
    state = finish("push_warranty_claims", out, claim_problems(out), s, {"validation_failed": 133})
    assert state.is_failed() and "133 claim(s) failed validation" in state.message
    err = state.result(raise_on_failure=False)
    assert isinstance(err, ItemsFailed) and err.result == out
    with pytest.raises(ItemsFailed):
        state.result()
    (_, _, body), = hook.got
    assert body["type"] == "failure" and "133" in body["message"] and body["facts"] == {"validation_failed": 133}
    assert finish("push_warranty_claims", {"accepted": 5}, claim_problems({"accepted": 5}), s) == {"accepted": 5}
    assert len(hook.got) == 1


@pytest.mark.parametrize("out, expected", [
    ({"validation_failed": 0, "rejected": 0, "failed": 0}, []),
    ({"validation_failed": 2, "rejected": 0, "failed": 0}, ["2 claim(s) failed validation"]),
    ({"validation_failed": 0, "rejected": 1, "failed": 3}, ["1 claim(s) refused", "3 claim submission(s) not delivered"]),
])
def test_claim_problems(out, expected):
    got = claim_problems(out)
    assert len(got) == len(expected) and all(g.startswith(e) for g, e in zip(got, expected))


def test_ingest_problems_threshold():
    rows = [{"file": "a.csv", "status": "loaded", "rows_read": 100, "rows_quarantined": 5},
            {"file": "b.csv", "status": "loaded", "rows_read": 100, "rows_quarantined": 6},
            {"file": "c.csv", "status": "rejected", "rows_read": 0, "rows_quarantined": 0}]
    got = ingest_problems(rows, 0.05)
    assert got[0].startswith("1 file(s) rejected (c.csv)") and got[1].startswith("b.csv: 6 of 100")
    assert len(got) == 2


def test_claims_nearing_their_deadline_notify(hook, monkeypatch, tmp_path):
    from datetime import date

    from dealersync.flows.oem import deadline_notice
    monkeypatch.chdir(tmp_path)
    s = Settings(notify_urls=[f"dingtalk+http://127.0.0.1:{hook.port}/robot/send?access_token=t"],
                 claim_deadline_warning_days=5)
    near = [{"claim_no": "WC1", "ro_number": "RO1", "local_status": "VALIDATION_FAILED", "deadline": date(2026, 12, 3),
             "days_left": 3}, {"claim_no": "WC2", "ro_number": "RO2", "local_status": "QUEUED",
                               "deadline": date(2026, 12, 1), "days_left": 1}]
    (d,) = deadline_notice(near, s)
    assert d.ok
    text = hook.got[0][2]["text"]["content"]
    assert "2 claim(s)" in text and "within 5 days" in text and "2026-12-01" in text
    assert deadline_notice([], s) == [] and len(hook.got) == 1
