"""Plain factories for the pure rule tests: documents in minor units, requests in Decimal strings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from gateway.settlement import engine
from gateway.settlement.errors import Rejected
from gateway.settlement.limits import Limits
from gateway.settlement.model import (
    ApplyRequest,
    ExistingItemPart,
    ItemAmount,
    Settlement,
    Source,
    SourceItem,
    Target,
    TargetAmount,
    TargetItem,
)

DAY = date(2024, 3, 1)
TODAY = date(2024, 3, 15)


def mitem(
    id: int,
    amount: int,
    kind: str = "CHARGE",
    *,
    parent: int | None = None,
    source: int | None = None,
    unapplied: int | None = None,
    seq: int | None = None,
) -> SourceItem:
    left = amount if unapplied is None else unapplied
    return SourceItem(id, id if seq is None else seq, kind, parent, source, amount, amount - left, left)


def memo(
    *items: SourceItem,
    currency: str = "USD",
    status: str = "POSTED",
    id: int = 1,
    account: int = 1,
    doc_date: date = DAY,
    refund: int = 0,
    reversed: bool = False,
    latest: date | None = None,
) -> Source:
    amount = sum(i.amount for i in items)
    unapplied = sum(i.unapplied for i in items)
    return Source(
        "CREDIT_MEMO",
        id,
        f"CM{id:08d}",
        account,
        currency,
        status,
        doc_date,
        amount,
        amount - unapplied - refund,
        unapplied,
        refund,
        reversed,
        tuple(items),
        latest,
    )


def payment(
    amount: int,
    *,
    unapplied: int | None = None,
    currency: str = "USD",
    id: int = 1,
    doc_date: date = DAY,
    latest: date | None = None,
) -> Source:
    left = amount if unapplied is None else unapplied
    return Source(
        "PAYMENT",
        id,
        f"P-{id:08d}",
        1,
        currency,
        "POSTED",
        doc_date,
        amount,
        amount - left,
        left,
        0,
        False,
        (),
        latest,
    )


def titem(
    id: int,
    amount: int,
    kind: str = "CHARGE",
    *,
    parent: int | None = None,
    balance: int | None = None,
    seq: int | None = None,
) -> TargetItem:
    return TargetItem(
        id, id if seq is None else seq, kind, parent, amount, amount if balance is None else balance
    )


def invoice(
    id: int,
    *items: TargetItem,
    kind: str = "INVOICE",
    currency: str = "USD",
    status: str = "POSTED",
    account: int = 1,
    doc_date: date = DAY,
) -> Target:
    prefix = "INV" if kind == "INVOICE" else "DM"
    return Target(
        kind,
        id,
        f"{prefix}{id:08d}",
        account,
        currency,
        status,
        doc_date,
        sum(i.amount for i in items),
        sum(i.balance for i in items),
        tuple(items),
    )


def debit_memo(id: int, *items: TargetItem, **kw: Any) -> Target:
    return invoice(id, *items, kind="DEBIT_MEMO", **kw)


def item(
    target_item: int | None,
    amount: str,
    source_item: int | None = None,
    *,
    raw: str | None = None,
    raw_source: str | None = None,
) -> ItemAmount:
    return ItemAmount(target_item, Decimal(amount), source_item, raw, raw_source)


def request(
    *targets: tuple[Target, str] | tuple[Target, str, list[ItemAmount]],
    rule: str | None = None,
    effective: date | None = None,
) -> ApplyRequest:
    """Targets in request order; field paths are computed per kind, as the schema lists them."""
    counters = {"INVOICE": 0, "DEBIT_MEMO": 0}
    out = []
    for entry in targets:
        target, amount = entry[0], entry[1]
        items = tuple(entry[2]) if len(entry) > 2 else None  # type: ignore[misc]
        name = "invoices" if target.kind == "INVOICE" else "debitMemos"
        field = (name, str(counters[target.kind]))
        counters[target.kind] += 1
        out.append(TargetAmount(target.kind, target.id, Decimal(amount), items, field))
    return ApplyRequest(effective, rule, tuple(out))


def targets_of(*docs: Target) -> dict[int, Target]:
    return {d.id: d for d in docs}


def apply(
    source: Source,
    docs: list[Target],
    req: ApplyRequest,
    *,
    rule: str = "PRORATION",
    limits: Limits | None = None,
    guard: int = 10_000,
    async_: bool = False,
) -> Settlement:
    return engine.apply(
        source,
        targets_of(*docs),
        req,
        default_rule=rule,
        limits=limits or Limits(),
        today=TODAY,
        proration_guard=guard,
        async_=async_,
    )


def unapply(
    source: Source,
    docs: list[Target],
    existing: list[ExistingItemPart],
    req: ApplyRequest,
    *,
    rule: str = "PRORATION",
    limits: Limits | None = None,
    guard: int = 15_000,
) -> Settlement:
    return engine.unapply(
        source,
        targets_of(*docs),
        existing,
        req,
        default_rule=rule,
        limits=limits or Limits(),
        today=TODAY,
        proration_guard=guard,
    )


def parts_of(settlement: Settlement) -> list[ExistingItemPart]:
    return [
        ExistingItemPart(m.source_item_id, m.target_id, m.target_item_id, m.amount)
        for m in settlement.movements
    ]


def moves(settlement: Settlement) -> list[tuple[int | None, int, int]]:
    """(source item, target item, amount) per movement."""
    return [(m.source_item_id, m.target_item_id, m.amount) for m in settlement.movements]


def codes(rejected: Rejected) -> list[tuple[str, tuple[str, ...]]]:
    return [(str(e.code), e.field) for e in rejected.errors]
