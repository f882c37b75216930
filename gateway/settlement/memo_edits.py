"""Rules for editing a credit memo after creation: which fields may change in which status, the new
item amounts, and where added taxation items go.

Zuora lets the descriptive header of a memo change while it is DRAFT or POSTED (comment, reason code,
the transferred-to-accounting flag, exclusion from auto-apply rules); the memo date and the items
only while DRAFT, because they move money **(ours: the memo date follows the items, as Zuora's
effectiveDate is a finance field)**. A CANCELED memo changes no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.settlement import errors as e
from gateway.settlement.money import positive_minor

HEADER_FIELDS = ("comment", "reasonCode", "transferredToAccounting", "excludeFromAutoApplyRules")
DRAFT_FIELDS = ("memoDate", "items")
TRANSFER_STATES = ("NO", "PROCESSING", "YES", "ERROR", "IGNORE")


@dataclass(frozen=True, slots=True)
class ExistingItem:
    id: int
    seq: int
    kind: str
    parent_id: int | None
    amount: int
    source_item_id: int | None = None


@dataclass(frozen=True, slots=True)
class ItemChange:
    item_id: int | None  # None: the given id named no item of this memo
    raw_id: str
    amount: Decimal | str | None = None
    sku: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class NewTax:
    parent_id: int | None  # None: the given id named no item of this memo
    raw_id: str
    amount: Decimal | str
    sku: str | None = None
    description: str | None = None


def check_update(number: str, status: str, changed: Sequence[str]) -> None:
    """INVALID_STATUS at each field the memo's status does not let change."""
    allowed = {"DRAFT": (*HEADER_FIELDS, *DRAFT_FIELDS), "POSTED": HEADER_FIELDS}.get(status, ())
    refused = [
        e.InvalidStatus(
            f"credit memo {number} is {status}; {name} "
            + ("changes only while DRAFT" if name in DRAFT_FIELDS else "no longer changes"),
            field=(name,),
        )
        for name in changed
        if name not in allowed
    ]
    if refused:
        raise e.Rejected(refused)


def check_transfer_state(value: str | None) -> None:
    if value is not None and value not in TRANSFER_STATES:
        raise e.Rejected(
            [
                e.InvalidValue(
                    f"transferredToAccounting is one of {', '.join(TRANSFER_STATES)}",
                    field=("transferredToAccounting",),
                )
            ]
        )


def plan_item_changes(
    items: Mapping[int, ExistingItem], changes: Sequence[ItemChange], currency: str
) -> dict[int, int]:
    """The new amount of every changed item (id → minor units); every problem at its path."""
    problems: list[e.RuleViolation] = []
    amounts: dict[int, int] = {}
    seen: set[int] = set()
    for i, change in enumerate(changes):
        at = ("items", str(i))
        if change.item_id is None or change.item_id not in items:
            problems.append(
                e.ItemNotInDocument(f"{change.raw_id} is not an item of this memo", field=(*at, "id"))
            )
            continue
        if change.item_id in seen:
            problems.append(e.InvalidValue(f"{change.raw_id} is named twice", field=(*at, "id")))
            continue
        seen.add(change.item_id)
        if change.amount is not None:
            try:
                amounts[change.item_id] = positive_minor(change.amount, currency, field=(*at, "amount"))
            except e.RuleViolation as violation:
                problems.append(violation)
    if problems:
        raise e.Rejected(problems)
    return amounts


def plan_taxation(
    items: Sequence[ExistingItem], taxes: Sequence[NewTax], currency: str
) -> tuple[list[int], list[int | str]]:
    """Minor amounts of the new TAX items, and the memo's new FIFO order: each entry an existing
    item id (int) or ``"new:<n>"`` for the n-th new tax. A new TAX goes right after its parent and
    the parent's existing children (creation order within a parent)."""
    problems: list[e.RuleViolation] = []
    by_id = {i.id: i for i in items}
    amounts: list[int] = []
    if not taxes:
        raise e.Rejected([e.NoItems("name at least one taxation item", field=("taxationItems",))])
    for n, tax in enumerate(taxes):
        at = ("taxationItems", str(n))
        parent = by_id.get(tax.parent_id) if tax.parent_id is not None else None
        if parent is None:
            problems.append(
                e.ItemNotInDocument(
                    f"{tax.raw_id} is not an item of this memo", field=(*at, "creditMemoItemId")
                )
            )
        elif parent.kind != "CHARGE":
            problems.append(
                e.ItemKindMismatch(
                    f"{tax.raw_id} is a {parent.kind} item; taxes belong to CHARGE items",
                    field=(*at, "creditMemoItemId"),
                )
            )
        try:
            amounts.append(positive_minor(tax.amount, currency, field=(*at, "amount")))
        except e.RuleViolation as violation:
            problems.append(violation)
    if problems:
        raise e.Rejected(problems)
    order: list[int | str] = []
    ordered = sorted(items, key=lambda i: i.seq)
    for pos, item in enumerate(ordered):
        order.append(item.id)
        # the last item of a charge's family: the next item is not one of its children
        family = item.id if item.parent_id is None else item.parent_id
        following = ordered[pos + 1] if pos + 1 < len(ordered) else None
        if following is None or following.parent_id != family:
            order.extend(f"new:{n}" for n, tax in enumerate(taxes) if tax.parent_id == family)
    return amounts, order
