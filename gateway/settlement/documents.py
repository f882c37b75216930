"""Rules for creating documents and moving them through their lifecycle.

Item inputs become planned items in FIFO order: an input with a ``tax_amount`` yields its charge and,
right after it, its TAX child. A DISCOUNT or TAX input without a tax amount belongs to the nearest
CHARGE before it **(ours)**; every item amount is positive **(ours: a discount is a positive line of
its own, so that 0 ≤ balance ≤ amount holds for every item)**.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from gateway.settlement import errors as e
from gateway.settlement.money import MAX_MINOR, positive_minor

KINDS = ("CHARGE", "DISCOUNT", "TAX")


@dataclass(frozen=True, slots=True)
class NewItem:
    amount: Decimal | str
    kind: str = "CHARGE"
    sku: str | None = None
    description: str | None = None
    tax_amount: Decimal | str | None = None


@dataclass(frozen=True, slots=True)
class PlannedItem:
    seq: int
    kind: str
    parent_seq: int | None
    amount: int
    sku: str | None = None
    description: str | None = None
    source_item_id: int | None = None


@dataclass(frozen=True, slots=True)
class CreditableItem:
    """An invoice item as seen when crediting it: ``creditable`` = amount − already credited."""

    id: int
    seq: int
    kind: str
    parent_id: int | None
    sku: str | None
    description: str | None
    creditable: int


@dataclass(frozen=True, slots=True)
class CreditRequest:
    item_id: int | None  # None: the given id named no item of the invoice
    raw_id: str
    amount: Decimal | str


def plan_items(
    items: Sequence[NewItem], currency: str, *, max_items: int, field: tuple[str, ...] = ("items",)
) -> list[PlannedItem]:
    problems: list[e.RuleViolation] = []
    if not items:
        raise e.Rejected([e.NoItems("a document needs at least one item", field=field)])
    planned: list[PlannedItem] = []
    last_charge: int | None = None
    for i, item in enumerate(items):
        at = (*field, str(i))
        amount = _minor(item.amount, currency, (*at, "amount"), problems)
        if item.kind not in KINDS:
            problems.append(e.InvalidValue(f"unknown item kind {item.kind!r}", field=(*at, "kind")))
            continue
        parent: int | None = None
        if item.kind == "CHARGE":
            last_charge = len(planned)
        elif item.tax_amount is not None:
            problems.append(e.InvalidValue("only a CHARGE item takes a taxAmount", field=(*at, "taxAmount")))
        elif last_charge is None:
            problems.append(
                e.InvalidValue(
                    f"a {item.kind} item belongs to a CHARGE item listed before it",
                    field=(*at, "kind"),
                )
            )
        else:
            parent = last_charge
        planned.append(PlannedItem(len(planned), item.kind, parent, amount, item.sku, item.description))
        if item.tax_amount is not None and item.kind == "CHARGE":
            tax = _minor(item.tax_amount, currency, (*at, "taxAmount"), problems)
            planned.append(
                PlannedItem(len(planned), "TAX", len(planned) - 1, tax, item.sku, item.description)
            )
    if len(planned) > max_items:
        problems.append(
            e.InvalidValue(
                f"a document may have at most {max_items:,} items, this one has {len(planned):,}",
                field=field,
            )
        )
    total = sum(p.amount for p in planned)
    if total > MAX_MINOR:  # each item fits, the document's total must too
        problems.append(
            e.InvalidValue(
                f"the items add up to {total:,} minor units; a document carries at most {MAX_MINOR:,}",
                field=field,
                max=MAX_MINOR,
                actual=total,
            )
        )
    if problems:
        raise e.Rejected(problems)
    return planned


def plan_credit_from_invoice(
    invoice_items: Mapping[int, CreditableItem],
    requests: Sequence[CreditRequest],
    currency: str,
    *,
    field: tuple[str, ...] = ("items",),
) -> list[PlannedItem]:
    """Memo items for the named invoice items, in the invoice's FIFO order, parents kept.

    A TAX or DISCOUNT invoice item can only be credited together with its parent charge **(ours,
    as in Zuora where taxation items hang under their charge)**.
    """
    problems: list[e.RuleViolation] = []
    if not requests:
        raise e.Rejected([e.NoItems("name at least one invoice item to credit", field=field)])
    chosen: dict[int, tuple[int, int]] = {}  # invoice item id -> (amount, request index)
    for i, req in enumerate(requests):
        at = (*field, str(i))
        amount = _minor(req.amount, currency, (*at, "amount"), problems)
        item = invoice_items.get(req.item_id) if req.item_id is not None else None
        if item is None:
            problems.append(
                e.ItemNotInDocument(
                    f"{req.raw_id} is not an item of this invoice", field=(*at, "invoiceItemId")
                )
            )
            continue
        if item.id in chosen:
            problems.append(e.InvalidValue(f"{req.raw_id} is named twice", field=(*at, "invoiceItemId")))
            continue
        if amount > item.creditable:
            problems.append(
                e.ItemExceedsCreditable(
                    f"at most {item.creditable} minor units of {req.raw_id} can still be credited",
                    field=(*at, "amount"),
                    creditable=item.creditable,
                )
            )
        chosen[item.id] = (amount, i)
    for item_id, (_, i) in chosen.items():
        parent = invoice_items[item_id].parent_id
        if parent is not None and parent not in chosen:
            problems.append(
                e.InvalidValue(
                    "a TAX or DISCOUNT item is credited together with its parent item",
                    field=(*field, str(i), "invoiceItemId"),
                )
            )
    if problems:
        raise e.Rejected(problems)
    ordered = sorted(chosen, key=lambda item_id: invoice_items[item_id].seq)
    seq_of = {item_id: seq for seq, item_id in enumerate(ordered)}
    return [
        PlannedItem(
            seq=seq_of[item_id],
            kind=invoice_items[item_id].kind,
            parent_seq=seq_of.get(invoice_items[item_id].parent_id or -1),
            amount=chosen[item_id][0],
            sku=invoice_items[item_id].sku,
            description=invoice_items[item_id].description,
            source_item_id=item_id,
        )
        for item_id in ordered
    ]


def is_email_address(value: str) -> bool:
    """A plain ``local@domain.tld`` address (no display name, no spaces, no commas)."""
    local, at, domain = value.partition("@")
    return (
        bool(at and local and "." in domain.strip(".") and not any(c in value for c in ' ,;<>"\r\n'))
        and "@" not in domain
    )


def check_dates(doc_date: date, due_date: date | None, *, due_field: str = "dueDate") -> None:
    if due_date is not None and due_date < doc_date:
        raise e.Rejected([e.InvalidValue(f"{due_field} {due_date} is before {doc_date}", field=(due_field,))])


# ---------------------------------------------------------------- lifecycle


def check_post(kind: str, number: str, status: str) -> None:
    if status != "DRAFT":
        raise e.Rejected(
            [e.InvalidStatus(f"{kind} {number} is {status}; only a DRAFT is posted", field=("id",))]
        )


def check_unpost_credit_memo(
    number: str, status: str, *, applied: int, refunded: int, reversed: bool
) -> None:
    """POSTED → DRAFT, refused once the memo is applied, refunded or reversed."""
    if status != "POSTED":
        raise e.Rejected([e.InvalidStatus(f"credit memo {number} is {status}, not POSTED", field=("id",))])
    if applied or refunded or reversed:
        raise e.Rejected(
            [
                e.HasApplications(
                    f"credit memo {number} is applied, refunded or reversed; unapply it first",
                    field=("id",),
                )
            ]
        )


def check_cancel(number: str, status: str) -> None:
    if status != "DRAFT":
        raise e.Rejected(
            [e.InvalidStatus(f"credit memo {number} is {status}; only a DRAFT is canceled", field=("id",))]
        )


def check_delete(number: str, status: str) -> None:
    if status != "CANCELED":
        raise e.Rejected(
            [
                e.InvalidStatus(
                    f"credit memo {number} is {status}; only a CANCELED memo is deleted",
                    field=("id",),
                )
            ]
        )


def _minor(
    amount: Decimal | str, currency: str, field: tuple[str, ...], problems: list[e.RuleViolation]
) -> int:
    try:
        return positive_minor(amount, currency, field=field)
    except e.RuleViolation as violation:
        problems.append(violation)
        return 0
