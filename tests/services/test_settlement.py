"""Settlement services on a real database, with SPEC.md's invariants checked after each step."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import settlement as st
from gateway.settlement import errors as e
from gateway.settlement.limits import Limits
from tests import factories as f
from tests.conftest import StatementCounter
from tests.invariants import assert_invariants, balances


async def items_of(db: Database, table, owner: str, pk: int) -> list:  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        return list(
            (await conn.execute(select(table).where(table.c[owner] == pk).order_by(table.c.seq))).all()
        )


def codes(exc: e.Rejected) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.code.value, v.field) for v in exc.errors]


async def test_proration_of_100_over_three_equal_items_is_exact(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("50.00"), f.item("50.00"), f.item("50.00"))
    memo = await f.credit_memo(db, acct, f.item("100.00"))
    outcome = await f.settle(db, settings, memo, [(inv, "100.00")], rule="PRORATION")
    assert outcome.rule == "PRORATION"
    balances_ = [r.balance for r in await items_of(db, s.receivable_item_t, "receivable_id", inv)]
    assert balances_ == [5000 - 3334, 5000 - 3333, 5000 - 3333]
    await assert_invariants(db)


async def test_fifo_settles_items_in_order_with_tax_right_after_its_parent(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00", tax="1.00"), f.item("20.00"))
    memo = await f.credit_memo(db, acct, f.item("12.00"))
    await f.settle(db, settings, memo, [(inv, "12.00")], rule="FIFO")
    rows = await items_of(db, s.receivable_item_t, "receivable_id", inv)
    assert [(r.kind, r.balance) for r in rows] == [("CHARGE", 0), ("TAX", 0), ("CHARGE", 1900)]
    await assert_invariants(db)


async def test_jpy_and_kwd_prorate_in_their_own_minor_units(db: Database, settings: Settings) -> None:
    for currency, amounts, total, expected in (
        ("JPY", ("100", "100", "100"), "100", [66, 67, 67]),
        ("KWD", ("1.000", "1.000", "1.000"), "1.000", [666, 667, 667]),
    ):
        acct = await f.account(db, currency)
        inv = await f.invoice(db, acct, *(f.item(a) for a in amounts))
        memo = await f.credit_memo(db, acct, f.item(total))
        await f.settle(db, settings, memo, [(inv, total)], rule="PRORATION")
        assert [r.balance for r in await items_of(db, s.receivable_item_t, "receivable_id", inv)] == expected
    await assert_invariants(db)


async def test_source_item_rule_credits_each_invoice_item_from_its_memo_item(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00", tax="10.00"), f.item("40.00"))
    charge, tax, other = (r.id for r in await items_of(db, s.receivable_item_t, "receivable_id", inv))
    memo = await f.credit_memo_from_invoice(db, inv, [(charge, "30.00"), (tax, "3.00"), (other, "4.00")])
    await f.settle(db, settings, memo, [(inv, "37.00")], rule="SOURCE_ITEM")
    rows = await items_of(db, s.receivable_item_t, "receivable_id", inv)
    assert [r.balance for r in rows] == [7000, 700, 3600]
    await assert_invariants(db)


async def test_unapply_restores_every_balance_exactly(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("33.33", tax="3.33"), f.item("12.34"))
    dm = await f.debit_memo(db, acct, f.item("7.77"))
    memo = await f.credit_memo(db, acct, f.item("20.00", tax="2.00"), f.item("9.99"))
    before = await balances(db)
    await f.settle(db, settings, memo, [(inv, "21.21")], debit_memos=[(dm, "5.55")], rule="PRORATION")
    await assert_invariants(db)
    assert await balances(db) != before
    await f.settle(db, settings, memo, [], unapply=True, everything=True)
    await assert_invariants(db)
    assert await balances(db) == before


async def test_partial_unapply_names_what_to_give_back(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("50.00"))
    memo = await f.credit_memo(db, acct, f.item("30.00"))
    await f.settle(db, settings, memo, [(inv, "30.00")])
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, memo, [(inv, "30.01")], unapply=True)
    assert codes(caught.value) == [("AMOUNT_EXCEEDS_APPLIED", ("invoices", "0", "amount"))]
    await f.settle(db, settings, memo, [(inv, "10.00")], unapply=True)
    async with db.connect() as conn:
        row = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
    assert (row.applied_amount, row.unapplied_amount) == (2000, 1000)
    await assert_invariants(db)


async def test_every_error_of_a_request_is_reported_and_nothing_is_written(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    other = await f.account(db, name="Other")
    inv = await f.invoice(db, acct, f.item("10.00"))
    foreign = await f.invoice(db, other, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    before = await balances(db)
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, memo, [(inv, "11.00"), (foreign, "1.001"), (inv, "1.00")])
    found = {code for code, _ in codes(caught.value)}
    assert {"AMOUNT_EXCEEDS_BALANCE", "AMOUNT_PRECISION", "DUPLICATE_TARGET", "ACCOUNT_MISMATCH"} <= found
    assert await balances(db) == before
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 0


async def test_settlement_needs_everything_posted(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    draft_inv = await f.invoice(db, acct, post=False)
    memo = await f.credit_memo(db, acct, post=False)
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, memo, [(draft_inv, "1.00")])
    assert [c for c, _ in codes(caught.value)].count("INVALID_STATUS") == 2


async def test_total_items_over_the_limit_is_refused_from_counts_before_items_are_read(
    db: Database, settings: Settings, sql: StatementCounter
) -> None:
    small = settings.replace(limits=Limits(total_items=10))
    acct = await f.account(db)
    inv = await f.invoice(db, acct, *(f.item("1.00") for _ in range(5)))
    memo = await f.credit_memo(db, acct, *(f.item("1.00") for _ in range(5)))
    await f.settle(db, small, memo, [(inv, "1.00")], rule="FIFO")  # 5 + 5 = 10: at the limit
    await f.settle(db, small, memo, [(inv, "1.00")], unapply=True)
    memo6 = await f.credit_memo(db, acct, *(f.item("1.00") for _ in range(6)))
    with sql, pytest.raises(e.Rejected) as caught:
        await f.settle(db, small, memo6, [(inv, "1.00")])
    (violation,) = caught.value.errors
    assert isinstance(violation, e.LimitExceeded)
    assert (violation.name.value, violation.max, violation.actual) == ("TOTAL_ITEMS", 10, 11)
    assert [r.value for r in violation.remedies] == [
        "SPECIFY_TARGET_ITEMS",
        "SPECIFY_SOURCE_ITEMS",
        "SPLIT_DOCUMENTS",
        "USE_ASYNC",
    ]
    # (the locks read the memo's items, and the small targets' ones: none here, over the limit)
    reads = [q for q in sql.statements if "count(" not in q.lower() and "FOR UPDATE" not in q]
    item_reads = [q for q in reads if "FROM receivable_item" in q]
    memo_item_reads = [q for q in reads if "FROM credit_memo_item" in q]
    assert (item_reads, memo_item_reads) == ([], [])


async def test_payments_apply_and_unapply_like_memos(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00", tax="1.00"))
    pay = await f.payment(db, acct, "11.00")
    before = await balances(db)
    outcome = await f.settle(db, settings, pay, [(inv, "11.00")], kind="PAYMENT")
    async with db.connect() as conn:
        row = (await conn.execute(select(s.receivable_t).where(s.receivable_t.c.id == inv))).one()
    assert (row.balance, row.payment_amount, row.credit_memo_amount) == (0, 1100, 0)
    assert outcome.application_id is not None
    await assert_invariants(db)
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, pay, [(inv, "1.00")], kind="PAYMENT", rule="SOURCE_ITEM")
    # every problem at once: the rule, and the amounts (the payment and the invoice are settled)
    assert codes(caught.value) == [
        ("SOURCE_ITEM_RULE_VIOLATION", ("applicationRule",)),
        ("AMOUNT_EXCEEDS_BALANCE", ("invoices", "0", "amount")),
        ("AMOUNT_EXCEEDS_UNAPPLIED", ()),
    ]
    await f.settle(db, settings, pay, [], kind="PAYMENT", unapply=True, everything=True)
    assert await balances(db) == before
    await assert_invariants(db)


async def test_reverse_creates_a_mirroring_debit_memo_applied_in_full(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("10.00", tax="0.80"), f.item("2.00", kind="DISCOUNT"))
    outcome = await st.reverse_or_write_off(
        db, settings, memo=ref(encode("CreditMemo", memo), "CreditMemo"), write_off=False, memo_date=None
    )
    async with db.connect() as conn:
        m = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
        dm = (
            await conn.execute(select(s.receivable_t).where(s.receivable_t.c.id == outcome.debit_memo_id))
        ).one()
    assert (m.reversed, m.unapplied_amount, m.applied_amount) == (True, 0, 1280)
    assert (dm.kind, dm.status, dm.amount, dm.balance, dm.referred_credit_memo_id) == (
        "DEBIT_MEMO",
        "POSTED",
        1280,
        0,
        memo,
    )
    kinds = [(r.kind, r.amount) for r in await items_of(db, s.receivable_item_t, "receivable_id", dm.id)]
    assert kinds == [("CHARGE", 1000), ("TAX", 80), ("DISCOUNT", 200)]
    with pytest.raises(e.Rejected) as caught:
        await st.reverse_or_write_off(
            db, settings, memo=ref(encode("CreditMemo", memo), "CreditMemo"), write_off=False, memo_date=None
        )
    assert "ALREADY_REVERSED" in {c for c, _ in codes(caught.value)}
    await assert_invariants(db)


async def test_write_off_needs_a_fully_unapplied_memo(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("4.00"))
    await f.settle(db, settings, memo, [(inv, "1.00")])
    memo_ref = ref(encode("CreditMemo", memo), "CreditMemo")
    with pytest.raises(e.Rejected) as caught:
        await st.reverse_or_write_off(db, settings, memo=memo_ref, write_off=True, memo_date=None)
    assert codes(caught.value) == [("NOT_FULLY_UNAPPLIED", ())]
    await f.settle(db, settings, memo, [], unapply=True, everything=True)
    outcome = await st.reverse_or_write_off(db, settings, memo=memo_ref, write_off=True, memo_date=None)
    async with db.connect() as conn:
        dm = (
            await conn.execute(select(s.receivable_t).where(s.receivable_t.c.id == outcome.debit_memo_id))
        ).one()
        m = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
    assert (dm.reason_code, dm.balance, m.reversed, m.unapplied_amount) == ("Write-off", 0, False, 0)
    await assert_invariants(db)


async def test_refund_takes_from_the_unapplied_amount_fifo(db: Database, settings: Settings) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("3.00", tax="0.30"), f.item("5.00"))
    memo_ref = ref(encode("CreditMemo", memo), "CreditMemo")
    await st.refund(db, settings, memo=memo_ref, amount="3.50", refund_date=None)
    rows = await items_of(db, s.credit_memo_item_t, "credit_memo_id", memo)
    assert [(r.refund_amount, r.unapplied_amount) for r in rows] == [(300, 0), (30, 0), (20, 480)]
    with pytest.raises(e.Rejected) as caught:
        await st.refund(db, settings, memo=memo_ref, amount="4.81", refund_date=None)
    assert codes(caught.value) == [("AMOUNT_EXCEEDS_UNAPPLIED", ("amount",))]
    await assert_invariants(db)


async def test_the_same_idempotency_key_replays_without_moving_money_again(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    first = await f.settle(db, settings, memo, [(inv, "1.00")], key="k-1")
    again = await f.settle(db, settings, memo, [(inv, "1.00")], key="k-1")
    assert again.application_id == first.application_id
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, memo, [(inv, "2.00")], key="k-1")
    assert codes(caught.value) == [("IDEMPOTENCY_KEY_REUSED", ("idempotencyKey",))]
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 1
        row = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
    assert row.applied_amount == 100


async def test_a_key_held_by_a_running_transaction_is_in_progress(db: Database, settings: Settings) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serializes writers: a second request waits for the first instead of overlapping")
    import hashlib

    from sqlalchemy import text

    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    lock_id = int.from_bytes(hashlib.sha256(b"system:k-2").digest()[:8], "big", signed=True)
    async with db.engine.connect() as holder, holder.begin():
        await holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
        with pytest.raises(e.Rejected) as caught:
            await f.settle(db, settings, memo, [(inv, "1.00")], key="k-2")
    assert codes(caught.value) == [("IDEMPOTENCY_KEY_IN_PROGRESS", ("idempotencyKey",))]


async def test_applies_of_one_memo_wait_in_line_in_this_process_not_on_its_row_lock(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: while one apply of a memo is in its transaction, this process's other applies of
    that memo wait in arrival order in the process, holding no connection and with no transaction
    in the server (not all on the memo's row lock, where the winner of each release is random);
    each then commits, in that order, exactly."""
    import asyncio

    from sqlalchemy import text

    from benchmarks.processes import wait_until
    from gateway import postings

    if db.is_sqlite:
        pytest.skip("SQLite queues every writer on Database._writer already")
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("8.00"))
    gate, inside = asyncio.Event(), asyncio.Event()
    save = postings.save_settlement

    async def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not gate.is_set():
            inside.set()
            await gate.wait()
        return await save(*args, **kwargs)

    monkeypatch.setattr(postings, "save_settlement", held)
    key = ("CREDIT_MEMO", encode("CreditMemo", memo))
    applies = [asyncio.create_task(f.settle(db, settings, memo, [(inv, f"1.0{n}")])) for n in range(6)]
    try:
        await wait_until(lambda: inside.is_set() and len(db._lines.get(key, ())) == 6, "six applies in line")
        async with db.engine.connect() as probe:
            in_server = (
                await probe.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE xact_start IS NOT NULL),"
                        " count(*) FILTER (WHERE wait_event_type = 'Lock')"
                        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ).one()
        assert tuple(in_server) == (1, 0)  # one transaction (the held apply's), nobody on a row lock
        assert db.engine.pool.checkedout() == 1  # the waiters hold no connection
        applies[3].cancel()  # a client gone while waiting: it leaves the line, the others go on
        await wait_until(lambda: len(db._lines[key]) == 5, "the cancelled apply leaving the line")
    finally:
        gate.set()
    outcomes = await asyncio.gather(*applies, return_exceptions=True)
    assert isinstance(outcomes.pop(3), asyncio.CancelledError)
    ids = [o.application_id for o in outcomes]  # type: ignore[union-attr]
    assert ids == sorted(ids)  # committed in arrival order
    assert key not in db._lines
    async with db.connect() as conn:
        row = (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == memo))).one()
    assert row.applied_amount == 512  # 1.00 + 1.01 + 1.02 + 1.04 + 1.05: the cancelled 1.03 wrote nothing
    await assert_invariants(db)
