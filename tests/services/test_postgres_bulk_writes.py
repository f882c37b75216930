"""PostgreSQL's bulk writes: a large move's new rows go in by COPY, and its updates of items stay on
their pages (heap-only tuples, migration 0006). The money is exact either way; these tests hold the
cheaper paths to the same results and errors as the statements they replace."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from gateway import postings
from gateway import store as s
from gateway.db import Database
from gateway.observability import requests as observed
from gateway.settlement.limits import Limits
from tests import factories as f
from tests import postgres
from tests.invariants import assert_invariants


@pytest.mark.parametrize("kind", ["CREDIT_MEMO", "PAYMENT"])
async def test_a_large_apply_and_unapply_copy_their_lines_and_item_parts_exactly(
    pg: Database, kind: str
) -> None:
    """A memo item of 3,000.00 (or a payment of 3,000.00: no memo item, a NULL reference) to three
    invoices of 1,000 items of 1.00: 3,000 lines and item parts, beyond one chunk (2,000), so both
    chunks (2,000 and 1,000) go by COPY, and no INSERT of them is sent. Unapplying all of it copies
    3,000 lines more and gives every cent back."""
    rows = 3000
    assert rows > postings.CHUNK and rows - postings.CHUNK >= postings.COPY_FROM_ROWS
    acct = await f.account(pg)
    invoices = [await f.invoice(pg, acct, *(f.item("1.00") for _ in range(1000))) for _ in range(3)]
    if kind == "CREDIT_MEMO":
        source = await f.credit_memo(pg, acct, f.item("3000.00"))
    else:
        source = await f.payment(pg, acct, "3000.00")
    targets = [(invoice, "1000.00") for invoice in invoices]
    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement)

    request = observed.RequestInfo()  # as a request being served: its log counts the COPYs
    token = observed._current.set(request)  # noqa: SLF001
    event.listen(pg.write_engine.sync_engine, "before_cursor_execute", record)
    try:
        await f.settle(pg, pg.settings, source, targets, kind=kind)
    finally:
        event.remove(pg.write_engine.sync_engine, "before_cursor_execute", record)
        observed._current.reset(token)  # noqa: SLF001
    assert not [q for q in sent if q.startswith(("INSERT INTO application_line", "INSERT INTO item_part"))]
    assert request.sql_statements == 4 and request.sql_seconds > 0  # 2 chunks of each (no SQL hooks here)
    line = s.application_line_t.c
    async with pg.connect() as conn:
        lines = (await conn.execute(select(func.count(), func.sum(line.amount)))).one()
        parts = (await conn.execute(select(func.count(), func.sum(s.item_part_t.c.amount)))).one()
        seqs = (await conn.execute(select(func.min(line.seq), func.max(line.seq)))).one()
        memo_items = await conn.scalar(select(func.count(line.credit_memo_item_id)))
        left = await conn.scalar(select(func.sum(s.receivable_item_t.c.balance)))
    assert tuple(lines) == (rows, 300_000)
    assert tuple(parts) == (rows, 300_000)
    assert tuple(seqs) == (0, rows - 1)
    assert memo_items == (rows if kind == "CREDIT_MEMO" else 0)
    assert left == 0
    await assert_invariants(pg)

    unlimited = pg.settings.replace(limits=Limits(item_parts_per_unapply=10**6))
    await f.settle(pg, unlimited, source, targets, kind=kind, unapply=True)
    async with pg.connect() as conn:
        lines = (await conn.execute(select(func.count(), func.sum(line.amount)))).one()
        parts = (await conn.execute(select(func.count(), func.sum(s.item_part_t.c.amount)))).one()
        left = await conn.scalar(select(func.sum(s.receivable_item_t.c.balance)))
    assert tuple(lines) == (2 * rows, 600_000)  # a line's amount is what it moved, either way
    assert tuple(parts) == (rows, 0)
    assert left == 300_000
    await assert_invariants(pg)


async def test_a_refused_copy_fails_as_the_insert_would_and_writes_nothing(pg: Database) -> None:
    """A COPY whose row refers to a missing part is refused by the reference check (SQLSTATE
    23503), raised as SQLAlchemy raises a statement's failure (what retries and error handling
    read), and the transaction writes nothing."""
    acct = await f.account(pg)
    invoice = await f.invoice(pg, acct, *(f.item("1.00") for _ in range(postings.COPY_FROM_ROWS)))
    memo = await f.credit_memo(pg, acct, f.item("4.00"))
    await f.settle(pg, pg.settings, memo, [(invoice, "0.01")])
    async with pg.connect() as conn:
        items = (
            await conn.execute(select(s.receivable_item_t.c.id).order_by(s.receivable_item_t.c.id))
        ).all()
        memo_item = await conn.scalar(select(s.credit_memo_item_t.c.id))
    chunk = [
        {
            "part_id": 999_999,
            "credit_memo_item_id": memo_item,
            "target_item_id": pk,
            "currency": "USD",
            "amount": 1,
        }
        for (pk,) in items
    ]
    with pytest.raises(IntegrityError) as refused:
        async with pg.connect(write=True) as conn:
            await conn.execute(text("SELECT 1"))
            await postings._copy(conn, s.item_part_t, tuple(chunk[0]), chunk)  # noqa: SLF001
    assert refused.value.orig is not None
    assert getattr(refused.value.orig, "sqlstate", None) == "23503"
    async with pg.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.item_part_t)) == 1


async def test_a_copy_outside_a_transaction_is_refused(pg: Database) -> None:
    """COPY on a connection in no transaction would commit by itself: refused before it is sent."""
    async with pg.engine.connect() as conn:
        await conn.commit()
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None and not raw.driver_connection.is_in_transaction()
        with pytest.raises(RuntimeError, match="outside a transaction"):
            await postings._copy(conn, s.item_part_t, ("amount",), [{"amount": 1}])  # noqa: SLF001


@pytest.mark.parametrize("table", ["receivable_item", "credit_memo_item", "item_part"])
async def test_the_items_written_together_are_updated_in_place(pg: Database, table: str) -> None:
    """Migration 0006: rows written together (an invoice's or a memo's 1,000 items, an apply's
    1,000 item parts) are then updated as heap-only tuples, every one: the pages they were written
    to have room for the next version, so no index changes. At the default fill, where those pages
    are full, none was (0 of 1,000, in each table)."""
    acct = await f.account(pg)
    invoice = await f.invoice(pg, acct, *(f.item("1.00") for _ in range(1000)))
    memo = await f.credit_memo(pg, acct, *(f.item("1.00") for _ in range(1000)))
    if table == "item_part":  # an apply writes them (and is the first update of the others)
        await f.settle(pg, pg.settings, memo, [(invoice, "1000.00")])
    conn = await asyncpg.connect(postgres.dsn(pg.settings.database_url))
    try:
        async with conn.transaction():  # (the transaction's own counts; the update changes nothing)
            updated = await conn.execute(f"UPDATE {table} SET amount = amount")  # noqa: S608
            assert updated == "UPDATE 1000"
            counts = await conn.fetchrow(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = $1", table
            )
            assert tuple(counts) == (1000, 1000)
    finally:
        await conn.close()
