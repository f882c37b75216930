"""Connection filters and sorts, translated to ``gateway.reads`` conditions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strawberry.types import Info

from gateway.reads import VALUE, Cond

if TYPE_CHECKING:
    from schema.inputs import CreditMemoFilter, CreditMemoSort, DocumentFilter

SORT_COLUMNS = {
    "NUMBER": "number",
    "MEMO_DATE": "memo_date",
    "AMOUNT": "amount",
    "UNAPPLIED_AMOUNT": "unapplied_amount",
    "CREATED_AT": "created_at",
}
MONEY = {"amount", "unapplied_amount"}
NOTHING: Cond = ("id", "=", -1)  # names no row: a filter on a document that does not exist


def document_where(f: DocumentFilter | None, date_column: str) -> tuple[Cond, ...]:
    if f is None:
        return ()
    where: list[Cond] = []
    if f.status is not None:
        where.append(("status", "=", f.status.value))
    if f.memo_date_from is not None:
        where.append((date_column, ">=", f.memo_date_from))
    if f.memo_date_to is not None:
        where.append((date_column, "<=", f.memo_date_to))
    return tuple(where)


async def credit_memo_where(info: Info, f: CreditMemoFilter | None) -> tuple[Cond, ...]:
    if f is None:
        return ()
    where = list(document_where(f, "memo_date"))  # type: ignore[arg-type]
    if f.account_id is not None:
        where.append(("account_id", "=", await pk_of(info, "Account", f.account_id)))
    if f.referred_invoice_id is not None:
        where.append(("referred_invoice_id", "=", await pk_of(info, "Invoice", f.referred_invoice_id)))
    if f.has_referred_invoice is not None:
        where.append(("referred_invoice_id", "not_null" if f.has_referred_invoice else "is_null", None))
    if f.reversed is not None:
        where.append(("reversed", "=", f.reversed))
    return tuple(where)


def credit_memo_order(sort: CreditMemoSort | None) -> tuple[tuple[str, ...], bool]:
    if sort is None:
        return ("id",), False
    column = SORT_COLUMNS[sort.field.value]
    if column in MONEY:  # by value across currencies, currency as the tie-break (reads.column)
        return (column + VALUE, "currency", "id"), sort.direction.value == "DESC"
    return (column, "id"), sort.direction.value == "DESC"


async def pk_of(info: Info, type_name: str, raw: str) -> int:
    """The primary key a global id or number names; -1 (matches nothing) when none does."""
    from resolvers.lookup import find

    row = await find(info, type_name, raw)
    return -1 if row is None else int(row.id)
