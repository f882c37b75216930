"""Plain factories: documents through the services, as the API creates them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.db import Database
from gateway.ids import encode, ref
from gateway.services import documents as svc
from gateway.settlement.documents import CreditRequest, NewItem

DAY = date(2026, 3, 2)


def item(amount: str, tax: str | None = None, kind: str = "CHARGE") -> NewItem:
    return NewItem(amount=Decimal(amount), kind=kind, tax_amount=None if tax is None else Decimal(tax))


async def account(db: Database, currency: str = "USD", name: str = "Acme") -> int:
    return await svc.create_account(db, name=name, currency=currency)


async def invoice(db: Database, account_pk: int, *items: NewItem, post: bool = True, day: date = DAY) -> int:
    return await svc.create_receivable(
        db,
        kind="INVOICE",
        account=ref(encode("Account", account_pk), "Account"),
        doc_date=day,
        due_date=None,
        items=list(items or [item("100.00")]),
        post=post,
    )


async def debit_memo(
    db: Database, account_pk: int, *items: NewItem, post: bool = True, day: date = DAY
) -> int:
    return await svc.create_receivable(
        db,
        kind="DEBIT_MEMO",
        account=ref(encode("Account", account_pk), "Account"),
        doc_date=day,
        due_date=None,
        items=list(items or [item("100.00")]),
        post=post,
        date_field="memoDate",
    )


async def credit_memo(
    db: Database, account_pk: int, *items: NewItem, post: bool = True, day: date = DAY
) -> int:
    return await svc.create_credit_memo(
        db,
        account=ref(encode("Account", account_pk), "Account"),
        memo_date=day,
        items=list(items or [item("10.00")]),
        post=post,
    )


async def credit_memo_from_invoice(
    db: Database, invoice_pk: int, lines: list[tuple[int, str]], post: bool = True
) -> int:
    return await svc.create_credit_memo_from_invoice(
        db,
        invoice=ref(encode("Invoice", invoice_pk), "Invoice"),
        memo_date=DAY,
        items=[CreditRequest(pk, encode("InvoiceItem", pk), Decimal(a)) for pk, a in lines],
        post=post,
    )


async def payment(db: Database, account_pk: int, amount: str, day: date = DAY) -> int:
    return await svc.create_payment(
        db, account=ref(encode("Account", account_pk), "Account"), amount=amount, effective_date=day
    )
