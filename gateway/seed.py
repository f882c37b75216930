"""Deterministic demo data, built through the same services the API uses (no hand-written SQL).

The same ``seed`` and sizes give the same documents, numbers and amounts on every run.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store
from gateway.config import Settings
from gateway.db import Database
from gateway.events import EVENTS, LocalBus
from gateway.ids import Ref, encode, ref
from gateway.services import documents as svc
from gateway.services import settlement as st
from gateway.settlement.documents import CreditRequest, NewItem
from gateway.settlement.money import EXPONENTS, from_minor

CURRENCIES = ["USD", "USD", "USD", "EUR", "GBP", "JPY", "KWD"]
BASE_DATE = date(2026, 1, 5)
LATE = date(2026, 4, 1)  # settlement happens after every seeded document's date


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
    applications: int = 0
    reversed: int = 0
    written_off: int = 0


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


class _OneTransaction(Database):
    """The services' transactions become savepoints of one outer transaction."""

    def __init__(self, db: Database, conn: AsyncConnection) -> None:
        self.settings, self.engine, self.is_sqlite = db.settings, db.engine, db.is_sqlite
        self.bus, self.availability = LocalBus(), db.availability  # nobody listens before the commit
        self.write_engine, self._writer = db.write_engine, None  # the outer transaction is the writer
        self._lines = {}  # the seed's moves run one after another: their lines are always empty
        self._conn = conn

    @asynccontextmanager
    async def connect(self, *, write: bool = False, ping: bool = True) -> AsyncIterator[AsyncConnection]:
        async with self._conn.begin_nested():
            yield self._conn

    def _write_transaction(self, *, ping: bool) -> Any:
        """Every write too (no kept or begun connection of its own)."""
        return self.connect(write=True, ping=ping)


async def seed_atomically(db: Database, spec: SeedSpec, settings: Settings | None = None) -> SeedReport:
    """``seed`` in one transaction: all of it, or (on any failure) nothing."""
    async with db.connect(write=True) as conn:
        report = await seed(_OneTransaction(db, conn), spec, settings)
    await db.bus.publish(EVENTS, {})
    return report


async def seed(db: Database, spec: SeedSpec, settings: Settings | None = None) -> SeedReport:
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
        payment_pk = await svc.create_payment(
            db,
            account=account,
            amount=str(_amount(rng, currency, 50, 900)),
            effective_date=BASE_DATE + timedelta(days=10),
        )
        report.payments += 1
        await _settle_some(db, settings or Settings(), account_pk, payment_pk, report)
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


async def _invoice_items(db: Database, invoice_pk: int) -> list:
    async with db.connect() as conn:
        return await store.credited_amounts(conn, invoice_pk)


async def _settle_some(
    db: Database, settings: Settings, account_pk: int, payment_pk: int, report: SeedReport
) -> None:
    """Apply, partly apply, unapply, reverse and write off some of the account's posted memos, and
    apply the payment in part, so that the graph has parts, item parts and history to show."""
    m, r = store.credit_memo_t, store.receivable_t
    async with db.connect() as conn:
        memos = (
            await conn.execute(
                select(m.c.id, m.c.unapplied_amount)
                .where(m.c.account_id == account_pk, m.c.status == "POSTED")
                .order_by(m.c.id)
            )
        ).all()
        invoices = (
            await conn.execute(
                select(r.c.id, r.c.balance, r.c.currency)
                .where(r.c.account_id == account_pk, r.c.status == "POSTED", r.c.kind == "INVOICE")
                .order_by(r.c.id)
            )
        ).all()
        paid = await conn.scalar(select(store.payment_t.c.amount).where(store.payment_t.c.id == payment_pk))
    if not invoices:
        return
    currency = invoices[0].currency
    balance = {i.id: i.balance for i in invoices}
    for n, memo in enumerate(memos):
        memo_ref = ref(encode("CreditMemo", memo.id), "CreditMemo")
        action = (n + account_pk) % 5
        if action == 3:
            await st.reverse_or_write_off(
                db, settings, memo=memo_ref, write_off=False, memo_date=LATE, apply_date=LATE
            )
            report.reversed += 1
            continue
        if action == 4:
            await st.reverse_or_write_off(db, settings, memo=memo_ref, write_off=True, memo_date=LATE)
            report.written_off += 1
            continue
        target = max(balance, key=lambda pk: balance[pk])
        amount = min(memo.unapplied_amount if action == 0 else memo.unapplied_amount // 2, balance[target])
        if amount <= 0:
            continue
        rule = ("FIFO", "PRORATION", "PRORATION")[action]
        await _apply(db, settings, "CREDIT_MEMO", memo.id, target, amount, currency, rule, unapply=False)
        balance[target] -= amount
        report.applications += 1
        if action == 2:  # give a third back
            back = max(1, amount // 3)
            await _apply(db, settings, "CREDIT_MEMO", memo.id, target, back, currency, rule, unapply=True)
            balance[target] += back
            report.applications += 1
    target = max(balance, key=lambda pk: balance[pk])
    amount = min(int(paid or 0) // 2, balance[target])
    if amount > 0:
        await _apply(db, settings, "PAYMENT", payment_pk, target, amount, currency, None, unapply=False)
        report.applications += 1


async def _apply(
    db: Database,
    settings: Settings,
    kind: str,
    source_pk: int,
    target_pk: int,
    amount: int,
    currency: str,
    rule: str | None,
    *,
    unapply: bool,
) -> None:
    type_name = "CreditMemo" if kind == "CREDIT_MEMO" else "Payment"
    target = st.TargetInput(
        "INVOICE",
        ref(encode("Invoice", target_pk), "Invoice"),
        from_minor(amount, currency),
        None,
        ("invoices", "0"),
    )
    data = st.SettleInput(kind, ref(encode(type_name, source_pk), type_name), (target,), LATE, rule)
    await st.settle(db, settings, data, unapply=unapply)
