"""What a settlement request carries, its one JSON form (idempotency hash and queued jobs alike),
what it answers, and its translation into the rules' ``ApplyRequest``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency
from gateway.db import Commits, Database
from gateway.ids import Ref, decode
from gateway.settlement.model import CREDIT_MEMO, ApplyRequest, ItemAmount, Movement, TargetAmount


@dataclass(frozen=True, slots=True)
class ItemInput:
    target_item: str
    amount: Decimal | str
    source_item: str | None = None


@dataclass(frozen=True, slots=True)
class TargetInput:
    kind: str  # INVOICE | DEBIT_MEMO
    ref: Ref
    amount: Decimal | str
    items: tuple[ItemInput, ...] | None
    field: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettleInput:
    source_kind: str  # CREDIT_MEMO | PAYMENT
    source: Ref
    targets: tuple[TargetInput, ...]
    effective_date: date | None = None
    rule: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    source_id: int
    application_id: int | None = None
    debit_memo_id: int | None = None
    rule: str | None = None
    warnings: tuple[tuple[str, str], ...] = ()
    movements: tuple[Movement, ...] = field(default=(), compare=False)
    currency: str = ""
    # (table, row) of the rows the move wrote, as committed, for the answer to use without reading
    # them again; not remembered with an idempotency key (a replay reads them)
    written: tuple[tuple[str, Row[Any]], ...] = field(default=(), compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "application_id": self.application_id,
            "debit_memo_id": self.debit_memo_id,
            "rule": self.rule,
            "warnings": [list(w) for w in self.warnings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        warnings = tuple((str(code), str(message)) for code, message in data["warnings"])
        return cls(data["source_id"], data["application_id"], data["debit_memo_id"], data["rule"], warnings)


def source_field(kind: str) -> tuple[str, ...]:
    return ("creditMemoId",) if kind == CREDIT_MEMO else ("paymentId",)


def to_json(data: SettleInput) -> dict[str, Any]:
    """The request without its idempotency key: hashed for the key, stored with a queued job."""
    return {
        "source_kind": data.source_kind,
        "source": [data.source.raw, data.source.pk, data.source.type_name],
        "effective_date": None if data.effective_date is None else data.effective_date.isoformat(),
        "rule": data.rule,
        "targets": [
            {
                "kind": t.kind,
                "ref": [t.ref.raw, t.ref.pk, t.ref.type_name],
                "amount": str(t.amount),
                "field": list(t.field),
                "items": None
                if t.items is None
                else [[i.target_item, str(i.amount), i.source_item] for i in t.items],
            }
            for t in data.targets
        ],
    }


def from_json(d: dict[str, Any]) -> SettleInput:
    return SettleInput(
        source_kind=d["source_kind"],
        source=Ref(*d["source"]),
        targets=tuple(
            TargetInput(
                t["kind"],
                Ref(*t["ref"]),
                t["amount"],
                None if t["items"] is None else tuple(ItemInput(a, b, c) for a, b, c in t["items"]),
                tuple(t["field"]),
            )
            for t in d["targets"]
        ),
        effective_date=None if d["effective_date"] is None else date.fromisoformat(d["effective_date"]),
        rule=d["rule"],
    )


def apply_request(data: SettleInput, ids: list[int | None]) -> ApplyRequest:
    """The request in the rules' terms: the targets that were found (``ids`` in input order)."""
    return ApplyRequest(
        effective_date=data.effective_date,
        rule=data.rule,
        targets=tuple(
            _target_amount(t, pk) for t, pk in zip(data.targets, ids, strict=True) if pk is not None
        ),
    )


def _target_amount(t: TargetInput, pk: int) -> TargetAmount:
    items = None
    if t.items is not None:
        items = tuple(
            ItemAmount(
                target_item_id=_pk(i.target_item, ("InvoiceItem", "DebitMemoItem")),
                amount=i.amount,  # type: ignore[arg-type]
                source_item_id=_pk(i.source_item, ("CreditMemoItem",)) if i.source_item else None,
                raw_target_item_id=i.target_item,
                raw_source_item_id=i.source_item,
            )
            for i in t.items
        )
    return TargetAmount(kind=t.kind, target_id=pk, amount=t.amount, items=items, field=t.field)  # type: ignore[arg-type]


def _pk(raw: str, types: tuple[str, ...]) -> int | None:
    decoded = decode(raw)
    return decoded[1] if decoded is not None and decoded[0] in types else None


async def memo_move_once(
    db: Database,
    claim: idempotency.Claim | None,
    memo: Ref,
    move: Callable[[AsyncConnection], Awaitable[Outcome]],
    commits: Commits | None,
) -> Outcome:
    """A credit memo's own move (reverse, write-off, refund): one write transaction, at most once per
    idempotency key, in the memo's line (``Database.write``)."""
    return await idempotency.write_once(
        db,
        claim,
        move,
        dump=Outcome.as_json,
        load=Outcome.from_json,
        queue=(CREDIT_MEMO, memo.raw),
        commits=commits,
    )
