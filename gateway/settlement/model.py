"""Frozen values the rules work on: documents, items, requests and results.

Every amount is an ``int`` in minor units of the document's currency, except request amounts, which
arrive as ``Decimal`` and are converted (and checked) by ``money.positive_minor`` inside the engine.
Item tuples are in FIFO order (``allocation.fifo_order`` restores it from ``seq`` and parent links).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

# Document and item kinds, statuses and rules, as the contract spells them.
CREDIT_MEMO = "CREDIT_MEMO"
PAYMENT = "PAYMENT"
INVOICE = "INVOICE"
DEBIT_MEMO = "DEBIT_MEMO"
CHARGE = "CHARGE"
DISCOUNT = "DISCOUNT"
TAX = "TAX"
DRAFT = "DRAFT"
POSTED = "POSTED"
CANCELED = "CANCELED"
FIFO = "FIFO"
PRORATION = "PRORATION"
SOURCE_ITEM = "SOURCE_ITEM"
RULES = (FIFO, PRORATION, SOURCE_ITEM)
PRORATION_FALLBACK_TO_FIFO = "PRORATION_FALLBACK_TO_FIFO"

# The input list each target kind comes from; used in field paths and messages.
TARGET_FIELDS = {INVOICE: "invoices", DEBIT_MEMO: "debitMemos"}


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A credit memo item. Invariant: amount = applied + unapplied + refund, each ≥ 0."""

    id: int
    seq: int
    kind: str
    parent_id: int | None
    source_item_id: int | None  # the invoice item it was created from
    amount: int
    applied: int
    unapplied: int
    refund: int = 0


@dataclass(frozen=True, slots=True)
class Source:
    """A credit memo or a payment (a payment has no items)."""

    kind: str
    id: int
    number: str
    account_id: int
    currency: str
    status: str
    doc_date: date
    amount: int
    applied: int
    unapplied: int
    refund: int = 0
    reversed: bool = False
    items: tuple[SourceItem, ...] = ()
    latest_application_date: date | None = None


class TargetItem(NamedTuple):
    """An invoice or debit memo item. Invariant: 0 ≤ balance ≤ amount (for positive amounts).
    A named tuple, like ``Movement``: a large apply reads 15,000 of them."""

    id: int
    seq: int
    kind: str
    parent_id: int | None
    amount: int
    balance: int


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    id: int
    number: str
    account_id: int
    currency: str
    status: str
    doc_date: date
    amount: int
    balance: int
    items: tuple[TargetItem, ...] = ()
    referred_credit_memo_id: int | None = None  # a reversal or write-off debit memo: its memo


@dataclass(frozen=True, slots=True)
class ExistingItemPart:
    """What is applied now: one source item (None for a payment) on one target item."""

    source_item_id: int | None
    target_id: int
    target_item_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class ItemAmount:
    """One entry of ``items``. An id that names nothing is None, with the raw input kept for the
    message; ``source_item_id`` None and ``raw_source_item_id`` None means "chosen by the rule"."""

    target_item_id: int | None
    amount: Decimal
    source_item_id: int | None = None
    raw_target_item_id: str | None = None
    raw_source_item_id: str | None = None

    @property
    def names_source(self) -> bool:
        return self.source_item_id is not None or self.raw_source_item_id is not None


@dataclass(frozen=True, slots=True)
class TargetAmount:
    kind: str
    target_id: int
    amount: Decimal
    items: tuple[ItemAmount, ...] | None = None
    field: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """Apply or unapply. For unapply, no targets means everything applied."""

    effective_date: date | None = None
    rule: str | None = None
    targets: tuple[TargetAmount, ...] = ()


class Movement(NamedTuple):
    """Money moved from one source item (None for a payment) to one target item; always > 0.
    For unapply it is the amount moved back. A named tuple: a large apply makes hundreds of
    thousands (a frozen dataclass costs several times as much to build)."""

    source_item_id: int | None
    target_id: int
    target_item_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    message: str
    data: dict[str, Any] = dc_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settlement:
    """The result of apply or unapply. ``rule`` is the rule actually used (None when every amount
    was placed by the caller or nothing needed allocating). ``movements`` has one movement per
    (source item, target item), none of zero (``engine.merge``): the writes rely on it."""

    rule: str | None
    movements: tuple[Movement, ...]
    amount: int
    effective_date: date
    warnings: tuple[Warning, ...] = ()

    def by_target(self) -> dict[int, int]:
        """The total moved per target document, in first-movement order."""
        totals: dict[int, int] = {}
        for m in self.movements:
            totals[m.target_id] = totals.get(m.target_id, 0) + m.amount
        return totals


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """An item of the debit memo a reverse or write-off creates; ``parent_index`` points into the
    same plan's items."""

    kind: str
    parent_index: int | None
    amount: int
    source_item_id: int  # the memo item it mirrors


@dataclass(frozen=True, slots=True)
class PlannedMovement:
    """Memo item → the new debit memo's item at ``item_index``."""

    source_item_id: int
    item_index: int
    amount: int


@dataclass(frozen=True, slots=True)
class ReversePlan:
    memo_date: date
    apply_date: date
    amount: int
    items: tuple[PlannedItem, ...]
    movements: tuple[PlannedMovement, ...]
    reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    total: int
    items: tuple[tuple[int, int], ...]  # (memo item id, amount), FIFO order, amounts > 0
    refund_date: date
