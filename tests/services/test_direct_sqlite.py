"""A SQLite write transaction's statements go straight to ``sqlite3`` (``gateway.direct``): the same
rows and values as through SQLAlchemy, every statement seen by the statement events, errors raised as
SQLAlchemy raises them, and a single-item apply sent entirely that way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.exc import IntegrityError

from gateway import direct
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ledger import _memo_with_items
from gateway.settlement.errors import Rejected
from tests import factories as f
from tests.conftest import assert_direct_rows_are_sqlalchemys, statements_sent
from tests.invariants import assert_invariants


@pytest.fixture
async def inline(settings: Settings) -> AsyncIterator[Database]:
    if settings.sqlite_path is None:
        pytest.skip("SQLite only: the inline write connection")
    db = Database(settings.replace(sqlite_inline_writes=True))
    assert db.write_engine is not db.engine
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def documents(inline: Database) -> tuple[int, int]:
    """An invoice of 10.00 and a credit memo of 5.00 on one account: (invoice, memo)."""
    acct = await f.account(inline)
    return await f.invoice(inline, acct, f.item("10.00")), await f.credit_memo(inline, acct, f.item("5.00"))


def _plain(row: Any) -> tuple[Any, ...]:
    return tuple(row)


async def test_rows_are_sqlalchemys_rows_with_the_same_values_and_types(inline: Database) -> None:
    db = inline
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("5.00"), f.item("7.25"))
    m = s.credit_memo_t
    stmts: list[tuple[Any, dict[str, Any]]] = [
        (_memo_with_items(False, False, False), {"ref": memo}),  # dates, booleans, labels
        (select(m).where(m.c.id.in_(bindparam("ids", expanding=True))), {"ids": [memo, memo + 99]}),
        (select(m.c.id).where(m.c.amount > 0, m.c.id == bindparam("pk")), {"pk": memo}),  # a constant
    ]
    async with db.connect(write=True) as conn:
        assert direct.driver(conn) is not None
        await assert_direct_rows_are_sqlalchemys(conn, stmts)
        row = (await direct.execute(conn, stmts[0][0], stmts[0][1])).all()[0]
        assert isinstance(row.memo_date, date) and isinstance(row.created_at, datetime)
        assert row.reversed is False and row.amount == 1225 and row.item_amount in (500, 725)
        # an empty list goes through SQLAlchemy (which writes the empty IN of this dialect)
        assert (await direct.execute(conn, stmts[1][0], {"ids": []})).all() == []
        await conn.rollback()


async def test_insert_and_update_returning_convert_both_ways(inline: Database) -> None:
    db = inline
    acct = await f.account(db)
    at = datetime(2026, 11, 24, 12, 30, 15, 250_000, tzinfo=UTC)
    async with db.connect(write=True) as conn:
        written = await s.insert_returning_row(
            conn,
            s.application_t,
            kind="APPLY",
            account_id=acct,
            effective_date=date(2026, 11, 24),
            amount=1,
            currency="USD",
            rule="FIFO",
            created_by="test",
            created_at=at,
        )
        back = (await conn.execute(select(s.application_t).where(s.application_t.c.id == written.id))).one()
        assert _plain(written) == _plain(back)
        assert written.effective_date == date(2026, 11, 24) and written.created_at.replace(tzinfo=UTC) == at
        await conn.rollback()


async def test_every_statement_is_seen_by_the_statement_events(
    inline: Database, documents: tuple[int, int]
) -> None:
    db = inline
    inv, memo = documents
    await f.settle(db, db.settings, memo, [(inv, "1.00")])  # the parts exist: a repeat apply
    with statements_sent(db) as (counted, through_sqlalchemy):
        outcome = await f.settle(db, db.settings, memo, [(inv, "0.01")])
    assert outcome.application_id is not None
    # the same 12 statements as always (tests/services/test_settlement_cost.py), none of them
    # through SQLAlchemy's execution
    assert counted.count == 12, counted.statements
    assert through_sqlalchemy == []
    async with db.connect() as conn:
        balance = (
            await conn.execute(select(s.receivable_t.c.balance).where(s.receivable_t.c.id == inv))
        ).scalar()
    assert balance == 899  # 10.00 - 1.00 - 0.01, in cents
    await assert_invariants(db)


async def test_a_refused_statement_raises_as_sqlalchemy_does_and_writes_nothing(
    inline: Database, documents: tuple[int, int]
) -> None:
    db = inline
    inv, memo = documents
    ip = s.item_part_t
    with pytest.raises(IntegrityError) as raised:
        async with db.connect(write=True) as conn:
            await s.set_values(conn, s.receivable_t, inv, comment="changed")
            ri = s.receivable_item_t
            item = (await conn.execute(select(ri.c.id).where(ri.c.receivable_id == inv))).scalar_one()
            await direct.execute(  # a part that does not exist: the foreign key refuses it
                conn,
                ip.insert(),
                {
                    "part_id": 10**9,
                    "credit_memo_item_id": None,
                    "target_item_id": item,
                    "currency": "USD",
                    "amount": 1,
                },
            )
    assert "FOREIGN KEY" in str(raised.value.orig)
    async with db.connect() as conn:
        comment = (
            await conn.execute(select(s.receivable_t.c.comment).where(s.receivable_t.c.id == inv))
        ).scalar()
    assert comment != "changed"
    outcome = await f.settle(db, db.settings, memo, [(inv, "1.00")])  # the next write goes on
    assert outcome.application_id is not None
    await assert_invariants(db)


async def test_write_transactions_keep_one_connection_until_one_does_not_commit(
    inline: Database, documents: tuple[int, int]
) -> None:
    db = inline
    inv, memo = documents
    checkouts: list[Any] = []

    def checked_out(dbapi_connection: Any, *_: Any) -> None:
        checkouts.append(dbapi_connection)

    event.listen(db.write_engine.sync_engine, "checkout", checked_out)
    try:
        for _ in range(3):
            await f.settle(db, db.settings, memo, [(inv, "0.01")])
        assert len(checkouts) <= 1  # kept from one write to the next (1: the factories' was closed)
        kept = db._kept
        assert kept is not None and not kept.closed
        with pytest.raises(Rejected):  # more than the memo has: refused, rolled back
            await f.settle(db, db.settings, memo, [(inv, "9.00")])
        assert kept.closed and db._kept is None  # a transaction that did not commit leaves nothing kept
        before = len(checkouts)
        outcome = await f.settle(db, db.settings, memo, [(inv, "1.00")])
        assert outcome.application_id is not None and len(checkouts) == before + 1
        assert db._kept is not None and db._kept is not kept
    finally:
        event.remove(db.write_engine.sync_engine, "checkout", checked_out)
    async with db.connect() as conn:
        balance = (
            await conn.execute(select(s.receivable_t.c.balance).where(s.receivable_t.c.id == inv))
        ).scalar()
    assert balance == 897  # 10.00 - 3 × 0.01 - 1.00: the refused apply moved nothing
    await assert_invariants(db)
