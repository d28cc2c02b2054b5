"""Pieces both sandboxes use: the clock in the contracts' time format, the rate-limit quota and the
dropped-connection response."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from fastapi.responses import Response


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    """A time as the contracts write it: UTC, microseconds, ``Z``."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Quota:
    """Token bucket of a server's rate limit: ``take()`` admits a request (None) or says how many whole
    seconds to wait (the Retry-After of a 429). A refused request is not charged."""

    def __init__(self, rate_per_second: float, burst: int):
        self.rate, self.burst = rate_per_second, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> int | None:
        if not self.rate:
            return None
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return max(1, int((1 - self.tokens) / self.rate + 0.999))
        self.tokens -= 1
        return None


class DroppedResponse(Response):
    """Starts a response and breaks the connection mid-body, as a dropped connection looks to a client."""

    def __init__(self):
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
        raise ConnectionResetError("sandbox: connection dropped")
