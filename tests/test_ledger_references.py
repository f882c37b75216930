"""The ledger's references hold on both databases: a line or item part refers only to rows that
exist, a referenced row is not deleted, and a written reference does not change.

SQLite checks them with its foreign keys. PostgreSQL checks them once per statement (migration
0004): an apply at TOTAL_ITEMS writes ~10,000 lines and item parts, and a foreign key's check per
row and key was three quarters of the time of those inserts. These tests hold both to the same
behaviour, and PostgreSQL's to the locking a foreign key does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gateway.config import Settings
from gateway.db import Database
from tests import factories as f
from tests import postgres

MISSING = 999_999

LINE = (
    "INSERT INTO application_line"
    " (application_id, seq, credit_memo_item_id, target_id, target_item_id, currency, amount)"
    " VALUES (:application, :seq, :memo_item, :target, :target_item, 'USD', 1)"
)
ITEM_PART = (
    "INSERT INTO item_part (part_id, credit_memo_item_id, target_item_id, currency, amount)"
    " VALUES (:part, :memo_item, :target_item, 'USD', 1)"
)


async def _ledger(db: Database, settings: Settings) -> dict[str, int]:
    """A memo applied to an invoice: the ids of the rows its line and item part refer to."""
    acct = await f.account(db)
    invoice = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("4.00"))
    await f.settle(db, settings, memo, [(invoice, "3.00")])

    async def ids(conn: Any) -> dict[str, int]:
        row = (
            await conn.execute(
                text(
                    "SELECT l.application_id, l.credit_memo_item_id, l.target_id, l.target_item_id,"
                    " p.part_id FROM application_line l, item_part p"
                )
            )
        ).one()
        spare = await conn.scalar(
            text("SELECT id FROM receivable_item WHERE receivable_id <> :t ORDER BY id LIMIT 1"),
            {"t": row.target_id},
        )
        return {
            "application": row.application_id,
            "memo_item": row.credit_memo_item_id,
            "target": row.target_id,
            "target_item": row.target_item_id,
            "part": row.part_id,
            "spare_item": spare,
        }

    spare_invoice = await f.invoice(db, acct, f.item("1.00"))
    assert spare_invoice
    return await db.read(ids)


async def _refused(db: Database, sql: str, *rows: dict[str, Any]) -> None:
    async def write(conn: Any) -> None:
        await conn.execute(text(sql), *([list(rows)] if rows else []))

    with pytest.raises(IntegrityError):
        await db.write(write)


async def _count(db: Database, table: str) -> int:
    async def count(conn: Any) -> int:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")))

    return await db.read(count)


@pytest.mark.parametrize("missing", ["application", "memo_item", "target", "target_item"])
async def test_a_line_that_refers_to_a_missing_row_is_refused(
    db: Database, settings: Settings, missing: str
) -> None:
    ids = await _ledger(db, settings)
    good = {"seq": 1, **{k: ids[k] for k in ("application", "memo_item", "target", "target_item")}}
    # one bad row among good ones: the whole statement is refused, nothing is written
    await _refused(db, LINE, good, {**good, "seq": 2, missing: MISSING}, {**good, "seq": 3})
    assert await _count(db, "application_line") == 1
    # the control: the same rows with every reference good are written
    await db.write(lambda conn: conn.execute(text(LINE), [good, {**good, "seq": 2}]))
    assert await _count(db, "application_line") == 3


@pytest.mark.parametrize("missing", ["part", "memo_item", "target_item"])
async def test_an_item_part_that_refers_to_a_missing_row_is_refused(
    db: Database, settings: Settings, missing: str
) -> None:
    ids = await _ledger(db, settings)
    # (the apply's own item part holds its part and pair of items: the good row takes another item)
    good = {"part": ids["part"], "memo_item": ids["memo_item"], "target_item": ids["spare_item"]}
    await _refused(db, ITEM_PART, good, {**good, missing: MISSING})
    assert await _count(db, "item_part") == 1
    await db.write(lambda conn: conn.execute(text(ITEM_PART), [good]))
    assert await _count(db, "item_part") == 2


@pytest.mark.parametrize(
    ("table", "key", "only_from"),
    [
        ("application", "application", "application_line"),
        ("credit_memo_item", "memo_item", "application_line"),
        ("credit_memo_item", "memo_item", "item_part"),
        ("receivable_item", "target_item", "application_line"),
        ("receivable_item", "target_item", "item_part"),
        ("part", "part", "item_part"),
    ],
)
async def test_a_row_the_ledger_refers_to_is_not_deleted(
    db: Database, settings: Settings, table: str, key: str, only_from: str
) -> None:
    ids = await _ledger(db, settings)

    async def only_one_reference(conn: Any) -> None:
        # the row is referred to from ``only_from`` alone, so that is the check refusing the delete
        await conn.execute(text("UPDATE settlement_event SET application_id = NULL"))
        other = "item_part" if only_from == "application_line" else "application_line"
        await conn.execute(text(f"DELETE FROM {other}"))

    await db.write(only_one_reference)
    before = await _count(db, table)
    await _refused(db, f"DELETE FROM {table} WHERE id = :id", {"id": ids[key]})
    assert await _count(db, table) == before

    async def control(conn: Any) -> None:  # once nothing refers to it, the row is deleted
        await conn.execute(text(f"DELETE FROM {only_from}"))
        await conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": ids[key]})

    await db.write(control)
    assert await _count(db, table) == before - 1


@pytest.mark.parametrize(
    ("table", "column", "key"),
    [
        ("application_line", "target_item_id", "target_item"),
        ("application_line", "application_id", "application"),
        ("item_part", "part_id", "part"),
        ("item_part", "credit_memo_item_id", "memo_item"),
    ],
)
async def test_a_written_reference_does_not_change_to_a_missing_row(
    db: Database, settings: Settings, table: str, column: str, key: str
) -> None:
    ids = await _ledger(db, settings)
    await _refused(db, f"UPDATE {table} SET {column} = :missing", {"missing": MISSING})

    async def still(conn: Any) -> int:
        return int(await conn.scalar(text(f"SELECT {column} FROM {table}")))

    assert await db.read(still) == ids[key]


# PostgreSQL: what its per-statement checks add to the foreign keys, and the locks they take


async def test_postgresql_refuses_a_line_whose_item_is_not_on_its_target(pg: Database) -> None:
    ids = await _ledger(pg, pg.settings)
    line = {"seq": 2, **{k: ids[k] for k in ("application", "memo_item", "target")}}
    await _refused(pg, LINE, {**line, "target_item": ids["spare_item"]})
    await pg.write(lambda conn: conn.execute(text(LINE), [{**line, "target_item": ids["target_item"]}]))


async def test_postgresql_refuses_any_change_to_a_written_reference(pg: Database) -> None:
    ids = await _ledger(pg, pg.settings)
    # an existing row, not the one it refers to: a foreign key would allow it, the ledger does not
    await _refused(pg, "UPDATE item_part SET target_item_id = :other", {"other": ids["spare_item"]})
    await _refused(
        pg, "UPDATE receivable_item SET id = :new WHERE id = :id", {"new": MISSING, "id": ids["target_item"]}
    )
    # setting a reference to the value it has is not a change
    await pg.write(
        lambda conn: conn.execute(text("UPDATE item_part SET part_id = part_id, amount = amount + 0"))
    )


async def test_postgresql_refuses_to_truncate_a_table_the_ledger_still_refers_to(pg: Database) -> None:
    """As a foreign key does: ``CASCADE`` follows foreign keys, and these references are not
    keys, so the truncation would leave lines referring to nothing. Truncated with the lines, the
    applications go."""
    await _ledger(pg, pg.settings)
    await _refused(pg, "TRUNCATE application CASCADE")
    assert await _count(pg, "application") == 1
    await pg.write(lambda conn: conn.execute(text("TRUNCATE application, application_line CASCADE")))
    assert await _count(pg, "application") == 0


async def test_postgresql_a_delete_waits_for_a_new_reference_and_is_then_refused(pg: Database) -> None:
    """The insert's check locks the row it refers to FOR KEY SHARE, as a foreign key does."""
    ids = await _ledger(pg, pg.settings)
    spare = ids["spare_item"]
    writer, deleter, admin = [await asyncpg.connect(postgres.dsn(pg.settings.database_url)) for _ in range(3)]
    try:
        async with writer.transaction():
            await writer.execute(
                "INSERT INTO item_part (part_id, credit_memo_item_id, target_item_id, currency, amount)"
                " VALUES ($1, $2, $3, 'USD', 1)",
                ids["part"],
                ids["memo_item"],
                spare,
            )
            deleting = asyncio.ensure_future(
                deleter.execute("DELETE FROM receivable_item WHERE id = $1", spare)
            )
            await postgres.until_waiting_for_a_lock(pg.engine, deleter.get_server_pid())
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await deleting
        assert await admin.fetchval("SELECT count(*) FROM receivable_item WHERE id = $1", spare) == 1
    finally:
        for conn in (writer, deleter, admin):
            await conn.close()


async def test_postgresql_a_new_reference_waits_for_a_delete_and_is_then_refused(pg: Database) -> None:
    ids = await _ledger(pg, pg.settings)
    spare = ids["spare_item"]
    writer, deleter, admin = [await asyncpg.connect(postgres.dsn(pg.settings.database_url)) for _ in range(3)]
    try:
        async with deleter.transaction():
            await deleter.execute("DELETE FROM receivable_item WHERE id = $1", spare)
            inserting = asyncio.ensure_future(
                writer.execute(
                    "INSERT INTO item_part (part_id, credit_memo_item_id, target_item_id, currency, amount)"
                    " VALUES ($1, $2, $3, 'USD', 1)",
                    ids["part"],
                    ids["memo_item"],
                    spare,
                )
            )
            await postgres.until_waiting_for_a_lock(pg.engine, writer.get_server_pid())
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await inserting
        assert await admin.fetchval("SELECT count(*) FROM item_part WHERE target_item_id = $1", spare) == 0
    finally:
        for conn in (writer, deleter, admin):
            await conn.close()


async def test_postgresql_checks_a_small_insert_by_index_after_a_large_one(pg: Database) -> None:
    """plpgsql plans a trigger's check once per session, for the first statement's size. After a
    1,000-row insert, a one-row insert must still look its references up by index, not scan the
    parents (which a join planned for 1,000 rows does; on a ledger of millions, per insert)."""
    acct = await f.account(pg)
    invoices = [await f.invoice(pg, acct, *(f.item("1.00") for _ in range(1000))) for _ in range(2)]
    memo = await f.credit_memo(pg, acct, f.item("4.00"))
    await f.settle(pg, pg.settings, memo, [(invoices[0], "0.01")])
    conn = await asyncpg.connect(postgres.dsn(pg.settings.database_url))
    try:
        part, memo_item = await conn.fetchrow("SELECT part_id, credit_memo_item_id FROM item_part")
        free = "SELECT id FROM receivable_item WHERE id NOT IN (SELECT target_item_id FROM item_part)"
        items = [r[0] for r in await conn.fetch(f"{free} ORDER BY id LIMIT 1001")]
        insert = (
            "INSERT INTO item_part (part_id, credit_memo_item_id, target_item_id, currency, amount)"
            " SELECT $1, $2, item, 'USD', 1 FROM unnest($3::integer[]) AS item"
        )
        scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'receivable_item'"
        async with conn.transaction():
            await conn.execute(insert, part, memo_item, items[:1000])  # the session's first check
            before = await conn.fetchval(scans)
            await conn.execute(insert, part, memo_item, items[1000:])
            assert await conn.fetchval(scans) == before
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "breaking",
    [
        "UPDATE receivable SET balance = -1",
        "UPDATE receivable SET balance = amount + 1",
        "UPDATE receivable_item SET balance = balance - 1000",
        "UPDATE receivable_item SET balance = amount + 1",
        "UPDATE receivable_item SET credited_amount = amount + 1",
        "UPDATE receivable_item SET credited_amount = -1",
        "UPDATE credit_memo SET unapplied_amount = unapplied_amount - 1000, applied_amount = applied_amount + 1000",
        "UPDATE credit_memo SET applied_amount = applied_amount + 1",
        "UPDATE credit_memo_item SET unapplied_amount = -1, refund_amount = refund_amount + unapplied_amount + 1",
        "UPDATE credit_memo_item SET refund_amount = refund_amount + 1",
        "UPDATE payment SET unapplied_amount = unapplied_amount + 1",
        "UPDATE payment SET applied_amount = -1, unapplied_amount = amount + 1",
        "UPDATE part SET amount = -1",
        "UPDATE item_part SET amount = -1",
    ],
)
async def test_a_write_that_breaks_a_row_invariant_is_refused(
    db: Database, settings: Settings, breaking: str
) -> None:
    """SPEC's invariants 1 and 2 (and parts never negative), held by the database (migration 0005)."""
    await _ledger(db, settings)
    await f.payment(db, await f.account(db), "7.00")

    async def rows(conn: Any) -> list[Any]:
        table = breaking.split()[1]
        return [tuple(r) for r in (await conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()]

    before = await db.read(rows)
    await _refused(db, breaking)
    assert await db.read(rows) == before
    # the control: a write that keeps them is taken
    await db.write(lambda conn: conn.execute(text(f"{breaking.split(' SET ')[0]} SET id = id")))
