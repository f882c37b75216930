"""A token bucket per API token, and the request body size limit."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse


class RateLimiter:
    """``burst`` requests at once, refilled at ``rate`` per second, per key (a token's name)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when the request may run; else the seconds until one request is allowed."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def throttled(wait: float) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": f"too many requests for this token: wait {wait:.2f} seconds",
                    "extensions": {
                        "code": "THROTTLED",
                        "category": "LIMIT_EXCEEDED",
                        "retryAfterSeconds": round(wait, 3),
                    },
                }
            ]
        },
        status_code=429,
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class BodySizeLimit:
    """Answers 413 to a request whose body is over ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        response = JSONResponse(
            {
                "errors": [
                    {
                        "message": f"the request body is over {self.max_bytes:,} bytes",
                        "extensions": {"code": "REQUEST_TOO_LARGE", "category": "LIMIT_EXCEEDED"},
                    }
                ]
            },
            status_code=413,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
