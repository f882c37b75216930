"""The settlement verbs: checks + new state. Each raises ``Rejected`` with every violation found.

``apply`` lives here; ``unapply`` in ``unapplying``, reverse, write-off and refund in ``plans``; all
are importable from this module.

How much each memo item gives when one request names several targets (ours): the memo's gift is
decided once for the whole request. FIFO consumes the memo items' unapplied amounts in FIFO order;
PRORATION splits the total over the memo items in proportion to their unapplied amounts (largest
remainder). The gifts are then laid, in memo FIFO order, over one stream of target items: targets in
request order, each target's items in FIFO order. So FIFO fills the targets in request order, sums
are exact, and no memo item ever gives more than it has unapplied. Item pairs the caller names are
taken first and what they use is no longer available to the rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import date

from gateway.settlement import allocation, finality
from gateway.settlement.checks import (
    Line,
    check_item_sums,
    check_source,
    effective_date,
    parse_lines,
    resolve_rule,
)
from gateway.settlement.counting import apply_limits, counts_toward_limit
from gateway.settlement.errors import (
    AmountExceedsBalance,
    AmountExceedsItemBalance,
    AmountExceedsUnapplied,
    ItemKindMismatch,
    LimitExceeded,
    NoTargets,
    Rejected,
    RuleViolation,
    SourceItemRuleViolation,
)
from gateway.settlement.limits import Limits
from gateway.settlement.model import (
    FIFO,
    INVOICE,
    PAYMENT,
    PRORATION,
    SOURCE_ITEM,
    TAX,
    ApplyRequest,
    Movement,
    Settlement,
    Source,
    Target,
    Warning,
)
from gateway.settlement.money import format_minor
from gateway.settlement.plans import plan_reverse, plan_write_off, refund
from gateway.settlement.unapplying import merge, unapply

__all__ = ["apply", "unapply", "plan_reverse", "plan_write_off", "refund", "merge"]


def apply(
    source: Source,
    targets: Mapping[int, Target],
    request: ApplyRequest,
    *,
    default_rule: str,
    limits: Limits,
    today: date,
    proration_guard: int,
    async_: bool = False,
) -> Settlement:
    """Apply a credit memo or a payment to invoices and debit memos (all or nothing)."""
    errors: list[RuleViolation] = []
    check_source(source, errors)
    errors += finality.refusals(
        source.kind, source.id, source.number, reversed=source.reversed, operation="applied"
    )
    rule = resolve_rule(request, default_rule, source, errors)
    day = effective_date(request, source, today, errors, after_latest=source.kind == PAYMENT)
    if not request.targets:
        errors.append(NoTargets("name at least one invoice or debit memo"))
    lines = parse_lines(source, targets, request, day, errors)
    _check_amounts(source, lines, errors)
    check_item_sums(lines, source.currency, errors)
    errors += _check_limits(source, request, lines, limits, async_)
    mapping: dict[int, int] = {}
    if rule == SOURCE_ITEM:
        mapping = _check_source_item(source, lines, errors)
    if errors:
        raise Rejected(errors)

    movements, used, warnings = _allocate(source, lines, rule, mapping, proration_guard, errors)
    if errors:
        raise Rejected(errors)
    # Only a caller's entries can name a (memo item, target item) pair twice, or a pair the rule
    # lays too: the rule alone lays each pair once (one line per target; ``pair`` walks both streams
    # once), and a 300,000-item apply then keeps no second copy of its movements.
    unique = used in (FIFO, PRORATION) and not any(ln.entries for ln in lines)
    merged = tuple(movements) if unique else merge(movements)
    return Settlement(used, merged, sum(m.amount for m in merged), day, tuple(warnings))


def _check_amounts(source: Source, lines: Sequence[Line], errors: list[RuleViolation]) -> None:
    cur = source.currency
    total = 0
    used_t: dict[int, int] = {}
    used_s: dict[int, int] = {}
    for line in lines:
        if line.amount is not None:
            total += line.amount
            if line.amount > line.target.balance:
                errors.append(
                    AmountExceedsBalance(
                        f"{format_minor(line.amount, cur)} exceeds the balance of {line.target.number}"
                        f" ({format_minor(line.target.balance, cur)})",
                        field=(*line.field, "amount"),
                    )
                )
        for e in line.entries or ():
            ti, si = e.target_item, e.source_item
            if ti is not None and si is not None and (ti.kind == TAX) != (si.kind == TAX):
                errors.append(
                    ItemKindMismatch(
                        f"memo item {si.id} ({si.kind}) cannot pair with item {ti.id} ({ti.kind}):"
                        " TAX pairs only with TAX",
                        field=e.field,
                    )
                )
            if e.amount is None:
                continue
            # Cumulative, so that two entries on one item cannot together over-apply it.
            if ti is not None:
                used_t[ti.id] = used_t.get(ti.id, 0) + e.amount
                if used_t[ti.id] > ti.balance:
                    errors.append(
                        AmountExceedsItemBalance(
                            f"{format_minor(e.amount, cur)} exceeds the balance of item {ti.id}"
                            f" ({format_minor(ti.balance - used_t[ti.id] + e.amount, cur)} left)",
                            field=(*e.field, "amount"),
                        )
                    )
            if si is not None:
                used_s[si.id] = used_s.get(si.id, 0) + e.amount
                if used_s[si.id] > si.unapplied:
                    errors.append(
                        AmountExceedsItemBalance(
                            f"{format_minor(e.amount, cur)} exceeds the unapplied amount of memo item"
                            f" {si.id} ({format_minor(si.unapplied - used_s[si.id] + e.amount, cur)}"
                            " left)",
                            field=(*e.field, "amount"),
                        )
                    )
    if total > source.unapplied:
        errors.append(
            AmountExceedsUnapplied(
                f"{format_minor(total, cur)} exceeds the unapplied amount of {source.number}"
                f" ({format_minor(source.unapplied, cur)})",
                unapplied=source.unapplied,
                requested=total,
            )
        )


def _check_limits(
    source: Source, request: ApplyRequest, lines: Sequence[Line], limits: Limits, async_: bool
) -> list[LimitExceeded]:
    """``counting.apply_limits`` with the counts taken from the loaded documents."""
    return apply_limits(
        request,
        limits=limits,
        memo_open_items=sum(1 for i in source.items if counts_toward_limit(i.unapplied)),
        open_items={
            ln.target.id: sum(1 for i in ln.target.items if counts_toward_limit(i.balance)) for ln in lines
        },
        item_counts={ln.target.id: len(ln.target.items) for ln in lines},
        async_=async_,
    )


def _check_source_item(source: Source, lines: Sequence[Line], errors: list[RuleViolation]) -> dict[int, int]:
    """SOURCE_ITEM: exactly one invoice, every open memo item created from one of its items, and
    every pair the caller names is such a pair."""
    if not lines:  # already NO_TARGETS or NOT_FOUND
        return {}
    if len(lines) != 1 or lines[0].target.kind != INVOICE:
        errors.append(
            SourceItemRuleViolation(
                f"the SOURCE_ITEM rule applies to exactly one invoice; this request has {len(lines)} targets"
            )
        )
        return {}
    line = lines[0]
    mapping, violations = allocation.source_item_map(source.items, line.target, field=line.field)
    errors += violations
    for e in line.entries or ():
        si, ti = e.source_item, e.target_item
        if si is not None and ti is not None and si.id in mapping and mapping[si.id] != ti.id:
            errors.append(
                SourceItemRuleViolation(
                    f"memo item {si.id} was created from item {mapping[si.id]}, not {ti.id}",
                    field=e.field,
                )
            )
    return mapping


def _allocate(
    source: Source,
    lines: Sequence[Line],
    rule: str,
    mapping: dict[int, int],
    guard: int,
    errors: list[RuleViolation],
) -> tuple[list[Movement], str | None, list[Warning]]:
    memo_order = allocation.fifo_order(source.items)
    available = {m.id: m.unapplied for m in memo_order}
    room = {ti.id: ti.balance for ln in lines for ti in ln.target.items}
    moves: list[Movement] = []
    # (target id, target item id, amount) the rule must find memo items for, in stream order, as
    # three columns (a tuple per receive costs 300,000 tuples in a large job).
    r_target: list[int] = []
    r_item: list[int] = []
    r_amount: list[int] = []
    free: list[tuple[Line, int | None, int]] = []  # (line, target item or None = whole, amount)
    for ln in lines:
        assert ln.amount is not None
        if ln.entries is None:
            free.append((ln, None, ln.amount))
            continue
        position = {ti.id: k for k, ti in enumerate(allocation.fifo_order(ln.target.items))}
        for e in sorted(ln.entries, key=lambda e: position[e.target_item.id]):  # type: ignore[union-attr]
            assert e.target_item is not None and e.amount is not None
            if e.source_item is not None:
                moves.append(Movement(e.source_item.id, ln.target.id, e.target_item.id, e.amount))
                available[e.source_item.id] -= e.amount
                room[e.target_item.id] -= e.amount
            else:
                free.append((ln, e.target_item.id, e.amount))
    if not free:
        return moves, None, []

    if rule == SOURCE_ITEM:
        ids = [m.id for m in memo_order]
        for ln, tid, amount in free:
            got, left = allocation.source_item_fill(
                amount, ids, available, mapping, room, only_target_item=tid
            )
            moves += [Movement(mid, ln.target.id, t, a) for mid, t, a in got]
            if left:
                errors.append(
                    SourceItemRuleViolation(
                        f"the memo items created from {ln.target.number} can give only"
                        f" {format_minor(amount - left, source.currency)} of"
                        f" {format_minor(amount, source.currency)}",
                        field=(*ln.field, "amount") if tid is None else ln.field,
                    )
                )
        return moves, SOURCE_ITEM, []

    n_target = sum(
        sum(1 for i in ln.target.items if room[i.id] > 0) if tid is None else 1 for ln, tid, _ in free
    )
    n_memo = sum(1 for a in available.values() if a > 0) if source.kind != PAYMENT else 1
    used, warning = allocation.guarded_rule(rule, target_items=n_target, memo_items=n_memo, guard=guard)
    for ln, tid, amount in free:
        if tid is not None:
            r_target.append(ln.target.id)
            r_item.append(tid)
            r_amount.append(amount)
            continue
        items = allocation.fifo_order(ln.target.items)
        shares = allocation.spread(used, amount, [room[i.id] for i in items])
        for i, share in zip(items, shares, strict=True):
            if share:
                r_target.append(ln.target.id)
                r_item.append(i.id)
                r_amount.append(share)
    if source.kind == PAYMENT:
        moves += map(Movement, itertools.repeat(None), r_target, r_item, r_amount)
    else:
        gives = allocation.spread(used, sum(r_amount), [available[m.id] for m in memo_order])
        for gi, rj, amount in allocation.pair(gives, r_amount):
            moves.append(Movement(memo_order[gi].id, r_target[rj], r_item[rj], amount))
    return moves, used, [warning] if warning else []
