"""With ``GATEWAY_SQLITE_INLINE_WRITES``, SQLite write transactions run on the event loop's thread
(``gateway.inline_sqlite``): another process's write lock makes them retry, never fail, and never
writes half."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.config import Settings
from gateway.db import Database
from tests import factories as f
from tests.invariants import assert_invariants


async def test_a_write_waits_for_another_process_lock_by_retrying(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    if settings.sqlite_path is None:
        pytest.skip("SQLite only: PostgreSQL writes lock rows, not the database")
    settings = settings.replace(sqlite_inline_writes=True)
    db = Database(settings)
    try:
        await _waits_for_the_lock(db, settings, caplog)
    finally:
        await db.dispose()


async def _waits_for_the_lock(db: Database, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert db.write_engine is not db.engine
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    other = sqlite3.connect(settings.sqlite_path, isolation_level=None)  # as another process would
    try:
        other.execute("BEGIN IMMEDIATE")
        caplog.set_level(logging.DEBUG, logger="gateway.db")
        apply = asyncio.create_task(f.settle(db, settings, memo, [(inv, "1.00")]))
        deadline = time.monotonic() + 30
        while "retrying transaction" not in caplog.text:  # it met the lock and backs off
            assert time.monotonic() < deadline and not apply.done(), "the write never met the lock"
            await asyncio.sleep(0.01)
        other.execute("COMMIT")
        outcome = await asyncio.wait_for(apply, 30)
    finally:
        other.close()
    assert outcome.application_id is not None
    await assert_invariants(db)


# ~1,000,000 rows counted by a recursive CTE: tens of milliseconds on any machine, well over the
# 2 ms after which the inline connection gives the event loop a turn.
SLOW = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) SELECT count(*) FROM n"
)


async def test_a_long_statement_of_an_inline_write_lets_other_requests_run(settings: Settings) -> None:
    """A small write never yields the event loop (that is its speed); after a statement that ran
    long, a chunk of a large write, another task runs before the next statement."""
    from sqlalchemy import text

    if settings.sqlite_path is None:
        pytest.skip("SQLite only")
    db = Database(settings.replace(sqlite_inline_writes=True))
    try:
        assert db.write_engine is not db.engine

        async def write(conn: AsyncConnection) -> tuple[bool, bool, int]:
            other = asyncio.Event()
            asyncio.get_running_loop().call_soon(other.set)  # runs at the loop's next turn
            await conn.execute(text("SELECT 1"))
            after_fast = other.is_set()
            counted = (await conn.execute(text(SLOW))).scalar_one()
            return after_fast, other.is_set(), counted

        after_fast, after_slow, counted = await db.write(write)
    finally:
        await db.dispose()
    assert counted == 1_000_000
    assert not after_fast  # the fast statement ran without giving up the loop
    assert after_slow  # the long one gave the other task its turn
