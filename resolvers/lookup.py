"""Finding a row by global id or by number, checking that it is of the asked type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from strawberry.types import Info

from gateway import ids
from resolvers.relations import ctx


@dataclass(frozen=True, slots=True)
class Kind:
    by_id: str  # loader attribute
    by_number: str | None
    is_a: Callable[[Row[Any]], bool] = lambda r: True


KINDS: dict[str, Kind] = {
    "Account": Kind("accounts_by_id", "accounts_by_number"),
    "Invoice": Kind("receivables_by_id", "receivables_by_number", lambda r: r.kind == "INVOICE"),
    "DebitMemo": Kind("receivables_by_id", "receivables_by_number", lambda r: r.kind == "DEBIT_MEMO"),
    "InvoiceItem": Kind("receivable_items_by_id", None, lambda r: r.doc_kind == "INVOICE"),
    "DebitMemoItem": Kind("receivable_items_by_id", None, lambda r: r.doc_kind == "DEBIT_MEMO"),
    "CreditMemo": Kind("credit_memos_by_id", "credit_memos_by_number"),
    "CreditMemoItem": Kind("credit_memo_items_by_id", None),
    "CreditMemoPart": Kind("parts_by_id", None, lambda r: r.credit_memo_id is not None),
    "PaymentPart": Kind("parts_by_id", None, lambda r: r.payment_id is not None),
    "CreditMemoItemPart": Kind("item_parts_by_id", None, lambda r: r.credit_memo_item_id is not None),
    "PaymentItemPart": Kind("item_parts_by_id", None, lambda r: r.credit_memo_item_id is None),
    "Payment": Kind("payments_by_id", "payments_by_number"),
    "Application": Kind("applications_by_id", None),
    "Job": Kind("jobs_by_id", None),
}


async def find(info: Info, type_name: str, raw: str | None) -> Row[Any] | None:
    """The row of ``type_name`` that ``raw`` (a global id or a number) names, or None."""
    if raw is None:
        return None
    kind = KINDS[type_name]
    loaders = ctx(info).loaders
    decoded = ids.decode(raw)
    if decoded is not None:
        if decoded[0] != type_name:
            return None
        row = await getattr(loaders, kind.by_id).load(decoded[1])
    elif kind.by_number is not None and ids.plausible_number(raw):
        row = await getattr(loaders, kind.by_number).load(raw)
    else:
        return None
    if row is None or not kind.is_a(row):
        return None
    return row if await _owner_visible(info, type_name, row) else None


# Items and parts carry no account: they are visible when their document is (the document loaders
# already answer None outside the caller's scope).
OWNERS: dict[str, tuple[str, str]] = {
    "InvoiceItem": ("receivables_by_id", "receivable_id"),
    "DebitMemoItem": ("receivables_by_id", "receivable_id"),
    "CreditMemoItem": ("credit_memos_by_id", "credit_memo_id"),
    "CreditMemoPart": ("credit_memos_by_id", "credit_memo_id"),
    "PaymentPart": ("payments_by_id", "payment_id"),
    "CreditMemoItemPart": ("parts_by_id", "part_id"),
    "PaymentItemPart": ("parts_by_id", "part_id"),
}


async def _owner_visible(info: Info, type_name: str, row: Row[Any]) -> bool:
    if ctx(info).principal.accounts is None or type_name not in OWNERS:
        return True
    loader, column = OWNERS[type_name]
    owner = await getattr(ctx(info).loaders, loader).load(getattr(row, column))
    if owner is None:
        return False
    if type_name.endswith("ItemPart"):  # a part: visible through its memo or payment
        part_type = "CreditMemoPart" if owner.credit_memo_id is not None else "PaymentPart"
        return await _owner_visible(info, part_type, owner)
    return True


async def find_node(info: Info, raw: str) -> tuple[str, Row[Any]] | None:
    decoded = ids.decode(raw)
    if decoded is None:
        return None
    row = await find(info, decoded[0], raw)
    return None if row is None else (decoded[0], row)
