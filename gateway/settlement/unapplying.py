"""Unapply: amounts go back from targets to the memo's (or payment's) unapplied amount.

How a rule unapplies (ours): what comes back is bounded by the existing item parts, so the rule
works on them. A target's amount is split over its items in proportion to what is applied to each
(PRORATION) or item by item in FIFO order (FIFO); each item's share is then split over the memo items
applied to it the same way (memo items in FIFO order). Pairs the caller names go first. Sums are
exact and no item part goes below zero. SOURCE_ITEM unapplies like FIFO: the parts already pair each
memo item with its source item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from gateway.settlement import allocation, finality
from gateway.settlement.checks import (
    Line,
    check_item_sums,
    check_source,
    check_target,
    effective_date,
    parse_lines,
    resolve_rule,
)
from gateway.settlement.errors import (
    AmountExceedsApplied,
    NoTargets,
    Rejected,
    RuleViolation,
)
from gateway.settlement.limits import Limits, check_unapply_counts
from gateway.settlement.model import (
    FIFO,
    INVOICE,
    PAYMENT,
    PRORATION,
    ApplyRequest,
    ExistingItemPart,
    Movement,
    Settlement,
    Source,
    Target,
    Warning,
)
from gateway.settlement.money import format_minor

Key = tuple[int, int, int | None]  # (target id, target item id, source item id)


def merge(movements: Iterable[Movement]) -> tuple[Movement, ...]:
    """One movement per (source item, target item), in first-seen order; zero amounts dropped."""
    sums: dict[tuple[int | None, int, int], int] = {}
    for m in movements:
        key = (m.source_item_id, m.target_id, m.target_item_id)
        sums[key] = sums.get(key, 0) + m.amount
    return tuple(Movement(s, t, ti, a) for (s, t, ti), a in sums.items() if a)


def unapply(
    source: Source,
    targets: Mapping[int, Target],
    existing: Sequence[ExistingItemPart],
    request: ApplyRequest,
    *,
    default_rule: str,
    limits: Limits,
    today: date,
    proration_guard: int,
    async_: bool = False,
) -> Settlement:
    """Unapply the named amounts, or everything applied when the request names no target."""
    errors: list[RuleViolation] = []
    check_source(source, errors)
    errors += finality.of_request(source, targets, request, operation="unapplied")
    rule = resolve_rule(request, default_rule, source, errors)
    day = effective_date(request, source, today, errors, after_latest=True)
    parts: dict[Key, int] = {}
    for p in existing:
        if p.amount > 0:
            key = (p.target_id, p.target_item_id, p.source_item_id)
            parts[key] = parts.get(key, 0) + p.amount

    if not request.targets:
        return _unapply_all(source, targets, parts, day, limits, async_, errors)

    lines = parse_lines(source, targets, request, day, errors)
    _check_applied(source, lines, parts, errors)
    check_item_sums(lines, source.currency, errors)
    touched = [k for k in parts if _touches(k, lines)]
    named_sources = {e.source_item.id for ln in lines for e in ln.entries or () if e.source_item}
    errors += check_unapply_counts(
        limits=limits,
        async_=async_,
        documents=len(request.targets),
        invoices=sum(1 for t in request.targets if t.kind == INVOICE),
        specified_items={ln.field: len(ln.entries) for ln in lines if ln.entries is not None},
        specified_source_items=len(named_sources),
        item_parts=len(touched),
        total_items=len({k[2] for k in touched}) + len({k[:2] for k in touched}),
    )
    if errors:
        raise Rejected(errors)

    order = {m.id: k for k, m in enumerate(allocation.fifo_order(source.items))}
    remaining = dict(parts)
    moves: list[Movement] = []
    free: list[tuple[Line, int | None, int]] = []
    for ln in lines:
        assert ln.amount is not None
        if ln.entries is None:
            free.append((ln, None, ln.amount))
        for e in ln.entries or ():
            assert e.target_item is not None and e.amount is not None
            if e.source_item is not None:
                remaining[(ln.target.id, e.target_item.id, e.source_item.id)] -= e.amount
                moves.append(Movement(e.source_item.id, ln.target.id, e.target_item.id, e.amount))
            else:
                free.append((ln, e.target_item.id, e.amount))
    used: str | None = None
    warnings: list[Warning] = []
    if free:
        keys = [k for k in touched if remaining.get(k, 0) > 0]
        n_memo = 1 if source.kind == PAYMENT else len({k[2] for k in keys})
        used, warning = allocation.guarded_rule(
            rule if rule == PRORATION else FIFO,
            target_items=len({k[:2] for k in keys}),
            memo_items=n_memo,
            guard=proration_guard,
        )
        warnings = [warning] if warning else []
        for ln, tid, amount in free:
            moves += _spread_back(used, ln.target, tid, amount, remaining, order)
    merged = merge(moves)
    return Settlement(used, merged, sum(m.amount for m in merged), day, tuple(warnings))


def _touches(key: Key, lines: Sequence[Line]) -> bool:
    for ln in lines:
        if ln.target.id == key[0]:
            return ln.entries is None or any(
                e.target_item is not None and e.target_item.id == key[1] for e in ln.entries
            )
    return False


def _check_applied(
    source: Source, lines: Sequence[Line], parts: Mapping[Key, int], errors: list[RuleViolation]
) -> None:
    cur = source.currency
    on_target: dict[int, int] = {}
    on_item: dict[tuple[int, int], int] = {}
    on_pair: dict[Key, int] = dict(parts)
    for (t, ti, _), amount in parts.items():
        on_target[t] = on_target.get(t, 0) + amount
        on_item[(t, ti)] = on_item.get((t, ti), 0) + amount
    for ln in lines:
        t = ln.target.id
        if ln.amount is not None and ln.amount > on_target.get(t, 0):
            errors.append(
                AmountExceedsApplied(
                    f"{format_minor(ln.amount, cur)} exceeds what is applied to {ln.target.number}"
                    f" ({format_minor(on_target.get(t, 0), cur)})",
                    field=(*ln.field, "amount"),
                )
            )
        # Named pairs first, then target items alone, each against what is still left.
        entries = sorted(ln.entries or (), key=lambda e: e.source_item is None)
        for e in entries:
            if e.target_item is None or e.amount is None:
                continue
            item = (t, e.target_item.id)
            if e.source_item is not None:
                key = (*item, e.source_item.id)
                left = on_pair.get(key, 0)
                on_pair[key] = left - e.amount
                what = f"memo item {e.source_item.id} on item {e.target_item.id}"
            else:
                left = on_item.get(item, 0)
                what = f"item {e.target_item.id}"
            on_item[item] = on_item.get(item, 0) - e.amount
            if e.amount > left:
                errors.append(
                    AmountExceedsApplied(
                        f"{format_minor(e.amount, cur)} exceeds what is applied to {what}"
                        f" ({format_minor(max(left, 0), cur)})",
                        field=(*e.field, "amount"),
                    )
                )


def _spread_back(
    rule: str,
    target: Target,
    target_item: int | None,
    amount: int,
    remaining: dict[Key, int],
    order: Mapping[int, int],
) -> list[Movement]:
    """``amount`` back from one target item (or the whole target) over its remaining parts."""
    items = [target_item] if target_item is not None else [i.id for i in allocation.fifo_order(target.items)]
    per_item: dict[int, list[Key]] = {i: [] for i in items}
    for key, left in remaining.items():
        if key[0] == target.id and key[1] in per_item and left > 0:
            per_item[key[1]].append(key)
    for keys in per_item.values():
        keys.sort(key=lambda k: order.get(k[2], 0) if k[2] is not None else 0)
    shares = allocation.spread(rule, amount, [sum(remaining[k] for k in per_item[i]) for i in items])
    out: list[Movement] = []
    for item, share in zip(items, shares, strict=True):
        keys = per_item[item]
        for key, back in zip(keys, allocation.spread(rule, share, [remaining[k] for k in keys]), strict=True):
            if back:
                remaining[key] -= back
                out.append(Movement(key[2], key[0], key[1], back))
    return out


def _unapply_all(
    source: Source,
    targets: Mapping[int, Target],
    parts: Mapping[Key, int],
    day: date,
    limits: Limits,
    async_: bool,
    errors: list[RuleViolation],
) -> Settlement:
    """No target named: every item part goes back in full; no rule is needed."""
    if not parts:
        errors.append(NoTargets(f"nothing is applied from {source.number}"))
    target_ids = list(dict.fromkeys(k[0] for k in parts))
    for tid in target_ids:
        if tid in targets:
            check_target(source, targets[tid], (), day, errors)
    errors += check_unapply_counts(
        limits=limits,
        async_=async_,
        documents=len(target_ids),
        invoices=sum(1 for t in target_ids if t in targets and targets[t].kind == INVOICE),
        item_parts=len(parts),
        total_items=len({k[2] for k in parts}) + len({k[:2] for k in parts}),
    )
    if errors:
        raise Rejected(errors)
    moves = merge(Movement(s, t, ti, a) for (t, ti, s), a in parts.items())
    return Settlement(None, moves, sum(m.amount for m in moves), day, ())
