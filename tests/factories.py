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


async def settle(
    db: Database,
    settings,
    source_pk: int,
    targets: list[tuple[int, str]],
    *,
    unapply: bool = False,  # type: ignore[no-untyped-def]
    rule: str | None = None,
    kind: str = "CREDIT_MEMO",
    debit_memos: list[tuple[int, str]] = (),  # type: ignore[assignment]
    items: dict[int, list[tuple[int, str, int | None]]] | None = None,
    key: str | None = None,
    effective_date: date | None = None,
    everything: bool = False,
):
    """Apply (or unapply) ``source_pk`` to invoices ``[(pk, amount)]`` and debit memos."""
    from gateway.services import settlement as st

    def target(kind_: str, name: str, n: int, pk: int, amount: str) -> st.TargetInput:
        given = None
        if items and pk in items:
            given = tuple(
                st.ItemInput(
                    encode("InvoiceItem" if kind_ == "INVOICE" else "DebitMemoItem", t),
                    a,
                    None if src is None else encode("CreditMemoItem", src),
                )
                for t, a, src in items[pk]
            )
        type_name = "Invoice" if kind_ == "INVOICE" else "DebitMemo"
        return st.TargetInput(kind_, ref(encode(type_name, pk), type_name), amount, given, (name, str(n)))

    wanted = (
        ()
        if everything
        else tuple(
            [target("INVOICE", "invoices", n, pk, a) for n, (pk, a) in enumerate(targets)]
            + [target("DEBIT_MEMO", "debitMemos", n, pk, a) for n, (pk, a) in enumerate(debit_memos)]
        )
    )
    type_name = "CreditMemo" if kind == "CREDIT_MEMO" else "Payment"
    data = st.SettleInput(
        kind, ref(encode(type_name, source_pk), type_name), wanted, effective_date or DAY, rule, key
    )
    return await st.settle(db, settings, data, unapply=unapply)
