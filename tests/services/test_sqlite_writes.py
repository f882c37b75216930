"""With ``GATEWAY_SQLITE_INLINE_WRITES``, SQLite write transactions run on the event loop's thread
(``gateway.inline_sqlite``): another process's write lock makes them retry, never fail, and never
writes half."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest

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
