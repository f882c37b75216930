"""The command line's expected failures, each as ONE line that says what to do next, with its own
exit code, and the checks that find them at start. Anything not recognised here is a bug and keeps
its traceback."""

from __future__ import annotations

import asyncio
import errno
import socket

from sqlalchemy import exc as sa
from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.outage import describe, is_unavailable

# Exit codes: 2 is argparse's (bad arguments); the others are one per kind of failure.
BAD_CONFIGURATION = 3
DATABASE_UNREACHABLE = 4
DATABASE_MISSING = 5
DATABASE_LOGIN = 6
NOT_MIGRATED = 7
PORT_IN_USE = 8


class Failure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    for e in _chain(exc):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _where(settings: Settings) -> tuple[str, str, str]:
    """(database name, user, host:port) of the configured URL."""
    try:
        url = make_url(settings.database_url)
    except sa.ArgumentError:
        return "?", "?", "?"
    if settings.is_sqlite:
        return url.database or ":memory:", "", url.database or ""
    return url.database or "postgres", url.username or "", f"{url.host or 'localhost'}:{url.port or 5432}"


def diagnose(exc: BaseException, settings: Settings) -> Failure | None:
    """The one-line explanation of an expected failure, or None for a bug."""
    if isinstance(exc, Failure):
        return exc
    name, user, where = _where(settings)
    text = " ".join(str(e) for e in _chain(exc))
    if isinstance(exc, (sa.ArgumentError, sa.NoSuchModuleError)) or (
        isinstance(exc, ValueError) and "GATEWAY_" in str(exc)
    ):
        return Failure(
            f"GATEWAY_DATABASE_URL is not usable ({describe(exc)}): write it as "
            "postgresql://user@host:5432/dbname or sqlite:///./settlement.db",
            BAD_CONFIGURATION,
        )
    code = _sqlstate(exc)
    if code == "3D000" or "does not exist" in text and "database" in text and code is None:
        return Failure(
            f"database `{name}` does not exist: create it with `createdb {name}`", DATABASE_MISSING
        )
    if code in {"28000", "28P01"} or (code is None and "role" in text and "does not exist" in text):
        return Failure(
            f"PostgreSQL at {where} refused the login of `{user}` ({describe(exc)}): create the role "
            f"with `createuser {user}` or fix the user and password in GATEWAY_DATABASE_URL",
            DATABASE_LOGIN,
        )
    if code == "42P01" or "no such table" in text:
        return Failure("the database has no schema yet: run `settlement-gateway migrate` first", NOT_MIGRATED)
    if settings.is_sqlite and "unable to open database file" in text:
        return Failure(
            f"cannot open the SQLite database `{name}`: does its directory exist and is it writable?",
            DATABASE_UNREACHABLE,
        )
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
            return Failure(f"the address is in use ({e.strerror}): choose another --port", PORT_IN_USE)
    if is_unavailable(exc):
        return Failure(
            f"cannot reach the database at {where} ({describe(exc)}): is PostgreSQL running and "
            "GATEWAY_DATABASE_URL right?",
            DATABASE_UNREACHABLE,
        )
    return None


# Found before they happen: refused at start rather than failing later.


def require_free_port(host: str, port: int) -> None:
    """EADDRINUSE here becomes one line and its own exit code (uvicorn would log it and exit 1)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def require_schema(settings: Settings) -> None:
    """Refuse to start on an unmigrated database (a database that is down is waited for instead:
    /readyz says 503 and the workers back off until it is back)."""
    from sqlalchemy import select

    from gateway.db import Database
    from gateway.store import job_t

    async def check() -> None:
        db = Database(settings)
        try:
            async with db.connect() as conn:
                await conn.execute(select(job_t.c.id).limit(1))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
        finally:
            await db.dispose()

    asyncio.run(check())
