"""FIFO, PRORATION and SOURCE_ITEM: who gets how much. Pure functions on integer minor units.

A rule decides how much each target item receives and how much each memo item gives; ``pair`` then
lays the memo items' amounts over the target items in FIFO order. Both sums are exact by
construction, and no share ever exceeds its capacity (what is open on a target item, what is
unapplied on a memo item).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

from gateway.settlement.errors import SourceItemRuleViolation
from gateway.settlement.model import (
    FIFO,
    PRORATION,
    PRORATION_FALLBACK_TO_FIFO,
    TAX,
    SourceItem,
    Target,
    TargetItem,
    Warning,
)
from gateway.settlement.money import allocate


class _Item(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def parent_id(self) -> int | None: ...


ItemT = TypeVar("ItemT", bound=_Item)


def fifo_order(items: Sequence[ItemT]) -> list[ItemT]:
    """Creation order (``seq``) with every TAX item right after its parent (ours).

    A TAX item whose parent is not among ``items`` keeps its own place in creation order.
    """
    by_seq = sorted(items, key=lambda i: i.seq)
    ids = {i.id for i in by_seq}
    children: dict[int, list[ItemT]] = {}
    for item in by_seq:
        if item.kind == TAX and item.parent_id in ids and item.parent_id != item.id:
            children.setdefault(item.parent_id, []).append(item)
    placed: set[int] = set()
    ordered: list[ItemT] = []

    def place(item: ItemT) -> None:
        if item.id in placed:
            return
        placed.add(item.id)
        ordered.append(item)
        for child in children.get(item.id, ()):
            place(child)

    tax_children = {c.id for cs in children.values() for c in cs}
    for item in by_seq:
        if item.id not in tax_children:
            place(item)
    for item in by_seq:  # only reached by a parent cycle, which the data never has
        place(item)
    return ordered


def fifo(total: int, capacities: Sequence[int]) -> list[int]:
    """Fill each capacity fully before the next. Requires 0 ≤ total ≤ sum of positive capacities."""
    shares: list[int] = []
    left = total
    for cap in capacities:
        take = min(max(cap, 0), left)
        shares.append(take)
        left -= take
    if left:
        raise ValueError(f"cannot place {total} over capacities summing to {total - left}")
    return shares


def proration(total: int, capacities: Sequence[int]) -> list[int]:
    """Shares in proportion to the capacities, largest remainder, ties to the earlier item.

    Items with nothing open get nothing; since total ≤ sum(capacities), no share exceeds its
    capacity (a share is at most the ceiling of total·cap/sum ≤ cap).
    """
    return allocate(total, [max(c, 0) for c in capacities])


def spread(rule: str, total: int, capacities: Sequence[int]) -> list[int]:
    """``total`` over ``capacities`` by FIFO or PRORATION."""
    return proration(total, capacities) if rule == PRORATION else fifo(total, capacities)


def pair(gives: Sequence[int], receives: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    """Lay each give over the receives in order: (give index, receive index, amount > 0), each
    (give, receive) pair once, produced as they are laid (a 300,000-item apply keeps no list of them).

    Both streams must add up to the same total (checked at once); every give and every receive is
    then met exactly.
    """
    if sum(gives) != sum(receives):
        raise ValueError(f"gives {sum(gives)} and receives {sum(receives)} differ")
    return _laid(gives, receives)


def _laid(gives: Sequence[int], receives: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    j, room = 0, receives[0] if receives else 0
    for i, give in enumerate(gives):
        while give > 0:
            while room <= 0:
                j += 1
                room = receives[j]
            take = min(give, room)
            yield i, j, take
            give -= take
            room -= take


def guarded_rule(rule: str, *, target_items: int, memo_items: int, guard: int) -> tuple[str, Warning | None]:
    """PRORATION falls back to FIFO when (target items) × (memo items) exceeds the guard."""
    product = target_items * memo_items
    if rule != PRORATION or product <= guard:
        return rule, None
    return FIFO, Warning(
        PRORATION_FALLBACK_TO_FIFO,
        f"PRORATION over {target_items:,} target items × {memo_items:,} memo items"
        f" = {product:,} exceeds the proration guard of {guard:,}; FIFO was used",
        {"targetItems": target_items, "memoItems": memo_items, "guard": guard},
    )


def source_item_map(
    memo_items: Sequence[SourceItem], target: Target, *, field: Sequence[str] = ()
) -> tuple[dict[int, int], list[SourceItemRuleViolation]]:
    """Memo item id → the item of ``target`` it was created from, for every memo item with
    something unapplied; a violation for each one that has none.

    A TAX memo item maps to its own ``source_item_id`` when set; otherwise the k-th TAX child of its
    parent memo item maps to the k-th TAX child (FIFO order) of the parent's source item (ours).
    """
    t_items = {i.id: i for i in target.items}
    t_tax: dict[int, list[TargetItem]] = {}
    for ti in fifo_order(target.items):
        if ti.kind == TAX and ti.parent_id is not None:
            t_tax.setdefault(ti.parent_id, []).append(ti)
    m_items = {m.id: m for m in memo_items}
    m_tax: dict[int, list[int]] = {}
    for m in fifo_order(memo_items):
        if m.kind == TAX and m.parent_id is not None:
            m_tax.setdefault(m.parent_id, []).append(m.id)

    mapping: dict[int, int] = {}
    errors: list[SourceItemRuleViolation] = []
    for m in memo_items:
        if m.unapplied <= 0:
            continue
        found = t_items.get(m.source_item_id) if m.source_item_id is not None else None
        parent = m_items.get(m.parent_id) if m.parent_id is not None else None
        if found is None and m.kind == TAX and parent is not None:
            k = m_tax.get(parent.id, []).index(m.id)
            siblings = t_tax.get(parent.source_item_id or 0, [])
            found = siblings[k] if k < len(siblings) else None
        if found is None or (found.kind == TAX) != (m.kind == TAX):
            errors.append(
                SourceItemRuleViolation(
                    f"credit memo item {m.id} ({m.kind}) was not created from an item of {target.number}",
                    field=field,
                    sourceItemId=m.id,
                    targetId=target.id,
                )
            )
        else:
            mapping[m.id] = found.id
    return mapping, errors


def source_item_fill(
    total: int,
    memo_order: Sequence[int],
    available: dict[int, int],
    mapping: Mapping[int, int],
    room: dict[int, int],
    *,
    only_target_item: int | None = None,
) -> tuple[list[tuple[int, int, int]], int]:
    """SOURCE_ITEM: memo items in FIFO order each give what they can to their own target item.

    Returns (memo item id, target item id, amount) triples and what could not be placed.
    ``available`` and ``room`` are consumed in place, so several calls never over-apply.
    """
    out: list[tuple[int, int, int]] = []
    left = total
    for mid in memo_order:
        if left <= 0:
            break
        tid = mapping.get(mid)
        if tid is None or (only_target_item is not None and tid != only_target_item):
            continue
        take = min(available.get(mid, 0), room.get(tid, 0), left)
        if take > 0:
            out.append((mid, tid, take))
            available[mid] -= take
            room[tid] -= take
            left -= take
    return out, left
