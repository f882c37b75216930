"""Bench data, built through the services."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as svc
from gateway.services import settlement as st
from gateway.settlement.documents import NewItem

DAY = date(2026, 2, 2)


def items(count: int, amount: str = "10.00") -> list[NewItem]:
    """``count`` items, TAX included: pairs of a charge and its tax, then a lone charge if odd."""
    out: list[NewItem] = []
    for _ in range(count // 2):
        out.append(NewItem(amount=Decimal(amount), tax_amount=Decimal("1.00")))
    if count % 2:
        out.append(NewItem(amount=Decimal(amount)))
    return out


async def memos_applied_to_invoices(db: Database, *, memos: int, items: int) -> None:
    """``memos`` posted memos of ``items`` items, each applied in part to its own invoice when the
    settlement service is available."""
    acct_pk = await svc.create_account(db, name="Bench", currency="USD")
    acct = ref(encode("Account", acct_pk), "Account")
    for _ in range(memos):
        inv = await svc.create_receivable(
            db,
            kind="INVOICE",
            account=acct,
            doc_date=DAY,
            due_date=None,
            items=_items(items, "20.00"),
            post=True,
        )
        memo = await svc.create_credit_memo(db, account=acct, memo_date=DAY, items=_items(items), post=True)
        # half of the memo, prorated: every memo item gets item parts on the invoice's items
        half = sum(Decimal(str(x.amount)) + Decimal(str(x.tax_amount or 0)) for x in _items(items)) / 2
        target = st.TargetInput(
            "INVOICE", ref(encode("Invoice", inv), "Invoice"), Decimal(half), None, ("invoices", "0")
        )
        data = st.SettleInput(
            "CREDIT_MEMO", ref(encode("CreditMemo", memo), "CreditMemo"), (target,), DAY, "PRORATION"
        )
        await st.settle(db, db.settings, data, unapply=False)


_items = items
