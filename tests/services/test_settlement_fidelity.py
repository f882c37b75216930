"""Every error of a request comes back together (SPEC.md), duplicates included."""

from __future__ import annotations

import pytest

from gateway.config import Settings
from gateway.db import Database
from gateway.settlement import errors as e
from tests import factories as f


def codes(exc: e.Rejected) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((v.code.value, v.field) for v in exc.errors)


async def test_a_duplicated_target_does_not_hide_the_precision_of_its_amounts(
    db: Database, settings: Settings
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    other = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    with pytest.raises(e.Rejected) as caught:
        await f.settle(db, settings, memo, [(inv, "1.00"), (inv, "1.001"), (other, "0.005")])
    assert codes(caught.value) == [
        ("AMOUNT_PRECISION", ("invoices", "1", "amount")),
        ("AMOUNT_PRECISION", ("invoices", "2", "amount")),
        ("DUPLICATE_TARGET", ("invoices", "1")),
    ]
