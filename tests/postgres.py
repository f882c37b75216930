"""Helpers for tests on the suite's PostgreSQL server: creating and dropping a database, emptying one,
waiting (on an observed state, never a sleep) until a backend waits for a lock, and ending a
backend as a server restart or a network failure would."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.tables import metadata


def dsn(url: str) -> str:
    """asyncpg's own form of a SQLAlchemy URL (``postgresql+asyncpg://…``), for a plain connection."""
    return url.replace("postgresql+asyncpg", "postgresql")


async def admin(url: str, sql: str) -> None:
    """``sql`` outside a transaction (``CREATE DATABASE``, ``DROP DATABASE``) on the server of ``url``."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def empty(url: str) -> None:
    """Every table emptied, ids restarting at 1."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def until_waiting_for_a_lock(
    engine: AsyncEngine, pid: int | None = None, *, seconds: float = 30
) -> None:
    """Until backend ``pid`` (any of the database's, if None) waits for a lock another holds."""
    deadline = time.monotonic() + seconds
    query = text(
        "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE NOT l.granted AND a.datname = current_database() AND (l.pid = :pid OR :pid IS NULL))"
    )
    while True:
        async with engine.connect() as probe:
            if await probe.scalar(query, {"pid": pid}):
                return
        assert time.monotonic() < deadline, "nothing waited for a lock"
        await asyncio.sleep(0.01)


async def terminate(url: str, pid: int) -> None:
    """End the backend ``pid`` (``pg_terminate_backend``) and wait until the server has let it go
    (deadline 30 s): its connection is dropped, as by a server restart."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        deadline = time.monotonic() + 30
        while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            assert time.monotonic() < deadline, "the server kept the terminated backend"
    finally:
        await conn.close()


async def until_no_connection_checked_out(engine: AsyncEngine, *, seconds: float = 30) -> None:
    """Until no connection of ``engine``'s pool is checked out (a kept write connection given back)."""
    deadline = time.monotonic() + seconds
    while engine.pool.checkedout():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "a connection was never given back to the pool"
        await asyncio.sleep(0.01)
