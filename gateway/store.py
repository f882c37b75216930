"""Write-side queries: find and lock documents, issue numbers, insert documents and their items.

Every function takes the transaction's connection; the services decide when to commit. Rows are
read with SQLAlchemy Core (``Row`` objects), not ORM instances: cheaper, and nothing is tracked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Row, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import direct, scope
from gateway import tables as t
from gateway.ids import Ref
from gateway.settlement import errors as e
from gateway.settlement.documents import PlannedItem

account_t = t.table_of(t.Account)
receivable_t = t.table_of(t.Receivable)
receivable_item_t = t.table_of(t.ReceivableItem)
credit_memo_t = t.table_of(t.CreditMemo)
credit_memo_item_t = t.table_of(t.CreditMemoItem)
payment_t = t.table_of(t.Payment)
part_t = t.table_of(t.Part)
item_part_t = t.table_of(t.ItemPart)
application_t = t.table_of(t.Application)
application_line_t = t.table_of(t.ApplicationLine)
event_t = t.table_of(t.SettlementEvent)
sequence_t = t.table_of(t.DocumentSequence)
job_t = t.table_of(t.Job)
idempotency_t = t.table_of(t.IdempotencyKey)
file_t = t.table_of(t.CreditMemoFile)
pdf_t = t.table_of(t.CreditMemoPdf)
email_t = t.table_of(t.CreditMemoEmail)

NUMBER_FORMATS = {
    "ACCOUNT": "A{:08d}",
    "INVOICE": "INV{:08d}",
    "DEBIT_MEMO": "DM{:08d}",
    "CREDIT_MEMO": "CM{:08d}",
    "PAYMENT": "P-{:08d}",
}
LABELS = {
    "ACCOUNT": "account",
    "INVOICE": "invoice",
    "DEBIT_MEMO": "debit memo",
    "CREDIT_MEMO": "credit memo",
    "PAYMENT": "payment",
}


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def reserve_numbers(conn: AsyncConnection, kind: str, count: int = 1) -> list[str]:
    """``count`` consecutive numbers of ``kind``. The sequence row stays locked until commit, so a
    rolled-back transaction gives its numbers back: numbers are gap-free."""
    stmt = (
        _insert(conn, sequence_t)
        .values(kind=kind, last_value=count)
        .on_conflict_do_update(
            index_elements=[sequence_t.c.kind],
            set_={"last_value": sequence_t.c.last_value + count},
        )
        .returning(sequence_t.c.last_value)
    )
    last = (await conn.execute(stmt)).scalar_one()
    fmt = NUMBER_FORMATS[kind]
    return [fmt.format(n) for n in range(last - count + 1, last + 1)]


async def find(
    conn: AsyncConnection,
    table: Table,
    ref: Ref,
    label: str,
    *,
    field: Sequence[str] = ("id",),
    kind: str | None = None,
    lock: bool = False,
) -> Row[Any]:
    """The row a reference names (id or number), or NotFound at ``field``."""
    if ref.pk == -1:
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    cond = table.c.id == ref.pk if ref.pk is not None else table.c.number == ref.number
    stmt = select(table).where(cond)
    if kind is not None:
        stmt = stmt.where(table.c.kind == kind)
    if lock:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None or not scope.visible(row.id if table is account_t else row.account_id):
        raise e.Rejected([e.NotFound(label, ref.raw, field=field)])
    return row


async def insert_items(
    conn: AsyncConnection,
    table: Table,
    owner: dict[str, Any],
    items: Sequence[PlannedItem],
    money: dict[str, str],
) -> list[int]:
    """Insert planned items; parents first so that children can point at them. Ids in seq order.

    ``money`` maps each amount column of ``table`` to the planned field it starts from
    ("amount"), or to "0".
    """
    ids: dict[int, int] = {}
    for wave in (
        [i for i in items if i.parent_seq is None],
        [i for i in items if i.parent_seq is not None],
    ):
        if not wave:
            continue
        rows = [
            {
                **owner,
                "seq": i.seq,
                "kind": i.kind,
                "parent_item_id": ids[i.parent_seq] if i.parent_seq is not None else None,
                "sku": i.sku,
                "description": i.description,
                **({"source_item_id": i.source_item_id} if "source_item_id" in table.c else {}),
                **{col: (i.amount if src == "amount" else 0) for col, src in money.items()},
            }
            for i in wave
        ]
        result = await conn.execute(table.insert().returning(table.c.id, table.c.seq), rows)
        ids.update({seq: pk for pk, seq in result.all()})
    return [ids[i.seq] for i in items]


async def insert_receivable(
    conn: AsyncConnection,
    *,
    kind: str,
    account_id: int,
    currency: str,
    doc_date: date,
    items: Sequence[PlannedItem],
    post: bool,
    due_date: date | None = None,
    reason_code: str | None = None,
    comment: str | None = None,
    referred_credit_memo_id: int | None = None,
) -> tuple[int, list[int]]:
    """An invoice or a debit memo with its items (every one is created here, whoever asks: the API,
    a reversal, a write-off). Returns its id and its item ids in seq order."""
    total = sum(i.amount for i in items)
    (number,) = await reserve_numbers(conn, kind)
    now = datetime.now(UTC)
    pk = await insert_row(
        conn,
        receivable_t,
        kind=kind,
        number=number,
        account_id=account_id,
        status="POSTED" if post else "DRAFT",
        currency=currency,
        doc_date=doc_date,
        due_date=due_date,
        amount=total,
        balance=total,
        item_count=len(items),
        reason_code=reason_code,
        comment=comment,
        referred_credit_memo_id=referred_credit_memo_id,
        created_at=now,
        posted_at=now if post else None,
    )
    item_ids = await insert_items(
        conn,
        receivable_item_t,
        {"receivable_id": pk, "doc_kind": kind, "currency": currency},
        items,
        {"amount": "amount", "balance": "amount"},
    )
    return pk, item_ids


async def insert_row(conn: AsyncConnection, table: Table, **values: Any) -> int:
    return (await conn.execute(insert_returning_id(table), values)).scalar_one()


async def insert_returning_row(conn: AsyncConnection, table: Table, **values: Any) -> Row[Any]:
    """Inserts and returns the whole row as written (defaults and id included)."""
    return (await direct.execute(conn, _insert_returning_row(table), values)).one()


@functools.cache
def _insert_returning_row(table: Table) -> Any:
    return table.insert().returning(*table.c)


@functools.cache
def insert_returning_id(table: Table) -> Any:
    """Built once per table (the values are bound per call)."""
    return table.insert().returning(table.c.id)


async def set_values(conn: AsyncConnection, table: Table, pk: int, **values: Any) -> None:
    await conn.execute(update(table).where(table.c.id == pk).values(**values))


async def add_event(
    conn: AsyncConnection,
    kind: str,
    *,
    account_id: int,
    occurred_at: datetime,
    credit_memo_id: int | None = None,
    payment_id: int | None = None,
    application_id: int | None = None,
    created_by: str | None = None,
) -> int:
    return await insert_row(
        conn,
        event_t,
        kind=kind,
        account_id=account_id,
        credit_memo_id=credit_memo_id,
        payment_id=payment_id,
        application_id=application_id,
        created_by=created_by,
        occurred_at=occurred_at,
    )


async def credited_amounts(conn: AsyncConnection, invoice_id: int) -> list[Row[Any]]:
    return list(
        (
            await conn.execute(
                select(receivable_item_t)
                .where(receivable_item_t.c.receivable_id == invoice_id)
                .order_by(receivable_item_t.c.seq)
            )
        ).all()
    )


async def release_credited(conn: AsyncConnection, memo_id: int) -> None:
    """A canceled memo credits nothing any more: give its amounts back to the invoice items."""
    rows = (
        await conn.execute(
            select(credit_memo_item_t.c.source_item_id, func.sum(credit_memo_item_t.c.amount))
            .where(
                credit_memo_item_t.c.credit_memo_id == memo_id,
                credit_memo_item_t.c.source_item_id.is_not(None),
            )
            .group_by(credit_memo_item_t.c.source_item_id)
        )
    ).all()
    for source_item_id, amount in rows:
        await conn.execute(
            update(receivable_item_t)
            .where(receivable_item_t.c.id == source_item_id)
            .values(credited_amount=receivable_item_t.c.credited_amount - amount)
        )


async def delete_credit_memo(conn: AsyncConnection, memo_id: int) -> list[str]:
    """Delete the memo and what hangs on it; the file store keys of its files, to remove once
    the deletion is committed."""
    keys = list(
        (await conn.execute(select(file_t.c.storage_key).where(file_t.c.credit_memo_id == memo_id))).scalars()
    )
    documents_jobs = select(job_t.c.id).where(
        job_t.c.credit_memo_id == memo_id,
        job_t.c.operation.in_(("GENERATE_CREDIT_MEMO_PDFS", "EMAIL_CREDIT_MEMO")),
    )
    await conn.execute(pdf_t.delete().where(pdf_t.c.credit_memo_id == memo_id))
    # a PDF job of several memos goes with its first memo; the other memos' PDFs stay, jobless
    await conn.execute(update(pdf_t).where(pdf_t.c.job_id.in_(documents_jobs)).values(job_id=None))
    await conn.execute(email_t.delete().where(email_t.c.credit_memo_id == memo_id))
    await conn.execute(file_t.delete().where(file_t.c.credit_memo_id == memo_id))
    await conn.execute(job_t.delete().where(job_t.c.id.in_(documents_jobs)))
    await conn.execute(
        item_part_t.delete().where(
            item_part_t.c.part_id.in_(select(part_t.c.id).where(part_t.c.credit_memo_id == memo_id))
        )
    )
    await conn.execute(part_t.delete().where(part_t.c.credit_memo_id == memo_id))
    # Events are history a subscriber may still replay: keep them, without the memo.
    await conn.execute(update(event_t).where(event_t.c.credit_memo_id == memo_id).values(credit_memo_id=None))
    # children before parents: the parent foreign key is checked row by row on SQLite
    await conn.execute(
        credit_memo_item_t.delete().where(
            credit_memo_item_t.c.credit_memo_id == memo_id, credit_memo_item_t.c.parent_item_id.is_not(None)
        )
    )
    await conn.execute(credit_memo_item_t.delete().where(credit_memo_item_t.c.credit_memo_id == memo_id))
    await conn.execute(credit_memo_t.delete().where(credit_memo_t.c.id == memo_id))
    return keys


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


# ---------------------------------------------------------------- memo edits


async def memo_items(conn: AsyncConnection, memo_id: int) -> list[Row[Any]]:
    stmt = (
        select(credit_memo_item_t)
        .where(credit_memo_item_t.c.credit_memo_id == memo_id)
        .order_by(credit_memo_item_t.c.seq)
    )
    return list((await conn.execute(stmt)).all())


async def refresh_draft_totals(conn: AsyncConnection, memo_id: int) -> None:
    """A DRAFT memo's totals from its items: nothing is applied or refunded yet, so everything
    is unapplied, and its one part (the unapplied part) holds the whole amount."""
    i = credit_memo_item_t
    total, tax, count = (
        await conn.execute(
            select(
                func.coalesce(func.sum(i.c.amount), 0),
                func.coalesce(func.sum(i.c.amount).filter(i.c.kind == "TAX"), 0),
                func.count(),
            ).where(i.c.credit_memo_id == memo_id)
        )
    ).one()
    await conn.execute(
        update(credit_memo_t)
        .where(credit_memo_t.c.id == memo_id)
        .values(amount=total, tax_amount=tax, unapplied_amount=total, item_count=count)
    )
    await conn.execute(
        update(part_t)
        .where(part_t.c.credit_memo_id == memo_id, part_t.c.target_id.is_(None))
        .values(amount=total)
    )


async def resequence(conn: AsyncConnection, memo_id: int, order: Sequence[int]) -> None:
    """Give the memo's items the FIFO positions of ``order`` (item ids). Every seq goes negative
    first (rows just inserted have a negative one already), so that no step of the renumbering
    collides with the (memo, seq) unique key."""
    i = credit_memo_item_t
    await conn.execute(update(i).where(i.c.credit_memo_id == memo_id, i.c.seq >= 0).values(seq=-i.c.seq - 1))
    await conn.execute(
        update(i).where(i.c.id == bindparam("item_id")).values(seq=bindparam("new_seq")),
        [{"item_id": pk, "new_seq": n} for n, pk in enumerate(order)],
    )


async def lock_row(conn: AsyncConnection, table: Table, pk: int) -> Row[Any]:
    return (await conn.execute(select(table).where(table.c.id == pk).with_for_update())).one()


async def set_pdf_state(conn: AsyncConnection, memo_id: int, **values: Any) -> None:
    """Insert or update the PDF state row of a memo."""
    stmt = (
        _insert(conn, pdf_t)
        .values(credit_memo_id=memo_id, **values)
        .on_conflict_do_update(index_elements=[pdf_t.c.credit_memo_id], set_=values)
    )
    await conn.execute(stmt)


async def insert_job(
    conn: AsyncConnection, *, operation: str, memo: Row[Any], request: str, total: int, created_by: str | None
) -> int:
    return await insert_row(
        conn,
        job_t,
        operation=operation,
        status="PENDING",
        account_id=memo.account_id,
        credit_memo_id=memo.id,
        request=request,
        total_items=total,
        processed_items=0,
        created_by=created_by,
        created_at=datetime.now(UTC),
    )
