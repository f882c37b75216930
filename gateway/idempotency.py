"""Idempotency keys, claimed in the same transaction as the money they protect.

A key is scoped to the caller (token name) and remembered 24 hours with a hash of the request.
Inside the money transaction: on PostgreSQL ``pg_try_advisory_xact_lock`` on the key tells at once
that another transaction is running with it (IDEMPOTENCY_KEY_IN_PROGRESS); on SQLite the write lock
already serializes them. A stored row with the same hash is replayed; with another hash it is
IDEMPOTENCY_KEY_REUSED. The row is written by the transaction that moves the money, so the money
moves at most once per key. A request refused with userErrors writes nothing, key included: a retry
after fixing the cause runs again (ours).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store as s
from gateway.db import Commits, Database
from gateway.observability import metrics
from gateway.settlement import errors as e

RETENTION = timedelta(hours=24)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Claim:
    key: str  # caller-scoped
    operation: str
    request_hash: str


def claim(key: str | None, *, caller: str, operation: str, request: Any) -> Claim | None:
    if not key:
        return None
    digest = hashlib.sha256(orjson.dumps(request, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Claim(f"{caller}:{key}", operation, digest)


async def replay(conn: AsyncConnection, c: Claim, *, in_progress_ok: bool = False) -> dict[str, Any] | None:
    """The remembered response for this key, or None when the request is to run."""
    field = ("idempotencyKey",)
    if conn.dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(c.key.encode()).digest()[:8], "big", signed=True)
        got = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_id})).scalar()
        if not got:
            raise e.Rejected(
                [
                    e.IdempotencyKeyInProgress(
                        "a request with this idempotency key is still running", field=field
                    )
                ]
            )
    t = s.idempotency_t
    row = (await conn.execute(select(t).where(t.c.key == c.key))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= datetime.now(UTC):
        await conn.execute(delete(t).where(t.c.key == c.key))
        return None
    if row.operation != c.operation or row.request_hash != c.request_hash:
        raise e.Rejected(
            [
                e.IdempotencyKeyReused(
                    "this idempotency key was used for another request in the last 24 hours; use a new key",
                    field=field,
                )
            ]
        )
    if row.status != "DONE":
        if in_progress_ok:
            metrics.REPLAYS.inc()
            return orjson.loads(row.response) if row.response else {}
        raise e.Rejected(
            [
                e.IdempotencyKeyInProgress(
                    "the request with this idempotency key is still running", field=field
                )
            ]
        )
    metrics.REPLAYS.inc()
    return orjson.loads(row.response) if row.response else {}


async def remember(
    conn: AsyncConnection, c: Claim, response: dict[str, Any], *, status: str = "DONE"
) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        s.idempotency_t.insert().values(
            key=c.key,
            operation=c.operation,
            request_hash=c.request_hash,
            status=status,
            response=orjson.dumps(response).decode(),
            created_at=now,
            expires_at=now + RETENTION,
        )
    )


async def guarded(
    conn: AsyncConnection,
    c: Claim | None,
    move: Callable[[], Awaitable[T]],
    *,
    dump: Callable[[T], dict[str, Any]],
    load: Callable[[dict[str, Any]], T],
    status: str = "DONE",
) -> T:
    """Run ``move`` (a money move, or a job submission) at most once per key, inside the caller's
    transaction: replay a remembered response, else run and remember it (``status`` IN_PROGRESS for
    a job, finished by ``finish``). Without a key it just runs."""
    if c is None:
        return await move()
    remembered = await replay(conn, c)
    if remembered is not None:
        return load(remembered)
    result = await move()
    await remember(conn, c, dump(result), status=status)
    return result


async def write_once(
    db: Database,
    c: Claim | None,
    move: Callable[[AsyncConnection], Awaitable[T]],
    *,
    dump: Callable[[T], dict[str, Any]],
    load: Callable[[dict[str, Any]], T],
    status: str = "DONE",
    queue: Hashable | None = None,
    commits: Commits | None = None,
) -> T:
    """``move`` in one write transaction (retried as a whole), guarded by the key: every money
    move and job submission goes through here. ``queue``, ``commits``: see ``Database.write``."""
    return await db.write(
        lambda conn: guarded(conn, c, lambda: move(conn), dump=dump, load=load, status=status),
        queue=queue,
        commits=commits,
    )


async def finish(conn: AsyncConnection, key: str | None, response: dict[str, Any]) -> None:
    """The job of an IN_PROGRESS key ended: from now on the key replays ``response``."""
    if key:
        await conn.execute(
            update(s.idempotency_t)
            .where(s.idempotency_t.c.key == key)
            .values(status="DONE", response=orjson.dumps(response).decode())
        )
