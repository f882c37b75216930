"""Rate limits shared by every instance: a token bucket per key, in Redis when GATEWAY_REDIS_URL is
set (one Lua script, atomic, on Redis's clock), else in the process (``hardening.RateLimiter``).

Two kinds of keys: an API token's name (every HTTP request and WebSocket operation takes one token
from ``rate_limit_burst`` refilled at ``rate_limit_per_second``) and a client address whose
authentication failed (``auth_failure_burst`` refilled at ``auth_failures_per_second``), so that
guessing tokens is throttled too. When Redis fails, the process's own buckets take over (a warning
is logged): a limit that is per instance for a while, never none.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.hardening import RateLimiter

log = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV rate per second, burst. Returns the seconds to wait (0: allowed).
TOKEN_BUCKET = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""
PREFIX = "settlement:rate:"


class Buckets:
    """``take(key)``: 0.0 when allowed, else the seconds until a token is there."""

    def __init__(self, rate_per_second: float, burst: int, redis: Any = None, name: str = "token") -> None:
        self.rate, self.burst, self.name = rate_per_second, burst, name
        self.local = RateLimiter(rate_per_second, burst)
        self.redis = redis
        self.script = redis.register_script(TOKEN_BUCKET) if redis is not None else None

    async def take(self, key: str) -> float:
        if self.script is not None:
            try:
                return float(
                    await self.script(keys=[f"{PREFIX}{self.name}:{key}"], args=[self.rate, self.burst])
                )
            except Exception:  # noqa: BLE001 - Redis down: the process's buckets, not no limit
                log.warning("rate limit through Redis failed; limiting per process", exc_info=True)
        return self.local.take(key)


def redis_client(url: str | None) -> Any:
    if not url:
        return None
    import redis.asyncio as redis

    return redis.from_url(url)
