"""PostgreSQL's pool: a checked-out connection is checked by one round trip, and one the server has
dropped is replaced before a request uses it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.config import Settings
from gateway.db import Database


@pytest.fixture
async def pg(pg_database: str | None) -> AsyncIterator[Database]:
    if pg_database is None:
        pytest.skip("PostgreSQL's pool: set GATEWAY_TEST_DATABASE_URL (CI does)")
    db = Database(Settings(database_url=pg_database, workers=0))
    try:
        yield db
    finally:
        await db.dispose()


async def _backend(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def test_a_checkout_is_checked_by_one_round_trip_outside_any_transaction(pg: Database) -> None:
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
    raw.remove_query_logger(log)
    # (the logger sees the simple-protocol queries, not the prepared statement between them);
    # SQLAlchemy's own pre-ping sends BEGIN; ; ROLLBACK; before the transaction
    assert sent == ["SELECT 1", "BEGIN;", "COMMIT;"]


async def test_a_connection_the_server_dropped_is_replaced_before_a_request_uses_it(pg: Database) -> None:
    dropped = await pg.read(_backend)
    admin = await asyncpg.connect(pg.settings.database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", dropped)
        deadline = time.monotonic() + 30
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", dropped):
            assert time.monotonic() < deadline, "the server kept the terminated backend"
    finally:
        await admin.close()
    # the pooled connection is dead; the request gets a fresh one, not an error
    assert await pg.read(_backend) != dropped
    assert await pg.read(lambda conn: conn.scalar(text("SELECT 41 + 1"))) == 42
