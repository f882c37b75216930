"""Losing a dependency (the database, Redis) is an expected failure, not a bug.

``is_unavailable(exc)`` tells a lost or refused connection, a timeout and a missing database from
a real error. ``Availability`` remembers whether a dependency is up, so that a process logs ONE line
when it loses it and one when it gets it back (not a traceback per request or per poll), and
``Backoff`` spaces the retries of a loop (exponential, capped, with jitter)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from sqlalchemy import exc as sa

log = logging.getLogger("gateway.outage")

# PostgreSQL SQLSTATEs of a server that is not there for us: connection exceptions (class 08),
# shutting down / starting up (57P01-57P03), the database does not exist (3D000), too many
# connections (53300), and the statement timeout (57014: the server is too slow to be used).
_UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "3D000", "53300", "57014"}


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database or Redis cannot be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, sa.TimeoutError)):
            return True  # refused, reset, unreachable, no such host; a connect or pool timeout
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__module__.startswith("redis") and type(current).__name__ in {
            "ConnectionError",
            "TimeoutError",
        }:
            return True
        code = _sqlstate(current)
        if code is not None and (code.startswith("08") or code in _UNAVAILABLE_SQLSTATES):
            return True
        if type(current).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            "connection" in str(current).lower()
        ):
            return True
        if "unable to open database file" in str(current):
            return True
        nxt = getattr(current, "orig", None)
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    return False


def describe(exc: BaseException) -> str:
    """One line: the innermost cause's type and message."""
    inner = exc
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if not isinstance(nxt, BaseException) or nxt is inner or isinstance(nxt, asyncio.CancelledError):
            break
        inner = nxt
    if isinstance(inner, TimeoutError) and not str(inner):
        return "TimeoutError: no answer in time"
    message = " ".join(str(inner).split()) or "no detail"
    return f"{type(inner).__name__}: {message[:200]}"


class Availability:
    """Up or down, shared by everything in one process that uses the dependency."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True
        self.since = time.monotonic()

    def lost(self, exc: BaseException) -> None:
        if self.up:
            self.up, self.since = False, time.monotonic()
            log.warning("%s unavailable: %s; retrying with backoff", self.name, describe(exc))

    def ok(self) -> None:
        if not self.up:
            down = time.monotonic() - self.since
            self.up, self.since = True, time.monotonic()
            log.warning("%s available again after %.1f s", self.name, down)


class Backoff:
    """Delays 0.5 s, 1 s, 2 s … up to ``cap``, each ×(0.5…1.5) so that instances do not align."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.failures)
        self.failures = min(self.failures + 1, 32)
        return delay * (0.5 + random.random())

    def reset(self) -> None:
        self.failures = 0

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
