"""Creating documents and moving them through DRAFT → POSTED → (DRAFT) / CANCELED → deleted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import scope
from gateway import store as s
from gateway.db import Database
from gateway.files import file_store
from gateway.ids import Ref
from gateway.settlement import documents as rules
from gateway.settlement import errors as e
from gateway.settlement.documents import CreditableItem, CreditRequest, NewItem, PlannedItem
from gateway.settlement.money import exponent, positive_minor

# A document created through the API may have this many items (TAX included); far above the
# per-request settlement limits, which have remedies for large documents.
MAX_ITEMS_PER_DOCUMENT = 10_000


def today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: recorded on events and applications."""

    name: str | None = None


SYSTEM = Actor("system")


async def create_account(
    db: Database, *, name: str, currency: str, number: str | None = None, bill_to_email: str | None = None
) -> int:
    if scope.ACCOUNTS.get() is not None:
        raise e.Rejected([e.PermissionDenied("a token limited to some accounts cannot create accounts")])
    problems: list[e.RuleViolation] = []
    currency = currency.strip().upper() if currency else currency
    try:
        exponent(currency)
    except e.RuleViolation as violation:
        problems.append(violation)
    if not name or not name.strip():
        problems.append(e.InvalidValue("an account needs a name", field=("name",)))
    if number is not None and not number.strip():
        problems.append(e.InvalidValue("an account number may not be blank", field=("number",)))
    if bill_to_email is not None and not rules.is_email_address(bill_to_email):
        problems.append(e.InvalidValue(f"{bill_to_email!r} is not an email address", field=("billToEmail",)))
    if problems:
        raise e.Rejected(problems)

    async def run(conn: AsyncConnection) -> int:
        chosen = number.strip() if number else (await s.reserve_numbers(conn, "ACCOUNT"))[0]
        taken = e.Rejected([e.DuplicateNumber(f"account {chosen} exists already", field=("number",))])
        if await conn.scalar(select(s.account_t.c.id).where(s.account_t.c.number == chosen)):
            raise taken
        try:
            async with conn.begin_nested():
                return await s.insert_row(
                    conn,
                    s.account_t,
                    number=chosen,
                    name=name.strip(),
                    currency=currency,
                    bill_to_email=bill_to_email,
                    created_at=datetime.now(UTC),
                )
        except IntegrityError:  # a concurrent request took the number after our check
            raise taken from None

    return await db.write(run)


async def create_receivable(
    db: Database,
    *,
    kind: str,
    account: Ref,
    doc_date: date | None,
    due_date: date | None,
    items: Sequence[NewItem],
    post: bool,
    reason_code: str | None = None,
    date_field: str = "invoiceDate",
) -> int:
    """An invoice or a debit memo (``kind``), DRAFT or POSTED."""
    doc_date = doc_date or today()
    rules.check_dates(doc_date, due_date)

    async def run(conn: AsyncConnection) -> int:
        acct = await s.find(conn, s.account_t, account, "account", field=("accountId",))
        planned = rules.plan_items(items, acct.currency, max_items=MAX_ITEMS_PER_DOCUMENT)
        pk, _ = await s.insert_receivable(
            conn,
            kind=kind,
            account_id=acct.id,
            currency=acct.currency,
            doc_date=doc_date,
            due_date=due_date,
            items=planned,
            post=post,
            reason_code=reason_code,
        )
        return pk

    return await db.write(run)


async def create_credit_memo(
    db: Database,
    *,
    account: Ref,
    memo_date: date | None,
    items: Sequence[NewItem],
    post: bool,
    reason_code: str | None = None,
    comment: str | None = None,
    actor: Actor = SYSTEM,
) -> int:
    async def run(conn: AsyncConnection) -> int:
        acct = await s.find(conn, s.account_t, account, "account", field=("accountId",))
        planned = rules.plan_items(items, acct.currency, max_items=MAX_ITEMS_PER_DOCUMENT)
        return await _insert_memo(
            conn,
            account_id=acct.id,
            currency=acct.currency,
            memo_date=memo_date or today(),
            planned=planned,
            post=post,
            source="API",
            reason_code=reason_code,
            comment=comment,
            referred_invoice_id=None,
            actor=actor,
        )

    return await db.write(run)


async def create_credit_memo_from_invoice(
    db: Database,
    *,
    invoice: Ref,
    memo_date: date | None,
    items: Sequence[CreditRequest],
    post: bool,
    reason_code: str | None = None,
    actor: Actor = SYSTEM,
) -> int:
    async def run(conn: AsyncConnection) -> int:
        # Locking the invoice serializes creditors of the same invoice: the creditable amounts
        # read below cannot change before this transaction commits.
        inv = await s.find(
            conn, s.receivable_t, invoice, "invoice", field=("invoiceId",), kind="INVOICE", lock=True
        )
        if inv.status != "POSTED":
            raise e.Rejected(
                [e.InvalidStatus(f"invoice {inv.number} is {inv.status}, not POSTED", field=("invoiceId",))]
            )
        rows = await s.credited_amounts(conn, inv.id)
        creditable = {
            r.id: CreditableItem(
                r.id, r.seq, r.kind, r.parent_item_id, r.sku, r.description, r.amount - r.credited_amount
            )
            for r in rows
        }
        planned = rules.plan_credit_from_invoice(creditable, items, inv.currency)
        for p in planned:
            await conn.execute(
                update(s.receivable_item_t)
                .where(s.receivable_item_t.c.id == p.source_item_id)
                .values(credited_amount=s.receivable_item_t.c.credited_amount + p.amount)
            )
        return await _insert_memo(
            conn,
            account_id=inv.account_id,
            currency=inv.currency,
            memo_date=memo_date or today(),
            planned=planned,
            post=post,
            source="FROM_INVOICE",
            reason_code=reason_code,
            comment=None,
            referred_invoice_id=inv.id,
            actor=actor,
        )

    return await db.write(run)


async def _insert_memo(
    conn: AsyncConnection,
    *,
    account_id: int,
    currency: str,
    memo_date: date,
    planned: Sequence[PlannedItem],
    post: bool,
    source: str,
    reason_code: str | None,
    comment: str | None,
    referred_invoice_id: int | None,
    actor: Actor,
) -> int:
    total = sum(i.amount for i in planned)
    (number,) = await s.reserve_numbers(conn, "CREDIT_MEMO")
    now = datetime.now(UTC)
    pk = await s.insert_row(
        conn,
        s.credit_memo_t,
        number=number,
        account_id=account_id,
        status="POSTED" if post else "DRAFT",
        currency=currency,
        memo_date=memo_date,
        source=source,
        amount=total,
        tax_amount=sum(i.amount for i in planned if i.kind == "TAX"),
        unapplied_amount=total,
        item_count=len(planned),
        reason_code=reason_code,
        comment=comment,
        referred_invoice_id=referred_invoice_id,
        created_at=now,
        posted_at=now if post else None,
    )
    await s.insert_items(
        conn,
        s.credit_memo_item_t,
        {"credit_memo_id": pk, "currency": currency},
        planned,
        {"amount": "amount", "unapplied_amount": "amount"},
    )
    await s.insert_row(conn, s.part_t, credit_memo_id=pk, currency=currency, amount=total, created_at=now)
    if post:
        await s.add_event(
            conn, "POSTED", account_id=account_id, credit_memo_id=pk, occurred_at=now, created_by=actor.name
        )
    return pk


async def create_payment(db: Database, *, account: Ref, amount: str, effective_date: date | None) -> int:
    async def run(conn: AsyncConnection) -> int:
        acct = await s.find(conn, s.account_t, account, "account", field=("accountId",))
        minor = positive_minor(amount, acct.currency, field=("amount",))
        (number,) = await s.reserve_numbers(conn, "PAYMENT")
        now = datetime.now(UTC)
        pk = await s.insert_row(
            conn,
            s.payment_t,
            number=number,
            account_id=acct.id,
            status="POSTED",
            currency=acct.currency,
            effective_date=effective_date or today(),
            amount=minor,
            unapplied_amount=minor,
            created_at=now,
        )
        await s.insert_row(
            conn, s.part_t, payment_id=pk, currency=acct.currency, amount=minor, created_at=now
        )
        return pk

    return await db.write(run)


# ---------------------------------------------------------------- lifecycle


async def post_receivable(db: Database, *, kind: str, ref: Ref) -> int:
    async def run(conn: AsyncConnection) -> int:
        doc = await s.find(conn, s.receivable_t, ref, s.LABELS[kind], kind=kind, lock=True)
        rules.check_post(s.LABELS[kind], doc.number, doc.status)
        await s.set_values(conn, s.receivable_t, doc.id, status="POSTED", posted_at=datetime.now(UTC))
        return int(doc.id)

    return await db.write(run)


async def transition_credit_memo(db: Database, *, ref: Ref, action: str, actor: Actor = SYSTEM) -> int:
    """post, unpost or cancel a credit memo; writes the matching settlement event."""

    async def run(conn: AsyncConnection) -> int:
        memo = await s.find(conn, s.credit_memo_t, ref, "credit memo", lock=True)
        now = datetime.now(UTC)
        if action == "post":
            rules.check_post("credit memo", memo.number, memo.status)
            values, event = {"status": "POSTED", "posted_at": now}, "POSTED"
        elif action == "unpost":
            rules.check_unpost_credit_memo(
                memo.number,
                memo.status,
                applied=memo.applied_amount,
                refunded=memo.refund_amount,
                reversed=memo.reversed,
            )
            values, event = {"status": "DRAFT", "posted_at": None}, "UNPOSTED"
        else:
            rules.check_cancel(memo.number, memo.status)
            await s.release_credited(conn, memo.id)
            values, event = {"status": "CANCELED"}, "CANCELED"
        await s.set_values(conn, s.credit_memo_t, memo.id, **values)
        await s.add_event(
            conn,
            event,
            account_id=memo.account_id,
            credit_memo_id=memo.id,
            occurred_at=now,
            created_by=actor.name,
        )
        return int(memo.id)

    return await db.write(run)


async def delete_credit_memo(db: Database, *, ref: Ref) -> int:
    keys: list[str] = []

    async def run(conn: AsyncConnection) -> int:
        memo = await s.find(conn, s.credit_memo_t, ref, "credit memo", lock=True)
        rules.check_delete(memo.number, memo.status)
        keys[:] = await s.delete_credit_memo(conn, memo.id)
        return int(memo.id)

    pk = await db.write(run)
    files = file_store(db.settings)
    for key in keys:  # after the commit: a rolled-back deletion keeps its files
        await files.delete(key)
    return pk
