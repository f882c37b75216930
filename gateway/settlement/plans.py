"""Reverse, write-off and refund of a credit memo: checks, then the plan the store carries out.

Reverse and write-off create a debit memo mirroring the memo's items (TAX and DISCOUNT included,
parent links kept by index) and apply memo item i fully to new item i. Refund takes from the memo
items' unapplied amounts in FIFO order.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from gateway.settlement import allocation, finality, money
from gateway.settlement.errors import (
    AlreadyReversed,
    AmountExceedsUnapplied,
    AppliedAmountNotZero,
    EffectiveDateTooEarly,
    InvalidStatus,
    NotFullyUnapplied,
    Rejected,
    RuleViolation,
)
from gateway.settlement.limits import Limits, check_refund_counts, check_reversal_counts
from gateway.settlement.model import (
    POSTED,
    PlannedItem,
    PlannedMovement,
    Refund,
    ReversePlan,
    Source,
)

WRITE_OFF_REASON = "Write-off"


def _check_posted(memo: Source, errors: list[RuleViolation]) -> None:
    if memo.status != POSTED:
        errors.append(
            InvalidStatus(
                f"credit memo {memo.number} is {memo.status}; it must be POSTED", status=memo.status
            )
        )


def _not_before(day: date, earliest: date, what: str, field: str, errors: list[RuleViolation]) -> None:
    if day < earliest:
        errors.append(EffectiveDateTooEarly(f"{field} {day} is before {what} ({earliest})", field=(field,)))


def _mirror(memo: Source, memo_date: date, apply_date: date, reason_code: str | None) -> ReversePlan:
    """Debit memo items mirroring the memo's items in FIFO order; each memo item gives its whole
    unapplied amount to its mirror."""
    items = allocation.fifo_order(memo.items)
    index = {m.id: k for k, m in enumerate(items)}
    planned = tuple(
        PlannedItem(m.kind, index.get(m.parent_id) if m.parent_id is not None else None, m.unapplied, m.id)
        for m in items
    )
    moves = tuple(PlannedMovement(m.id, k, m.unapplied) for k, m in enumerate(items) if m.unapplied)
    return ReversePlan(memo_date, apply_date, sum(m.amount for m in moves), planned, moves, reason_code)


def plan_reverse(
    memo: Source,
    *,
    limits: Limits,
    today: date,
    memo_date: date | None,
    apply_date: date | None,
    reason_code: str | None = None,
) -> ReversePlan:
    """Reverse a POSTED memo with nothing applied or refunded and not yet reversed.

    Both dates default to today; memo_date ≥ the memo's date, apply_date ≥ memo_date.
    """
    errors: list[RuleViolation] = []
    _check_posted(memo, errors)
    if memo.applied or memo.refund:
        errors.append(
            AppliedAmountNotZero(
                f"credit memo {memo.number} has {money.format_minor(memo.applied, memo.currency)}"
                f" applied and {money.format_minor(memo.refund, memo.currency)} refunded; unapply"
                " first (a refunded memo cannot be reversed)",
                applied=memo.applied,
                refund=memo.refund,
            )
        )
    if memo.reversed:
        errors.append(AlreadyReversed(f"credit memo {memo.number} is already reversed"))
    errors += check_reversal_counts(limits=limits, items=len(memo.items))
    memo_day = memo_date or today
    apply_day = apply_date or today
    _not_before(memo_day, memo.doc_date, f"the date of {memo.number}", "memoDate", errors)
    _not_before(apply_day, memo_day, "memoDate", "applyEffectiveDate", errors)
    if errors:
        raise Rejected(errors)
    return _mirror(memo, memo_day, apply_day, reason_code)


def plan_write_off(
    memo: Source, *, today: date, memo_date: date | None, reason_code: str | None
) -> ReversePlan:
    """Write off a POSTED, fully unapplied memo: a debit memo applied on ``memo_date``.

    ``memo_date`` defaults to today and may not be before the memo's date (ours).
    """
    errors: list[RuleViolation] = []
    _check_posted(memo, errors)
    if memo.unapplied != memo.amount:
        errors.append(
            NotFullyUnapplied(
                f"credit memo {memo.number} has {money.format_minor(memo.unapplied, memo.currency)}"
                f" unapplied of {money.format_minor(memo.amount, memo.currency)}",
                unapplied=memo.unapplied,
                amount=memo.amount,
            )
        )
    day = memo_date or today
    _not_before(day, memo.doc_date, f"the date of {memo.number}", "memoDate", errors)
    if errors:
        raise Rejected(errors)
    return _mirror(memo, day, day, reason_code or WRITE_OFF_REASON)


def refund(memo: Source, amount: Decimal, *, limits: Limits, today: date, refund_date: date | None) -> Refund:
    """Refund from the unapplied amount, FIFO over the memo's items."""
    errors: list[RuleViolation] = []
    _check_posted(memo, errors)
    errors += finality.closed(memo.kind, memo.number, reversed=memo.reversed, operation="refunded")
    day = refund_date or today
    _not_before(day, memo.doc_date, f"the date of {memo.number}", "refundDate", errors)
    try:
        total = money.positive_minor(amount, memo.currency, field=("amount",))
    except RuleViolation as error:
        errors.append(error)
        raise Rejected(errors) from None
    if total > memo.unapplied:
        errors.append(
            AmountExceedsUnapplied(
                f"{money.format_minor(total, memo.currency)} exceeds the unapplied amount of"
                f" {memo.number} ({money.format_minor(memo.unapplied, memo.currency)})",
                field=("amount",),
                unapplied=memo.unapplied,
                requested=total,
            )
        )
        raise Rejected(errors)
    items = allocation.fifo_order(memo.items)
    shares = allocation.fifo(total, [m.unapplied for m in items]) if items else []
    per_item = tuple((m.id, s) for m, s in zip(items, shares, strict=True) if s)
    errors += check_refund_counts(limits=limits, items_refunded=len(per_item))
    if errors:
        raise Rejected(errors)
    return Refund(total, per_item, day)
