"""PostgreSQL, two applies moving money on one document at once: the second waits for the first's
row lock and then works from what the first committed, item by item, not from the moment it began.

One process queues its own applies of a memo before they reach the server; two processes (a server
and a worker, two servers) meet on the memo's row lock, and so do two memos applied to one invoice
in any process. Under READ COMMITTED a statement that waited for a row lock gets that row as last
committed, but the rows it joins to it are read from the statement's start: the memo's or the
invoice's items as they were before the other apply moved money on them. An item then gave or
received twice (-5.00 left) while its document's totals stayed right; ``ledger._locked_rows`` now
reads such rows again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from gateway import db as db_module
from gateway import postings
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import memo_edits
from gateway.settlement import errors as e
from gateway.settlement.memo_edits import ItemChange
from tests import factories as f
from tests import postgres
from tests.invariants import assert_invariants


@pytest.fixture
async def two(pg_database: str | None) -> AsyncIterator[tuple[Database, Database]]:
    """Two gateways on one PostgreSQL database, as two processes are (each its own pool and line)."""
    if pg_database is None:
        pytest.skip("two processes on one PostgreSQL database: set GATEWAY_TEST_DATABASE_URL (CI does)")
    await postgres.empty(pg_database)
    settings = Settings(database_url=pg_database, workers=0)
    first, second = Database(settings), Database(settings)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def _one_waits_for_the_other(
    monkeypatch: pytest.MonkeyPatch,
    first: Any,
    second: Any,
    observer: Database,
    hold: tuple[Any, str] = (postings, "save_settlement"),
) -> tuple[Any, Any]:
    """Runs ``first`` until it calls ``hold`` (holding its row locks by then), then ``second``
    until it waits for them; then lets ``first`` go on and commit, and both finish. The second's
    outcome is returned as it is, an exception too."""
    gate, inside = asyncio.Event(), asyncio.Event()
    module, name = hold
    original = getattr(module, name)

    async def held(*args: Any, **kwargs: Any) -> Any:
        if not gate.is_set():
            inside.set()
            await gate.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    one = asyncio.ensure_future(first)
    try:
        await asyncio.wait_for(inside.wait(), 30)
        two = asyncio.ensure_future(second)
        await postgres.until_waiting_for_a_lock(observer.engine)
    finally:
        gate.set()
    return await one, (await asyncio.gather(two, return_exceptions=True))[0]


async def _amounts(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async def read(conn: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]

    return await db.read(read)


async def test_a_memo_applied_from_two_processes_takes_each_item_once(
    two: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    settings = first.settings
    acct = await f.account(first)
    invoice = await f.invoice(first, acct, f.item("20.00"))
    memo = await f.credit_memo(first, acct, f.item("5.00"), f.item("5.00"))
    # both by FIFO: the first takes the memo's first item whole, so the second must take the other
    await _one_waits_for_the_other(
        monkeypatch,
        f.settle(first, settings, memo, [(invoice, "5.00")], rule="FIFO"),
        f.settle(second, settings, memo, [(invoice, "5.00")], rule="FIFO"),
        first,
    )
    items = await _amounts(
        first, "SELECT seq, applied_amount, unapplied_amount FROM credit_memo_item ORDER BY seq"
    )
    assert items == [(0, 500, 0), (1, 500, 0)]
    await assert_invariants(first)


@pytest.mark.parametrize("processes", [1, 2])
async def test_an_invoice_paid_by_two_memos_at_once_gives_each_item_once(
    two: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    """One process too: its line is per memo, so two memos' applies meet on the invoice's lock."""
    first, second = two[0], two[processes - 1]
    settings = first.settings
    acct = await f.account(first)
    invoice = await f.invoice(first, acct, f.item("5.00"), f.item("5.00"))
    memos = [await f.credit_memo(first, acct, f.item("5.00")) for _ in range(2)]
    # two memos on one invoice: each waits for the invoice's lock, the second after the first
    await _one_waits_for_the_other(
        monkeypatch,
        f.settle(first, settings, memos[0], [(invoice, "5.00")], rule="FIFO"),
        f.settle(second, settings, memos[1], [(invoice, "5.00")], rule="FIFO"),
        first,
    )
    items = await _amounts(first, "SELECT seq, balance FROM receivable_item ORDER BY seq")
    assert items == [(0, 0), (1, 0)]
    await assert_invariants(first)


async def test_an_edit_and_a_new_memo_crediting_one_invoice_item_take_turns_without_a_deadlock(
    two: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draft memo's edit raises what it credits on an invoice item; at once a new memo from the
    same invoice credits that item. The new memo waits for the edit (both lock the invoice first)
    and is refused for what the edit left. The edit locked only the item before: the new memo then
    read the creditable amounts before the edit committed, and the two deadlocked (the edit's
    update of its memo checks the memo's invoice key, which the new memo held), so one was
    aborted after PostgreSQL's deadlock timeout and run again."""
    first, second = two
    acct = await f.account(first)
    invoice = await f.invoice(first, acct, f.item("10.00"))
    item = (await _amounts(first, "SELECT id FROM receivable_item"))[0][0]
    draft = await f.credit_memo_from_invoice(first, invoice, [(item, "2.00")], post=False)
    draft_item = (await _amounts(first, f"SELECT id FROM credit_memo_item WHERE credit_memo_id = {draft}"))[
        0
    ][0]
    edit = memo_edits.update_credit_memo(
        first,
        ref=ref(encode("CreditMemo", draft), "CreditMemo"),
        changes=memo_edits.MemoUpdate(
            items=(ItemChange(draft_item, encode("CreditMemoItem", draft_item), amount="8.00"),)
        ),
    )
    new_memo = f.credit_memo_from_invoice(second, invoice, [(item, "5.00")])
    retried: list[BaseException] = []
    retryable = db_module.is_retryable

    def recorded(exc: BaseException) -> bool:
        retried.append(exc)
        return retryable(exc)

    monkeypatch.setattr(db_module, "is_retryable", recorded)
    # the edit is held once it has credited the item, about to update its memo's totals
    _, refused = await _one_waits_for_the_other(
        monkeypatch, edit, new_memo, first, hold=(memo_edits.s, "refresh_draft_totals")
    )
    assert retried == []
    assert isinstance(refused, e.Rejected), refused
    assert [type(v).__name__ for v in refused.errors] == ["ItemExceedsCreditable"]
    assert await _amounts(first, "SELECT credited_amount FROM receivable_item") == [(800,)]
    await assert_invariants(first)
