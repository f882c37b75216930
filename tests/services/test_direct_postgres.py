"""A PostgreSQL write transaction's statements go straight to asyncpg (``gateway.direct``), in the
transaction SQLAlchemy began: the same rows and values as through SQLAlchemy (a list parameter's
``$n`` rendered for its length), every statement seen by the statement events, none through
SQLAlchemy's execution, errors raised and handled as SQLAlchemy raises and handles them (a refused
statement, a dropped connection, a cancelled statement)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Float, bindparam, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import db as db_module
from gateway import direct
from gateway import store as s
from gateway.db import Database
from gateway.ledger import _memo_with_items, _targets_with_items
from tests import factories as f
from tests import postgres
from tests.conftest import assert_direct_rows_are_sqlalchemys, statements_sent
from tests.invariants import assert_invariants


async def _documents(pg: Database) -> tuple[list[int], int]:
    """Three invoices of 10.00 and a credit memo of 12.25 (5.00 and 7.25) on one account."""
    acct = await f.account(pg)
    invoices = [await f.invoice(pg, acct, f.item("10.00")) for _ in range(3)]
    return invoices, await f.credit_memo(pg, acct, f.item("5.00"), f.item("7.25"))


async def _balance(pg: Database, invoice: int) -> int:
    async with pg.connect() as conn:
        rt = s.receivable_t
        return int((await conn.execute(select(rt.c.balance).where(rt.c.id == invoice))).scalar_one())


async def test_rows_are_sqlalchemys_rows_with_the_same_values_and_types(pg: Database) -> None:
    invoices, memo = await _documents(pg)
    inv = invoices[0]
    m = s.credit_memo_t
    stmts: list[tuple[Any, dict[str, Any]]] = [
        (_memo_with_items(False, True, True), {"ref": memo}),  # dates, booleans, labels, the lock
        (_targets_with_items(True, False, True, True), {"ids": [inv], "small": 100}),
        # a list of three, then a later parameter: each ``$n`` after the list moves
        (_targets_with_items(True, False, True, True), {"ids": invoices[::-1], "small": 0}),
        (select(m.c.id).where(m.c.amount > 0, m.c.id == bindparam("pk")), {"pk": memo}),  # a constant
    ]
    async with pg.connect(write=True) as conn:
        assert direct.asyncpg_adapter(conn) is not None
        await assert_direct_rows_are_sqlalchemys(conn, stmts)
        row = (await direct.execute(conn, *stmts[0])).all()[0]
        assert isinstance(row.memo_date, date) and isinstance(row.created_at, datetime)
        assert row.reversed is False and row.amount == 1225 and row.item_amount in (500, 725)
        listed = (await direct.execute(conn, *stmts[2])).all()
        assert [r.id for r in listed] == sorted(invoices) and {r.item_id for r in listed} == {None}
        # an empty list goes through SQLAlchemy (which writes the empty IN of this dialect)
        assert (await direct.execute(conn, stmts[1][0], {"ids": [], "small": 1})).all() == []
        await conn.rollback()


async def test_outside_a_transaction_a_statement_goes_through_sqlalchemy(pg: Database) -> None:
    """Only SQLAlchemy begins (and later commits) a transaction it has not begun: a connection not
    in one is not the direct path's."""
    async with pg.engine.connect() as conn:
        assert direct.asyncpg_adapter(conn) is None
        assert (await direct.execute(conn, select(func.abs(bindparam("n"))), {"n": -3})).scalar() == 3


async def test_every_statement_is_seen_by_the_statement_events_and_none_goes_through_sqlalchemy(
    pg: Database,
) -> None:
    (inv, *_), memo = await _documents(pg)
    await f.settle(pg, pg.settings, memo, [(inv, "1.00")])  # the parts exist: a repeat apply
    with statements_sent(pg) as (counted, through_sqlalchemy):
        outcome = await f.settle(pg, pg.settings, memo, [(inv, "0.01")])
    assert outcome.application_id is not None
    # the same 2 statements as always (tests/services/test_settlement_cost.py): lock the memo and
    # the invoice, one write; none of them through SQLAlchemy's execution
    assert counted.count == 2, counted.statements
    assert through_sqlalchemy == []
    assert await _balance(pg, inv) == 899  # 10.00 - 1.00 - 0.01, in cents
    await assert_invariants(pg)


async def test_a_refused_statement_raises_as_sqlalchemy_does_and_writes_nothing(pg: Database) -> None:
    (inv, *_), memo = await _documents(pg)
    with pytest.raises(IntegrityError) as raised:
        async with pg.connect(write=True) as conn:
            await s.set_values(conn, s.receivable_t, inv, comment="changed")
            ri = s.receivable_item_t
            item = (await conn.execute(select(ri.c.id).where(ri.c.receivable_id == inv))).scalar_one()
            await direct.execute(  # a part that does not exist: the foreign key refuses it
                conn,
                s.item_part_t.insert(),
                {
                    "part_id": 10**9,
                    "credit_memo_item_id": None,
                    "target_item_id": item,
                    "currency": "USD",
                    "amount": 1,
                },
            )
    assert raised.value.orig is not None and getattr(raised.value.orig, "sqlstate", None) == "23503"
    assert not raised.value.connection_invalidated
    async with pg.connect() as conn:
        rt = s.receivable_t
        comment = (await conn.execute(select(rt.c.comment).where(rt.c.id == inv))).scalar()
    assert comment != "changed"
    outcome = await f.settle(pg, pg.settings, memo, [(inv, "1.00")])  # the next write goes on
    assert outcome.application_id is not None
    assert await _balance(pg, inv) == 900
    await assert_invariants(pg)


@pytest.mark.parametrize("kept", [True, False], ids=["left-begun", "pooled"])
async def test_an_apply_whose_connection_the_server_dropped_runs_again_and_moves_once(
    pg: Database, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's connection is not pinged: the connection the last write left begun, or (once that
    one was given back) one checked out of the pool unpinged. The apply's first statement (sent
    straight to asyncpg) meets the dropped connection, which SQLAlchemy's handling invalidates, and
    the write runs again on a fresh, pinged one."""
    if not kept:
        monkeypatch.setattr(db_module._Begun, "SECONDS", 0.0)  # given back as soon as it is kept
    (inv, *_), memo = await _documents(pg)
    await f.settle(pg, pg.settings, memo, [(inv, "1.00")])
    dropped = await pg.write(_backend)  # the connection of the last write
    if not kept:
        await postgres.until_no_connection_checked_out(pg.engine)  # the pool's one connection, idle now
    checkouts: list[Any] = []
    event.listen(pg.write_engine.sync_engine, "checkout", lambda *a: checkouts.append(a))
    await postgres.terminate(pg.settings.database_url, dropped)
    outcome = await f.settle(pg, pg.settings, memo, [(inv, "0.25")])
    assert outcome.application_id is not None
    # the dropped connection (kept: no checkout; pooled: one), then a fresh one
    assert len(checkouts) == (1 if kept else 2)
    assert await pg.write(_backend) != dropped
    assert await _balance(pg, inv) == 875  # 10.00 - 1.00 - 0.25: moved once
    await assert_invariants(pg)


async def test_a_cancelled_statement_invalidates_its_connection_and_the_next_write_goes_on(
    pg: Database,
) -> None:
    """A statement cancelled while the server runs it (a request's deadline, a shutdown) leaves its
    connection in no known state: SQLAlchemy's handling closes it, the server ends the backend, and
    the pool hands out a fresh one."""
    (inv, *_), memo = await _documents(pg)
    backends: list[int] = []

    async def sleep_in_the_server(conn: AsyncConnection) -> None:
        backends.append(await _backend(conn))
        await direct.execute(conn, select(func.pg_sleep(bindparam("s", type_=Float))), {"s": 60.0})

    task = asyncio.create_task(pg.write(sleep_in_the_server))
    admin = await _admin(pg)
    try:
        deadline = time.monotonic() + 30
        # (every turn awaits the server, so the write's task runs meanwhile)
        while not (
            sleeping := await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep(%'"
            )
        ):
            assert not task.done() and time.monotonic() < deadline, "the statement never ran"
        assert backends == [sleeping]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the cancelled statement's backend is gone, not left sleeping with a connection
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backends[0]):
            assert time.monotonic() < deadline, "the cancelled statement's backend stayed"
    finally:
        task.cancel()
        await admin.close()
    outcome = await f.settle(pg, pg.settings, memo, [(inv, "0.50")])
    assert outcome.application_id is not None
    assert await pg.write(_backend) != backends[0]
    assert await _balance(pg, inv) == 950
    await assert_invariants(pg)


async def _backend(conn: AsyncConnection) -> int:
    return int((await direct.execute(conn, select(func.pg_backend_pid()))).scalar_one())


async def _admin(pg: Database) -> asyncpg.Connection:
    return await asyncpg.connect(pg.settings.database_url.replace("postgresql+asyncpg", "postgresql"))
