"""Deterministic demo data, built through the same services the API uses (no hand-written SQL).

The same ``seed`` and sizes give the same documents, numbers and amounts on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from gateway import store
from gateway.db import Database
from gateway.ids import Ref, encode, ref
from gateway.services import documents as svc
from gateway.settlement.documents import CreditRequest, NewItem
from gateway.settlement.money import EXPONENTS

CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP", "JPY", "KWD"]
BASE_DATE = date(2026, 1, 5)


@dataclass(frozen=True, slots=True)
class SeedSpec:
    accounts: int = 3
    invoices_per_account: int = 4
    items_per_document: int = 5
    seed: int = 7
    credit_memos_per_account: int | None = None  # default: as many as invoices


@dataclass
class SeedReport:
    accounts: int = 0
    invoices: int = 0
    debit_memos: int = 0
    credit_memos: int = 0
    payments: int = 0


def _amount(rng: random.Random, currency: str, low: int, high: int) -> Decimal:
    exp = EXPONENTS[currency]
    major = rng.randint(low, high) * (100 if exp == 0 else 1)
    minor = rng.randint(0, 10**exp - 1) if exp else 0
    return Decimal(major) + Decimal(minor).scaleb(-exp)


def _items(rng: random.Random, currency: str, count: int) -> list[NewItem]:
    """``count`` items in all, TAX included: every other charge carries a tax child."""
    items: list[NewItem] = []
    n = 0
    while n < count:
        taxed = count - n >= 2 and rng.random() < 0.5
        amount = _amount(rng, currency, 5, 500)
        tax = (amount * Decimal("0.08")).quantize(Decimal(1).scaleb(-EXPONENTS[currency])) if taxed else None
        if tax is not None and tax <= 0:
            tax = None
        items.append(
            NewItem(amount=amount, sku=f"SKU-{rng.randint(100, 999)}", description="Service", tax_amount=tax)
        )
        n += 2 if tax is not None else 1
    return items


async def is_empty(db: Database) -> bool:
    async with db.connect() as conn:
        return not (await conn.scalar(select(func.count()).select_from(store.account_t)))


async def seed(db: Database, spec: SeedSpec) -> SeedReport:
    rng = random.Random(spec.seed)
    report = SeedReport()
    memos_per_account = spec.credit_memos_per_account
    if memos_per_account is None:
        memos_per_account = spec.invoices_per_account
    for a in range(spec.accounts):
        currency = CURRENCIES[a % len(CURRENCIES)]
        account_pk = await svc.create_account(db, name=f"Demo customer {a + 1}", currency=currency)
        account = ref(encode("Account", account_pk), "Account")
        report.accounts += 1
        invoice_pks = []
        for i in range(spec.invoices_per_account):
            day = BASE_DATE + timedelta(days=i * 7 + a % 5)
            pk = await svc.create_receivable(
                db,
                kind="INVOICE",
                account=account,
                doc_date=day,
                due_date=day + timedelta(days=30),
                items=_items(rng, currency, spec.items_per_document),
                post=(a + i) % 5 != 4,
            )
            invoice_pks.append((pk, (a + i) % 5 != 4, day))
            report.invoices += 1
        if a % 2 == 0:
            day = BASE_DATE + timedelta(days=3)
            await svc.create_receivable(
                db,
                kind="DEBIT_MEMO",
                account=account,
                doc_date=day,
                due_date=None,
                items=_items(rng, currency, max(1, spec.items_per_document // 2)),
                post=True,
                reason_code="Late fee",
            )
            report.debit_memos += 1
        for m in range(memos_per_account):
            await _credit_memo(db, rng, account, currency, a + m, invoice_pks, spec.items_per_document)
            report.credit_memos += 1
        await svc.create_payment(
            db,
            account=account,
            amount=str(_amount(rng, currency, 50, 900)),
            effective_date=BASE_DATE + timedelta(days=10),
        )
        report.payments += 1
    return report


async def _credit_memo(
    db: Database,
    rng: random.Random,
    account: Ref,
    currency: str,
    m: int,
    invoices: list[tuple[int, bool, date]],
    items_per_document: int,
) -> int:
    day = BASE_DATE + timedelta(days=40 + m)
    posted_invoices = [(pk, d) for pk, posted, d in invoices if posted]
    if m % 3 == 1 and posted_invoices:
        invoice_pk, _ = posted_invoices[m % len(posted_invoices)]
        rows = await _invoice_items(db, invoice_pk)
        requests = []
        for row in rows[:items_per_document]:
            # credit about a third of each named item, at least one minor unit
            amount = max(1, row.amount // 3)
            requests.append(
                CreditRequest(
                    row.id, encode("InvoiceItem", row.id), Decimal(amount).scaleb(-EXPONENTS[currency])
                )
            )
        pk = await svc.create_credit_memo_from_invoice(
            db,
            invoice=ref(encode("Invoice", invoice_pk), "Invoice"),
            memo_date=day,
            items=requests,
            post=True,
            reason_code="Correction",
        )
    else:
        pk = await svc.create_credit_memo(
            db,
            account=account,
            memo_date=day,
            items=_items(rng, currency, items_per_document),
            post=m % 4 != 3,
            reason_code="Goodwill",
            comment=f"Demo memo {m + 1}",
        )
    if m % 6 == 5:  # a canceled one: DRAFT → CANCELED
        memo_ref = ref(encode("CreditMemo", pk), "CreditMemo")
        async with db.connect() as conn:
            status = await conn.scalar(
                select(store.credit_memo_t.c.status).where(store.credit_memo_t.c.id == pk)
            )
        if status == "POSTED":
            await svc.transition_credit_memo(db, ref=memo_ref, action="unpost")
        await svc.transition_credit_memo(db, ref=memo_ref, action="cancel")
    return pk


async def _invoice_items(db: Database, invoice_pk: int) -> list:  # type: ignore[type-arg]
    async with db.connect() as conn:
        return await store.credited_amounts(conn, invoice_pk)
