"""Document services on a real database: creation, numbering, lifecycle, crediting an invoice."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from gateway import store as s
from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as svc
from gateway.settlement import errors as e
from tests import factories as f


async def rows(db: Database, table, **where):  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        stmt = select(table).order_by(table.c.id)
        for k, v in where.items():
            stmt = stmt.where(table.c[k] == v)
        return list((await conn.execute(stmt)).all())


def codes(exc: e.Rejected) -> list[tuple[str, tuple[str, ...]]]:
    return [(v.code.value, v.field) for v in exc.errors]


async def test_invoice_amount_is_the_sum_of_its_items_tax_included(db: Database) -> None:
    acct = await f.account(db)
    pk = await f.invoice(db, acct, f.item("100.00", tax="8.25"), f.item("50.10"))
    (inv,) = await rows(db, s.receivable_t, id=pk)
    assert (inv.number, inv.amount, inv.balance, inv.status, inv.item_count) == (
        "INV00000001",
        15835,
        15835,
        "POSTED",
        3,
    )
    items = await rows(db, s.receivable_item_t, receivable_id=pk)
    by_seq = sorted(items, key=lambda r: r.seq)
    assert [(r.kind, r.amount) for r in by_seq] == [("CHARGE", 10000), ("TAX", 825), ("CHARGE", 5010)]
    assert by_seq[1].parent_item_id == by_seq[0].id


async def test_numbers_are_gap_free_per_kind_under_concurrent_creation(db: Database) -> None:
    acct = await f.account(db)
    await asyncio.gather(
        *(f.credit_memo(db, acct) for _ in range(20)), *(f.invoice(db, acct) for _ in range(5))
    )
    memos = sorted(r.number for r in await rows(db, s.credit_memo_t))
    invoices = sorted(r.number for r in await rows(db, s.receivable_t))
    assert memos == [f"CM{n:08d}" for n in range(1, 21)]
    assert invoices == [f"INV{n:08d}" for n in range(1, 6)]


async def test_a_refused_creation_gives_its_number_back(db: Database) -> None:
    acct = await f.account(db)
    with pytest.raises(e.Rejected):
        await f.credit_memo(db, acct, f.item("1.001"))
    pk = await f.credit_memo(db, acct)
    (memo,) = await rows(db, s.credit_memo_t, id=pk)
    assert memo.number == "CM00000001"


async def test_bad_items_are_all_reported_and_nothing_is_written(db: Database) -> None:
    acct = await f.account(db)
    with pytest.raises(e.Rejected) as caught:
        await f.invoice(db, acct, f.item("1.001"), f.item("0"), f.item("5.00", tax="-1"))
    assert codes(caught.value) == [
        ("AMOUNT_PRECISION", ("items", "0", "amount")),
        ("AMOUNT_NOT_POSITIVE", ("items", "1", "amount")),
        ("AMOUNT_NOT_POSITIVE", ("items", "2", "taxAmount")),
    ]
    assert await rows(db, s.receivable_t) == []
    assert await rows(db, s.receivable_item_t) == []


async def test_an_empty_item_list_is_refused(db: Database) -> None:
    acct = await f.account(db)
    with pytest.raises(e.Rejected) as caught:
        await svc.create_credit_memo(
            db, account=ref(encode("Account", acct), "Account"), memo_date=None, items=[], post=False
        )
    assert codes(caught.value) == [("NO_ITEMS", ("items",))]


async def test_jpy_and_kwd_amounts_are_stored_in_their_minor_units(db: Database) -> None:
    jpy = await f.account(db, "JPY")
    kwd = await f.account(db, "KWD")
    with pytest.raises(e.Rejected) as caught:
        await f.invoice(db, jpy, f.item("100.5"))
    assert codes(caught.value) == [("AMOUNT_PRECISION", ("items", "0", "amount"))]
    a = await f.invoice(db, jpy, f.item("1000"))
    b = await f.invoice(db, kwd, f.item("1.500"))
    assert [r.amount for r in await rows(db, s.receivable_t)] == [1000, 1500]
    assert (a, b) == (1, 2)


async def test_unknown_account_is_not_found_at_its_field(db: Database) -> None:
    with pytest.raises(e.Rejected) as caught:
        await svc.create_payment(db, account=ref("A99999999", "Account"), amount="1.00", effective_date=None)
    assert codes(caught.value) == [("NOT_FOUND", ("accountId",))]


async def test_account_numbers_are_unique(db: Database) -> None:
    await svc.create_account(db, name="One", currency="USD", number="ACME-1")
    with pytest.raises(e.Rejected) as caught:
        await svc.create_account(db, name="Two", currency="USD", number="ACME-1")
    assert codes(caught.value) == [("DUPLICATE_NUMBER", ("number",))]


async def test_lifecycle_draft_posted_draft_canceled_deleted(db: Database) -> None:
    acct = await f.account(db)
    pk = await f.credit_memo(db, acct, post=False)
    memo = ref(encode("CreditMemo", pk), "CreditMemo")
    await svc.transition_credit_memo(db, ref=memo, action="post")
    with pytest.raises(e.Rejected) as caught:
        await svc.transition_credit_memo(db, ref=memo, action="cancel")
    assert codes(caught.value) == [("INVALID_STATUS", ("id",))]
    with pytest.raises(e.Rejected) as caught:
        await svc.delete_credit_memo(db, ref=memo)
    assert codes(caught.value) == [("INVALID_STATUS", ("id",))]
    await svc.transition_credit_memo(db, ref=memo, action="unpost")
    await svc.transition_credit_memo(db, ref=memo, action="cancel")
    await svc.delete_credit_memo(db, ref=memo)
    assert await rows(db, s.credit_memo_t) == []
    assert await rows(db, s.credit_memo_item_t) == []
    assert await rows(db, s.part_t) == []
    events = [r.kind for r in await rows(db, s.event_t)]
    assert events == ["POSTED", "UNPOSTED", "CANCELED"]


async def test_unpost_is_refused_once_the_memo_is_refunded(db: Database) -> None:
    acct = await f.account(db)
    pk = await f.credit_memo(db, acct)
    async with db.connect(write=True) as conn:  # as a refund would leave it
        await s.set_values(conn, s.credit_memo_t, pk, refund_amount=100, unapplied_amount=900)
    with pytest.raises(e.Rejected) as caught:
        await svc.transition_credit_memo(db, ref=ref(encode("CreditMemo", pk), "CreditMemo"), action="unpost")
    assert codes(caught.value) == [("HAS_APPLICATIONS", ("id",))]


async def test_memo_lookup_accepts_the_number(db: Database) -> None:
    acct = await f.account(db)
    await f.credit_memo(db, acct, post=False)
    await svc.transition_credit_memo(db, ref=ref("CM00000001", "CreditMemo"), action="post")
    (memo,) = await rows(db, s.credit_memo_t)
    assert memo.status == "POSTED"


async def test_credit_from_invoice_is_capped_by_what_is_still_creditable(db: Database) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00", tax="10.00"))
    charge, tax = (r.id for r in sorted(await rows(db, s.receivable_item_t), key=lambda r: r.seq))
    await f.credit_memo_from_invoice(db, inv, [(charge, "60.00"), (tax, "6.00")])
    with pytest.raises(e.Rejected) as caught:
        await f.credit_memo_from_invoice(db, inv, [(charge, "40.01")])
    assert codes(caught.value) == [("ITEM_EXCEEDS_CREDITABLE", ("items", "0", "amount"))]
    with pytest.raises(e.Rejected) as caught:
        await f.credit_memo_from_invoice(db, inv, [(tax, "1.00")])
    assert codes(caught.value) == [("INVALID_VALUE", ("items", "0", "invoiceItemId"))]
    pk = await f.credit_memo_from_invoice(db, inv, [(charge, "40.00")], post=False)
    (memo,) = await rows(db, s.credit_memo_t, id=pk)
    assert (memo.source, memo.referred_invoice_id, memo.amount) == ("FROM_INVOICE", inv, 4000)
    # canceling gives the amount back to the invoice item
    await svc.transition_credit_memo(db, ref=ref(encode("CreditMemo", pk), "CreditMemo"), action="cancel")
    await f.credit_memo_from_invoice(db, inv, [(charge, "40.00")])


async def test_concurrent_credits_never_exceed_the_invoice_item(db: Database) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    (charge,) = (r.id for r in await rows(db, s.receivable_item_t))
    results = await asyncio.gather(
        *(f.credit_memo_from_invoice(db, inv, [(charge, "1.00")]) for _ in range(15)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 10
    assert all(isinstance(r, e.Rejected) for r in results if not isinstance(r, int))
    async with db.connect() as conn:
        credited = await conn.scalar(select(func.sum(s.credit_memo_item_t.c.amount)))
    assert credited == 1000


async def test_payment_starts_fully_unapplied_with_its_unapplied_part(db: Database) -> None:
    acct = await f.account(db, "JPY")
    pk = await f.payment(db, acct, "5000")
    (pay,) = await rows(db, s.payment_t, id=pk)
    assert (pay.number, pay.amount, pay.unapplied_amount) == ("P-00000001", 5000, 5000)
    (part,) = await rows(db, s.part_t, payment_id=pk)
    assert (part.target_id, part.amount) == (None, 5000)
