"""PostgreSQL's pool: a read's connection is checked by one round trip on checkout, and one the
server has dropped is replaced before a request uses it; a write's is not checked, and a write that
finds its connection dropped runs again, once, on another."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db import Database
from tests import postgres


async def _backend(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_reads_checkout_is_checked_by_one_round_trip_and_a_writes_is_not(pg: Database) -> None:
    first = await pg.read(_backend)
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    async with pg.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        raw.add_query_logger(log)
    sent.clear()  # that checkout's own ping
    assert await pg.read(_backend) == first  # the pool's one connection
    # (the logger sees the simple-protocol queries, not the prepared statement between them);
    # SQLAlchemy's own pre-ping sends BEGIN; ; ROLLBACK; before the transaction
    assert sent == ["SELECT 1", "BEGIN;", "COMMIT;"]
    sent.clear()
    assert await pg.write(_backend) == first
    # no ping: the write's BEGIN and COMMIT, then (once it gave way) the BEGIN of the next write
    # on the connection it keeps (asyncpg calls its loggers a turn of the loop after each query)
    await _until_logged(sent, 3)
    assert sent == ["BEGIN;", "COMMIT;", "BEGIN;"], sent
    sent.clear()
    assert await pg.write(_backend) == first  # on that connection, begun: no BEGIN of its own
    await _until_logged(sent, 2)
    raw.remove_query_logger(log)
    assert sent == ["COMMIT;", "BEGIN;"], sent


async def _until_logged(sent: list[str], n: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while len(sent) < n:
        assert time.monotonic() < deadline, f"only {sent} logged"
        await asyncio.sleep(0.01)


async def test_a_connection_the_server_dropped_is_replaced_before_a_request_uses_it(pg: Database) -> None:
    dropped = await pg.read(_backend)
    await postgres.terminate(pg.settings.database_url, dropped)
    # the pooled connection is dead; the request gets a fresh one, not an error
    assert await pg.read(_backend) != dropped
    assert await pg.read(lambda conn: conn.scalar(text("SELECT 41 + 1"))) == 42


async def test_a_write_whose_connection_the_server_dropped_runs_again_and_writes_once(pg: Database) -> None:
    await pg.write(lambda conn: conn.execute(text("CREATE TABLE IF NOT EXISTS pool_probe (n integer)")))
    await pg.write(lambda conn: conn.execute(text("DELETE FROM pool_probe")))
    dropped = await pg.write(_backend)  # the connection the next write takes, kept begun
    await postgres.terminate(pg.settings.database_url, dropped)
    attempts: list[int] = []

    async def insert(conn: AsyncConnection) -> None:
        attempts.append(len(attempts) + 1)
        await conn.execute(text("INSERT INTO pool_probe VALUES (1)"))  # fails on the dropped one

    try:
        await pg.write(insert)
        assert attempts == [1, 2]  # not pinged first: the first attempt met the dropped connection
        assert await pg.read(lambda conn: conn.scalar(text("SELECT count(*) FROM pool_probe"))) == 1
    finally:
        await pg.write(lambda conn: conn.execute(text("DROP TABLE pool_probe")))


async def test_a_write_that_loses_its_connection_at_commit_is_not_run_again(pg: Database) -> None:
    """Whether a commit the connection died under happened cannot be known: no second attempt."""
    await pg.write(lambda conn: conn.execute(text("CREATE TABLE IF NOT EXISTS pool_probe (n integer)")))
    attempts: list[int] = []

    async def insert_then_lose_the_connection(conn: AsyncConnection) -> None:
        attempts.append(len(attempts) + 1)
        await conn.execute(text("INSERT INTO pool_probe VALUES (1)"))
        await postgres.terminate(
            pg.settings.database_url, await _backend(conn)
        )  # COMMIT goes to a dropped connection

    try:
        with pytest.raises(DBAPIError) as lost:
            await pg.write(insert_then_lose_the_connection)
        assert lost.value.connection_invalidated
        assert attempts == [1]
    finally:
        await pg.write(lambda conn: conn.execute(text("DROP TABLE pool_probe")))
