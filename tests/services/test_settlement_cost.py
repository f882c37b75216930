"""What a single apply costs in SQL, and that the cost does not grow with the memo's history."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.settlement import errors as e
from gateway.tables import metadata
from tests import factories as f
from tests.conftest import StatementCounter
from tests.factories import DAY
from tests.invariants import assert_invariants


async def test_a_single_item_apply_costs_the_same_statements_after_fifty_applies(
    db: Database, settings: Settings, sql: StatementCounter
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("900.00"))
    memo = await f.credit_memo(db, acct, f.item("900.00"))
    await f.settle(db, settings, memo, [(inv, "0.01")])  # the memo's part on the invoice exists now
    with sql:
        await f.settle(db, settings, memo, [(inv, "0.01")])
    first = list(sql.statements)
    for _ in range(50):
        await f.settle(db, settings, memo, [(inv, "0.01")])
    with sql:
        await f.settle(db, settings, memo, [(inv, "0.01")])
    if settings.sqlite_path is not None:
        assert len(first) == 12
    else:  # the memo's and the targets' locks in one; then every write is one, the parts' too
        assert len(first) == 2
        assert first[0].startswith("WITH memo AS") and "FOR UPDATE OF receivable" in first[0]
        writes = first[-1]
        assert writes.startswith("WITH w0 AS (UPDATE receivable_item")
        for table in ["receivable", "credit_memo_item", "part"]:  # the part: the unapplied one
            assert f"AS (UPDATE {table} SET" in writes
        for table in ["part", "item_part", "application", "application_line", "settlement_event"]:
            assert f"AS (INSERT INTO {table} " in writes
        assert writes.count(" ON CONFLICT (") == 2  # the parts and item parts added to or inserted
        assert not any(q.startswith("SELECT part.id") for q in first)
        assert writes.count("(SELECT id FROM application_written)") == 3  # its lines, event, and id
        assert ") UPDATE credit_memo SET" in writes and writes.count("RETURNING credit_memo.id") == 1
    assert sql.count == len(first)
    assert not any(re.search(r"\bFROM application\b", q) for q in sql.statements)  # no scan of history
    await assert_invariants(db)


async def _item_ids(db: Database, receivable: int) -> list[int]:
    async def read(conn: Any) -> list[int]:
        stmt = text("SELECT id FROM receivable_item WHERE receivable_id = :r ORDER BY seq")
        return [r for (r,) in await conn.execute(stmt, {"r": receivable})]

    return await db.read(read)


async def _parts(db: Database, column: str, source: int) -> list[tuple[Any, ...]]:
    """The source's parts (target, amount) and item parts (target item, source item, amount)."""

    async def read(conn: Any) -> list[tuple[Any, ...]]:
        rows = await conn.execute(
            text(
                "SELECT p.target_id, p.amount, i.target_item_id, i.credit_memo_item_id, i.amount"
                f" FROM part p LEFT JOIN item_part i ON i.part_id = p.id WHERE p.{column} = :s"
                " ORDER BY p.target_id NULLS FIRST, i.target_item_id"
            ),
            {"s": source},
        )
        return [tuple(r) for r in rows]

    return await db.read(read)


@pytest.mark.parametrize("kind", ["CREDIT_MEMO", "PAYMENT"])
async def test_applies_add_to_one_part_and_one_item_part_per_pair_of_items(
    db: Database, settings: Settings, sql: StatementCounter, kind: str
) -> None:
    """A first apply on a target inserts its part and item parts, later ones add to them: on
    PostgreSQL by upserts in the one write, read nowhere, so a first apply costs what a repeat
    does (a memo's: its lock with the targets', and the write). A payment's item parts (no source item) too: its nulls are one value to the unique index."""
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"), f.item("20.00"))
    other = await f.invoice(db, acct, f.item("5.00"))
    memo = kind == "CREDIT_MEMO"
    source = await f.credit_memo(db, acct, f.item("50.00")) if memo else await f.payment(db, acct, "50.00")
    with sql:  # all of item 1, then 2.00 of item 2
        await f.settle(db, settings, source, [(inv, "12.00")], kind=kind, rule="FIFO")
    counts = [sql.count]
    for targets in ([(inv, "3.00")], [(inv, "1.00"), (other, "4.00")]):  # item 2 again; a new target
        with sql:
            await f.settle(db, settings, source, targets, kind=kind, rule="FIFO")
        counts.append(sql.count)
    if settings.sqlite_path is None:  # (a payment is locked apart from its targets)
        assert counts == ([2, 2, 2] if memo else [3, 3, 3])
    column = "credit_memo_id" if memo else "payment_id"
    found = await _parts(db, column, source)
    src = found[1][3]  # the memo's item (a payment: none)
    assert (src is None) == (not memo)
    (item1, item2), (item3,) = await _item_ids(db, inv), await _item_ids(db, other)
    assert found == [
        (None, 3000, None, None, None),  # unapplied: 50.00 - 12.00 - 3.00 - 5.00
        (inv, 1600, item1, src, 1000),
        (inv, 1600, item2, src, 600),  # 2.00 + 3.00 + 1.00, one row
        (other, 400, item3, src, 400),
    ]
    await assert_invariants(db)
    with sql:  # taken back: the unapply reads the parts and lowers the same rows
        await f.settle(db, settings, source, [(inv, "16.00")], kind=kind, unapply=True)
    assert [(t, a, i, n) for t, a, i, _, n in await _parts(db, column, source)] == [
        (None, 4600, None, None),
        (inv, 0, item1, 0),
        (inv, 0, item2, 0),
        (other, 400, item3, 400),
    ]
    await assert_invariants(db)


async def test_latest_applied_on_is_the_latest_apply_date_whatever_the_order(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("100.00"))
    later = DAY + timedelta(days=5)
    await f.settle(db, settings, memo, [(inv, "1.00")], effective_date=later)
    await f.settle(db, settings, memo, [(inv, "1.00")], effective_date=DAY + timedelta(days=1))
    await f.settle(db, settings, memo, [], everything=True, unapply=True, effective_date=later)
    async with db.connect() as conn:
        latest = await conn.scalar(
            select(s.credit_memo_t.c.latest_applied_on).where(s.credit_memo_t.c.id == memo)
        )
    assert latest == later


async def test_a_payment_is_never_applied_before_its_latest_application(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    pay = await f.payment(db, acct, "50.00")
    await f.settle(db, settings, pay, [(inv, "1.00")], kind="PAYMENT", effective_date=DAY + timedelta(days=3))
    with pytest.raises(e.Rejected) as caught:
        await f.settle(
            db, settings, pay, [(inv, "1.00")], kind="PAYMENT", effective_date=DAY + timedelta(days=2)
        )
    assert [(v.code.value, v.field) for v in caught.value.errors] == [
        ("EFFECTIVE_DATE_TOO_EARLY", ("effectiveDate",))
    ]


async def test_large_writes_reach_the_driver_without_per_row_processing(
    db: Database, settings: Settings
) -> None:
    """The rows of a large write go to the driver without a compiled statement behind them (no
    per-row parameter processing in SQLAlchemy): on SQLite as the driver's executemany of plain
    tuples, on PostgreSQL as one ``INSERT … SELECT FROM unnest(arrays)`` per chunk. The money is
    exact."""
    from sqlalchemy import event, func

    acct = await f.account(db)
    inv = await f.invoice(db, acct, *(f.item("1.00") for _ in range(300)))
    memo = await f.credit_memo(db, acct, *(f.item("2.00") for _ in range(150)))
    seen: list[tuple[str, bool, bool]] = []

    def record(
        conn: object, cursor: object, statement: str, params: object, context: object, many: bool
    ) -> None:
        seen.append((statement, many, getattr(context, "compiled", None) is None))

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", record)
    try:
        await f.settle(db, settings, memo, [(inv, "250.00")])
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", record)
    sqlite = settings.sqlite_path is not None  # an executemany there, one statement of arrays here

    def sent(write: str) -> bool:
        return any(
            write in q and many == sqlite and plain and (sqlite or "unnest($" in q) for q, many, plain in seen
        )

    assert sent("INSERT INTO application_line (")
    assert sent("INSERT INTO item_part (")
    assert sent("UPDATE receivable_item SET")
    async with db.connect() as conn:
        lines = (await conn.execute(select(func.count(), func.sum(s.application_line_t.c.amount)))).one()
        balance = await conn.scalar(select(s.receivable_t.c.balance).where(s.receivable_t.c.id == inv))
    assert tuple(lines) == (250, 25_000)  # FIFO: 250 invoice items of 1.00, two per memo item
    assert balance == 5_000  # 300.00 − 250.00, in cents
    await assert_invariants(db)


def test_rows_go_to_the_driver_as_they_are_only_when_nothing_converts_them() -> None:
    from sqlalchemy import bindparam, update
    from sqlalchemy.dialects import postgresql, sqlite

    from gateway.postings import _add, _as_columns, _insert, _plain

    lite = sqlite.dialect()
    line_keys = (
        "application_id",
        "seq",
        "credit_memo_item_id",
        "target_id",
        "target_item_id",
        "currency",
        "amount",
    )
    lines = _plain(lite, _insert(s.application_line_t), line_keys)
    assert lines is not None and lines.names == line_keys
    assert lines.sql.startswith("INSERT INTO application_line (application_id, seq,")
    add = _plain(lite, _add(s.receivable_item_t, (("balance", -1),)), ("b_id", "b_amount"))
    assert add is not None and (add.sql, add.names) == (
        "UPDATE receivable_item SET balance=(receivable_item.balance + -1 * ?) WHERE receivable_item.id = ?",
        ("b_amount", "b_id"),
    )
    # a datetime is converted on the way in (SQLAlchemy's string form): not sent as it is
    assert _plain(lite, _insert(s.application_t), ("kind", "amount", "created_at")) is None
    # a parameter the rows do not carry (a constant): not sent as it is
    t = s.receivable_item_t
    constant = update(t).where(t.c.id == bindparam("b_id")).values(balance=t.c.balance + 7)
    assert _plain(lite, constant, ("b_id",)) is None
    # PostgreSQL sends an insert's columns as arrays instead
    pg = postgresql.asyncpg.dialect()
    assert _plain(pg, _insert(s.application_line_t), line_keys) is None
    assert _as_columns(pg, _insert(s.item_part_t), ("part_id", "target_item_id", "currency", "amount")) == (
        "INSERT INTO item_part (part_id, target_item_id, currency, amount)"
        " SELECT * FROM unnest($1::INTEGER[], $2::INTEGER[], $3::VARCHAR(3)[], $4::BIGINT[])"
    )
    assert _as_columns(pg, s.part_t.insert().returning(s.part_t.c.id), ("target_id",)) is None
    from sqlalchemy import Column, Integer, MetaData, Table

    stamped = Table("stamped", MetaData(), Column("id", Integer), Column("n", Integer, default=lambda: 7))
    assert _as_columns(pg, _insert(stamped), ("id",)) is None  # a default computed in Python
    assert _as_columns(pg, _insert(stamped), ("id", "n")) is not None
    assert _as_columns(lite, _insert(s.item_part_t), ("part_id",)) is None


@pytest.mark.parametrize("kind", ["CREDIT_MEMO", "PAYMENT"])
async def test_the_rows_a_move_returns_are_the_rows_as_committed(
    db: Database, settings: Settings, kind: str
) -> None:
    """The payload answers from the rows the move returns (on PostgreSQL the application's are the
    values it sent with the id the statement returned): each equals the row read back afterwards,
    column for column, for an apply and an unapply."""
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"), f.item("20.00"))
    source = await (
        f.credit_memo(db, acct, f.item("50.00")) if kind == "CREDIT_MEMO" else f.payment(db, acct, "50.00")
    )
    for unapply in (False, True):
        outcome = await f.settle(db, settings, source, [(inv, "12.34")], kind=kind, unapply=unapply)
        written = dict(outcome.written)
        assert set(written) == {"application", "credit_memo" if kind == "CREDIT_MEMO" else "payment"}
        async with db.connect() as conn:
            for table_name, row in written.items():
                table = metadata.tables[table_name]
                stored = (await conn.execute(select(table).where(table.c.id == row.id))).one()
                assert {c.name: getattr(row, c.name) for c in table.c} == dict(stored._mapping)
        assert written["application"].amount == 1234 and written["application"].kind == (
            "UNAPPLY" if unapply else "APPLY"
        )
    await assert_invariants(db)


PAYLOAD = """mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: "1.25"}]}) {
  creditMemo { id appliedAmount unappliedAmount }
  application { id amount creditMemo { id number appliedAmount } }
  userErrors { code } } }"""


async def test_the_payload_reads_nothing_after_the_commit_nested_rows_included(
    db: Database, settings: Settings, sql: StatementCounter, gql: Any
) -> None:
    """The payload's memo and application are built from the rows the move returned, and a loader a
    nested field makes afterwards (the application's memo) starts primed with them: the request
    sends the apply's statements and no read."""
    from gateway.ids import encode

    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("50.00"))
    ids = {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}
    await f.settle(db, settings, memo, [(inv, "1.25")])  # the memo's part on the invoice exists now
    with sql:
        await f.settle(db, settings, memo, [(inv, "1.25")])
    applying = sql.count
    with sql:
        data = (await gql(PAYLOAD, **ids))["applyCreditMemo"]
    assert sql.count == applying  # the apply's own statements, nothing read for the payload
    assert data["userErrors"] == []
    assert data["creditMemo"] == {"id": ids["m"], "appliedAmount": "3.75", "unappliedAmount": "46.25"}
    assert data["application"]["amount"] == "1.25"
    assert data["application"]["creditMemo"]["id"] == ids["m"]
    assert data["application"]["creditMemo"]["appliedAmount"] == "3.75"  # as committed, not as before
    await assert_invariants(db)
