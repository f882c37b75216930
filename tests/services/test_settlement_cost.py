"""What a single apply costs in SQL, and that the cost does not grow with the memo's history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.settlement import errors as e
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
    assert len(first) == 12
    assert sql.count == len(first)
    assert not any("FROM application" in q for q in sql.statements)  # no scan of the history
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
