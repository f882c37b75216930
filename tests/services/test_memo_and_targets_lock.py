"""PostgreSQL: an apply of a credit memo locks the memo and its targets with one statement
(``ledger.lock_memo_and_targets``), one round trip instead of two. It answers what the two locks
answered, and it locks in the same order: the memo first, then the targets in id order."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from gateway import ledger, scope
from gateway import store as s
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.settlement import errors as e
from gateway.settlement.model import CREDIT_MEMO
from tests import factories as f
from tests import postgres
from tests.invariants import assert_invariants

Wanted = list[tuple[str, Any, tuple[str, ...]]]


async def _numbers(pg: Database, table: Any, *pks: int) -> list[str]:
    async with pg.connect() as conn:
        found = dict(
            (await conn.execute(select(table.c.id, table.c.number).where(table.c.id.in_(pks)))).all()
        )
    return [found[pk] for pk in pks]


async def _both_ways(pg: Database, memo: Any, wanted: Wanted, small: int) -> tuple[Any, Any]:
    """What the two locks answer, and what the combined one answers (each in a transaction rolled
    back), as comparable values; a refusal as its violations."""

    def comparable(source: Any, ids: Any, problems: Any, rows: Any, preloaded: Any) -> Any:
        rows = {pk: {k: v for k, v in row._mapping.items() if k != "source"} for pk, row in rows.items()}
        return source, ids, [repr(p) for p in problems], rows, preloaded

    async def apart(conn: Any) -> Any:
        source = await ledger.find_source(conn, CREDIT_MEMO, memo, ("creditMemoId",), lock=True)
        return comparable(source, *await ledger.resolve_targets(conn, wanted, lock=True, items_up_to=small))

    async def together(conn: Any) -> Any:
        assert ledger.can_lock_together(conn, CREDIT_MEMO, wanted)
        found = await ledger.lock_memo_and_targets(conn, memo, ("creditMemoId",), wanted, items_up_to=small)
        return comparable(*found)

    answers = []
    for read in (apart, together):
        async with pg.connect(write=True) as conn:
            try:
                answers.append(await read(conn))
            except e.Rejected as refused:
                answers.append([repr(v) for v in refused.errors])
            await conn.rollback()
    return answers[0], answers[1]


async def test_the_combined_lock_answers_what_the_memo_s_and_the_targets_locks_answer(pg: Database) -> None:
    acct = await f.account(pg)
    small = await f.invoice(pg, acct, f.item("10.00"), f.item("5.00", tax="0.50"))
    large = await f.invoice(pg, acct, *(f.item("1.00") for _ in range(3)))  # over ``small``: no items
    debit = await f.debit_memo(pg, acct, f.item("4.00"))
    memo = await f.credit_memo(pg, acct, f.item("5.00"), f.item("7.25", tax="1.00"))
    await f.settle(pg, pg.settings, memo, [(small, "3.00")])  # applied amounts, latest_applied_on
    empty = await f.credit_memo(pg, acct, f.item("1.00"), post=False)  # a draft, never applied
    (memo_number,) = await _numbers(pg, s.credit_memo_t, memo)
    large_number, debit_number = await _numbers(pg, s.receivable_t, large, debit)

    def target(kind: str, raw: str, n: int) -> tuple[str, Any, tuple[str, ...]]:
        type_name = "Invoice" if kind == "INVOICE" else "DebitMemo"
        return (kind, ref(raw, type_name), ("invoices" if kind == "INVOICE" else "debitMemos", str(n)))

    by_id = ref(encode("CreditMemo", memo), "CreditMemo")
    cases: list[tuple[Any, Wanted]] = [
        (by_id, [target("INVOICE", encode("Invoice", small), 0)]),
        # by number, a large target (its items not brought), a debit memo, ids out of order
        (
            ref(memo_number, "CreditMemo"),
            [
                target("INVOICE", large_number, 0),
                target("INVOICE", encode("Invoice", small), 1),
                target("DEBIT_MEMO", debit_number, 0),
            ],
        ),
        # unknown targets: an id of no document, a number of none, a debit memo named as an invoice
        (
            by_id,
            [
                target("INVOICE", encode("Invoice", 999_999), 0),
                target("INVOICE", "NO-SUCH-NUMBER", 1),
                target("INVOICE", debit_number, 2),
                target("INVOICE", encode("Invoice", small), 3),
            ],
        ),
        (ref(encode("CreditMemo", empty), "CreditMemo"), [target("INVOICE", encode("Invoice", small), 0)]),
        # no such memo: refused alike, whatever the targets
        (ref(encode("CreditMemo", 999_999), "CreditMemo"), [target("INVOICE", encode("Invoice", small), 0)]),
        (ref("NO-SUCH-MEMO", "CreditMemo"), [target("INVOICE", encode("Invoice", small), 0)]),
    ]
    for memo_ref, wanted in cases:
        apart, together = await _both_ways(pg, memo_ref, wanted, small=2)
        assert together == apart, (memo_ref, wanted)
    apart, together = await _both_ways(pg, by_id, cases[1][1], small=2)
    source, ids, problems, rows, preloaded = together
    assert [i.amount for i in source.items] == [500, 725, 100] and sum(i.applied for i in source.items) == 300
    assert all(i.amount == i.applied + i.unapplied for i in source.items)
    assert source.latest_application_date is not None and ids == [large, small, debit] and problems == []
    # only the debit memo's one item came with the lock: the invoices have 3 items (a tax among them)
    assert list(preloaded) == [debit] and len(preloaded[debit]) == 1
    # a memo outside the caller's accounts is not found, as by the two locks
    with scope.limited_to(frozenset({acct + 1})):
        apart, together = await _both_ways(pg, by_id, cases[0][1], small=2)
    assert together == apart == [repr(e.NotFound("credit memo", by_id.raw, field=("creditMemoId",)))]


async def test_the_memo_is_locked_before_its_targets_are_waited_for(pg: Database) -> None:
    """An apply that waits for its invoice's lock already holds its memo's: memo first, then the
    targets, as every write locks them (no two requests wait on each other in a cycle)."""
    acct = await f.account(pg)
    inv = await f.invoice(pg, acct, f.item("10.00"))
    memo = await f.credit_memo(pg, acct, f.item("5.00"))
    url = postgres.dsn(pg.settings.database_url)
    holder, probe = await asyncpg.connect(url), await asyncpg.connect(url)
    applying: asyncio.Future[Any] | None = None
    try:
        async with holder.transaction():
            await holder.execute("SELECT FROM receivable WHERE id = $1 FOR UPDATE", inv)
            applying = asyncio.ensure_future(f.settle(pg, pg.settings, memo, [(inv, "1.00")]))
            await postgres.until_waiting_for_a_lock(pg.engine)
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with probe.transaction():
                    await probe.execute("SELECT FROM credit_memo WHERE id = $1 FOR UPDATE NOWAIT", memo)
            assert not applying.done()
        outcome = await asyncio.wait_for(applying, timeout=30)  # the invoice's lock released
        assert outcome.application_id is not None
        async with pg.connect() as conn:
            rt = s.receivable_t
            assert (await conn.execute(select(rt.c.balance).where(rt.c.id == inv))).scalar_one() == 900
    finally:
        if applying is not None and not applying.done():
            applying.cancel()
        await holder.close()
        await probe.close()
    await assert_invariants(pg)
