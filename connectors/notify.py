"""Notifications: a failed run or claims nearing their deadline, announced to people, Apprise-style.

Each target is one URL in the ``notify_urls`` setting:

========================================  ==================================================================
``json://host[:port]/path``               generic webhook: ``POST http://host:port/path`` with a JSON body
``jsons://host[:port]/path``              the same over HTTPS                     (Apprise's ``json://`` form)
``wecombot://KEY``                        WeCom (企业微信) group robot: ``POST https://qyapi.weixin.qq.com/
                                          cgi-bin/webhook/send?key=KEY``, body ``{"msgtype": "text",
                                          "text": {"content": ...}}``
``wecom+https://...`` / ``wecom+http://`` the same body to a robot webhook URL given whole
``dingtalk://TOKEN``                      DingTalk (钉钉) custom robot: ``POST https://oapi.dingtalk.com/robot/
                                          send?access_token=TOKEN``, body ``{"msgtype": "text", "text":
                                          {"content": ...}}``
``dingtalk+https://...``                  the same body to a robot webhook URL given whole
========================================  ==================================================================

The generic JSON body is ``{"title", "message", "type" ("info"|"warning"|"failure"), "source":
"dealersync", "facts": {name: number or short code}}``. A robot answers HTTP 200 with
``{"errcode": 0}`` on success; any other errcode is a failure. Texts carry counts and commands only,
never a name, mobile, ID or e-mail (PIPL): callers pass counts, and every text still goes through
``dealersync.privacy.mask_text``. A notification that cannot be delivered is logged and reported back
(``Delivery``); it never fails the run that raised it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests

from dealersync.errors import ConfigurationError
from dealersync.privacy import mask_text

log = logging.getLogger(__name__)

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key="
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send?access_token="
KINDS = ("info", "warning", "failure")


@dataclass(frozen=True)
class Target:
    kind: str        # json | wecom | dingtalk
    url: str         # where the POST goes

    @property
    def shown(self) -> str:
        """The target without its secret part (robot keys and tokens, paths, credentials)."""
        u = urlsplit(self.url)
        return f"{self.kind}:{u.scheme}://{u.hostname or ''}{f':{u.port}' if u.port else ''}/…"


@dataclass
class Delivery:
    target: str
    ok: bool
    detail: str = ""


def parse_target(url: str) -> Target:
    """One ``notify_urls`` entry -> Target. Raises ConfigurationError naming the (masked) entry."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not rest:
        raise ConfigurationError(f"notify_urls: {scheme[:12]!r}... is not a URL (json://, jsons://, wecombot://, "
                                 f"wecom+https://, dingtalk://, dingtalk+https://)")
    if scheme in ("json", "jsons"):
        return Target("json", f"{'https' if scheme == 'jsons' else 'http'}://{rest}")
    if scheme == "wecombot":
        return Target("wecom", WECOM_URL + quote(rest.strip("/"), safe=""))
    if scheme == "dingtalk":
        return Target("dingtalk", DINGTALK_URL + quote(rest.strip("/"), safe=""))
    for kind in ("wecom", "dingtalk"):
        if scheme in (f"{kind}+https", f"{kind}+http"):
            return Target(kind, f"{scheme.split('+')[1]}://{rest}")
    raise ConfigurationError(f"notify_urls: unknown scheme {scheme[:12]!r} (json://, jsons://, "
                             f"wecombot://, wecom+https://, dingtalk://, dingtalk+https://)")


def shown_url(url: str) -> str:
    """An entry of ``notify_urls`` for people: kind, scheme and host only (robot keys, tokens, paths
    and credentials left out)."""
    try:
        return parse_target(url).shown
    except ConfigurationError:
        return url.partition("://")[0][:12] + "://…"


def body_for(target: Target, title: str, message: str, kind: str, facts: dict) -> dict:
    if target.kind == "json":
        return {"title": title, "message": message, "type": kind, "source": "dealersync", "facts": facts}
    return {"msgtype": "text", "text": {"content": f"【dealersync】{title}\n{message}"}}


class Notifier:
    """Sends one text to every configured target. ``session`` is injectable (tests, proxies)."""

    def __init__(self, urls: list[str], timeout: float = 10.0, session: requests.Session | None = None):
        self.targets = [parse_target(u) for u in urls]
        self.timeout = timeout
        self.session = session or requests.Session()

    @classmethod
    def from_settings(cls, s) -> "Notifier":
        return cls(list(s.notify_urls), timeout=s.notify_timeout_seconds)

    def send(self, title: str, message: str, kind: str = "failure", facts: dict | None = None) -> list[Delivery]:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        title, message = mask_text(title), mask_text(message)
        facts = {str(k): (v if isinstance(v, (int, float)) else mask_text(str(v))) for k, v in (facts or {}).items()}
        out = []
        for t in self.targets:
            try:
                r = self.session.post(t.url, json=body_for(t, title, message, kind, facts), timeout=self.timeout)
                ok, detail = 200 <= r.status_code < 300, f"HTTP {r.status_code}"
                if ok and t.kind in ("wecom", "dingtalk"):
                    try:
                        code = r.json().get("errcode", 0)
                    except ValueError:
                        code = "no JSON"
                    ok, detail = code == 0, f"errcode {code}"
            except requests.RequestException as e:
                ok, detail = False, type(e).__name__
            if not ok:
                log.warning("notification to %s not delivered: %s", t.shown, detail)
            out.append(Delivery(t.shown, ok, detail))
        return out
