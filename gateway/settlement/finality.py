"""A reversal and a write-off are final (ours: SPEC.md is silent, Zuora refuses both).

Reversing or writing off a credit memo applies it in full to a debit memo made for that purpose
(``referred_credit_memo_id``). Unapplying the memo from that debit memo would undo the reversal or
the write-off and free its amount for a refund in cash, so it is refused; and a reversed memo is
closed: it can be neither applied, unapplied nor refunded again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.settlement.errors import Field, InvalidStatus, RuleViolation
from gateway.settlement.model import CREDIT_MEMO, ApplyRequest, Source, Target

SOURCE_FIELD: Field = ("creditMemoId",)


def closed(kind: str, number: str, *, reversed: bool, operation: str) -> list[RuleViolation]:
    """INVALID_STATUS when ``operation`` (apply, unapply, refund) touches a reversed credit memo."""
    if kind != CREDIT_MEMO or not reversed:
        return []
    return [
        InvalidStatus(
            f"credit memo {number} is reversed: a reversal is final, it cannot be {operation}",
            field=SOURCE_FIELD,
            status="REVERSED",
        )
    ]


def undoing(
    kind: str, memo_id: int, number: str, targets: Iterable[tuple[Field, int | None]]
) -> list[RuleViolation]:
    """INVALID_STATUS for every target of an unapply that is the memo's own reversal or write-off
    debit memo. ``targets``: (field path, the target's referred credit memo id)."""
    if kind != CREDIT_MEMO:
        return []
    return [
        InvalidStatus(
            f"this debit memo reversed or wrote off credit memo {number}; that is final",
            field=field or SOURCE_FIELD,
            status="FINAL",
        )
        for field, referred in targets
        if referred == memo_id
    ]


def of_request(
    source: Source, targets: Mapping[int, Target], request: ApplyRequest, *, operation: str
) -> list[RuleViolation]:
    """``refusals`` for one apply or unapply request: the named targets (all loaded targets when
    an unapply names none)."""
    named = [(t.field, targets[t.target_id]) for t in request.targets if t.target_id in targets]
    return refusals(
        source.kind,
        source.id,
        source.number,
        reversed=source.reversed,
        operation=operation,
        targets=[(f, t.referred_credit_memo_id) for f, t in named or [((), t) for t in targets.values()]],
    )


def refusals(
    kind: str,
    memo_id: int,
    number: str,
    *,
    reversed: bool,
    operation: str,
    targets: Iterable[tuple[Field, int | None]] = (),
) -> list[RuleViolation]:
    """What finality refuses in one request: a reversed memo at all, else (for ``unapplied``) the
    targets that are the memo's own reversal or write-off debit memo."""
    if reversed:
        return closed(kind, number, reversed=reversed, operation=operation)
    return undoing(kind, memo_id, number, targets) if operation == "unapplied" else []
