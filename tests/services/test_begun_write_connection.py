"""PostgreSQL: a committed write leaves its connection begun for the next one (``db._Begun``): the
next write takes it without a checkout or a ``BEGIN`` of its own, sees every commit made meanwhile,
and a connection nobody takes, or whose write does not commit, goes back to the pool rolled back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import db as db_module
from gateway import direct
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.settlement import errors as e
from tests import factories as f
from tests import postgres
from tests.invariants import assert_invariants

DEADLINE = 30.0


async def _backend(conn: AsyncConnection) -> int:
    return int((await direct.execute(conn, select(func.pg_backend_pid()))).scalar_one())


async def _until_state(admin: asyncpg.Connection, pid: int, state: str) -> None:
    """Until backend ``pid`` is in ``state`` (pg_stat_activity), within DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while (seen := await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)) != state:
        assert time.monotonic() < deadline, f"backend {pid} stayed {seen!r}, never {state!r}"
        await asyncio.sleep(0.01)


async def _documents(pg: Database) -> tuple[int, int]:
    """An invoice of 10.00 and a credit memo of 10.00 on one account."""
    acct = await f.account(pg)
    return await f.invoice(pg, acct, f.item("10.00")), await f.credit_memo(pg, acct, f.item("10.00"))


async def _balance(pg: Database, invoice: int) -> int:
    async with pg.connect() as conn:
        rt = s.receivable_t
        return int((await conn.execute(select(rt.c.balance).where(rt.c.id == invoice))).scalar_one())


@pytest.fixture
async def admin(pg: Database) -> Any:
    conn = await asyncpg.connect(postgres.dsn(pg.settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_next_write_takes_the_connection_the_last_one_left_begun(
    pg: Database, admin: asyncpg.Connection
) -> None:
    inv, memo = await _documents(pg)
    await f.settle(pg, pg.settings, memo, [(inv, "1.00")])
    pid = await pg.write(_backend)
    await _until_state(admin, pid, "idle in transaction")  # its next BEGIN sent, nothing else
    checkouts: list[Any] = []
    event.listen(pg.engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
    assert await pg.write(_backend) == pid
    outcome = await f.settle(pg, pg.settings, memo, [(inv, "2.00")])
    assert outcome.application_id is not None
    assert checkouts == []  # neither write checked a connection out
    assert await _balance(pg, inv) == 700
    await assert_invariants(pg)


async def test_a_write_on_the_begun_connection_sees_what_others_committed_since_its_begin(
    pg: Database, admin: asyncpg.Connection
) -> None:
    """``BEGIN`` alone takes no snapshot: another process's apply, committed after it, is seen (and
    its lock waited for) by the next statement; nothing is moved twice or lost."""
    inv, memo = await _documents(pg)
    await f.settle(pg, pg.settings, memo, [(inv, "1.00")])
    await _until_state(admin, await pg.write(_backend), "idle in transaction")
    other = Database(Settings(database_url=pg.settings.database_url, workers=0))
    try:
        await f.settle(other, other.settings, memo, [(inv, "2.00")])  # another process, meanwhile
    finally:
        await other.dispose()
    with pytest.raises(e.Rejected):  # 10.00 - 1.00 - 2.00 = 7.00 open: 7.01 is refused
        await f.settle(pg, pg.settings, memo, [(inv, "7.01")])
    await f.settle(pg, pg.settings, memo, [(inv, "7.00")])
    assert await _balance(pg, inv) == 0
    await assert_invariants(pg)


async def test_a_kept_connection_nobody_takes_is_rolled_back_and_given_back(
    pg: Database, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module._Begun, "SECONDS", 0.05)
    inv, memo = await _documents(pg)
    await f.settle(pg, pg.settings, memo, [(inv, "1.00")])
    pid = await pg.write(_backend)
    await postgres.until_no_connection_checked_out(pg.engine)
    await _until_state(admin, pid, "idle")  # back in the pool, no transaction left open
    assert await pg.write(_backend) == pid  # the pool's connection, checked out again


async def test_a_write_that_does_not_commit_gives_its_connection_back_rolled_back(
    pg: Database, admin: asyncpg.Connection
) -> None:
    inv, memo = await _documents(pg)
    pid = await pg.write(_backend)
    with pytest.raises(e.Rejected):
        await f.settle(pg, pg.settings, memo, [(inv, "10.01")])  # more than the invoice's balance
    assert not pg.engine.pool.checkedout()  # type: ignore[attr-defined]  # given back at once
    await _until_state(admin, pid, "idle")
    checkouts: list[Any] = []
    event.listen(pg.engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
    await f.settle(pg, pg.settings, memo, [(inv, "10.00")])
    assert len(checkouts) == 1
    assert await _balance(pg, inv) == 0
    await assert_invariants(pg)


async def test_a_write_cancelled_while_its_begin_is_on_its_way_gives_the_connection_back(
    pg: Database, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next write waits for the kept connection's BEGIN; cancelled there (its client gone), it
    leaves no connection checked out and no transaction open."""
    inv, memo = await _documents(pg)
    sending = asyncio.Event()
    began = direct.begin

    async def held(conn: AsyncConnection) -> None:
        await sending.wait()  # the BEGIN is "on its way" until the test lets it go
        await began(conn)

    if pg._begun is not None:  # the connection the documents' writes kept begins as ever
        await asyncio.shield(pg._begun._begin)
    monkeypatch.setattr(direct, "begin", held)
    pid = await pg.write(_backend)
    waiting = asyncio.create_task(f.settle(pg, pg.settings, memo, [(inv, "1.00")]))
    deadline = time.monotonic() + DEADLINE
    while pg._begun is not None:  # taken: the write waits for its BEGIN
        assert time.monotonic() < deadline and not waiting.done()
        await asyncio.sleep(0.01)
    waiting.cancel()
    sending.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await postgres.until_no_connection_checked_out(pg.engine)
    await _until_state(admin, pid, "idle")
    assert await _balance(pg, inv) == 1000  # nothing moved
    outcome = await f.settle(pg, pg.settings, memo, [(inv, "1.00")])  # and the next write goes on
    assert outcome.application_id is not None
    await assert_invariants(pg)
