"""Settlement use cases: apply / unapply (credit memos and payments), reverse, write off, refund.

Each runs in one write transaction: idempotency key → lock source → resolve and lock targets in id
order → check limits from counts → load → rules → save parts, item parts, application, event → key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import idempotency, ledger
from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import Ref, decode
from gateway.services.documents import SYSTEM, Actor, today
from gateway.settlement import engine, finality
from gateway.settlement import errors as e
from gateway.settlement.documents import PlannedItem as NewPlannedItem
from gateway.settlement.limits import check_apply_counts, check_reversal_counts, check_unapply_counts
from gateway.settlement.model import (
    CREDIT_MEMO,
    ApplyRequest,
    ItemAmount,
    Movement,
    Settlement,
    TargetAmount,
)
from gateway.settlement.money import positive_minor


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

    def as_json(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "application_id": self.application_id,
            "debit_memo_id": self.debit_memo_id,
            "rule": self.rule,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            data["source_id"],
            data["application_id"],
            data["debit_memo_id"],
            data["rule"],
            tuple(tuple(w) for w in data["warnings"]),
        )


def _source_field(kind: str) -> tuple[str, ...]:
    return ("creditMemoId",) if kind == CREDIT_MEMO else ("paymentId",)


async def settle(
    db: Database,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor = SYSTEM,
    preview: bool = False,
) -> Outcome:
    operation = f"{'unapply' if unapply else 'apply'}:{data.source_kind}"
    claim = idempotency.claim(
        data.idempotency_key, caller=actor.name or "", operation=operation, request=_request_json(data)
    )

    async def run(conn: AsyncConnection) -> Outcome:
        if claim is not None and not preview:
            remembered = await idempotency.replay(conn, claim)
            if remembered is not None:
                return Outcome.from_json(remembered)
        outcome = await _settle(conn, settings, data, unapply=unapply, actor=actor, write=not preview)
        if claim is not None and not preview:
            await idempotency.remember(conn, claim, outcome.as_json())
        return outcome

    if preview:
        async with db.connect() as conn:
            return await run(conn)
    return await db.write(run)


Progress = Callable[[float], Awaitable[None]]


async def _settle(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor,
    write: bool,
    async_: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    src_row = (
        await ledger.lock_source(conn, data.source_kind, data.source, _source_field(data.source_kind))
        if write
        else await s.find(
            conn,
            s.credit_memo_t if data.source_kind == CREDIT_MEMO else s.payment_t,
            data.source,
            s.LABELS[data.source_kind],
            field=_source_field(data.source_kind),
        )
    )
    # Unknown targets are reported together with whatever else is wrong with the known ones.
    ids, problems = await ledger.resolve_targets(conn, [(t.kind, t.ref, t.field) for t in data.targets])
    try:
        outcome = await _settle_known(
            conn,
            settings,
            data,
            src_row,
            ids,
            unapply=unapply,
            actor=actor,
            write=write,
            async_=async_,
            progress=progress,
        )
    except e.Rejected as rejected:
        rest = [v for v in rejected.errors if not (problems and isinstance(v, e.NoTargets))]
        raise e.Rejected(problems + rest) from None
    if problems:  # the transaction is rolled back: nothing of a refused request is written
        raise e.Rejected(problems)
    return outcome


async def _settle_known(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    src_row: Any,
    ids: list[int | None],
    *,
    unapply: bool,
    actor: Actor,
    write: bool,
    async_: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    limits = settings.limits
    target_ids = [i for i in ids if i is not None]
    if unapply and not data.targets:
        target_ids = sorted(
            {p.target_id for p in await ledger.existing_item_parts(conn, data.source_kind, src_row.id, None)}
        )
    await _check_limits_from_counts(
        conn, data, src_row.id, target_ids, unapply=unapply, settings=settings, async_=async_
    )
    rows = await ledger.lock_targets(conn, target_ids) if write else await _read_targets(conn, target_ids)
    loading = None if progress is None else (lambda fraction: progress(0.4 * fraction))
    targets = await ledger.load_targets(conn, rows, progress=loading)
    source = await ledger.load_source(conn, data.source_kind, src_row)
    request = ApplyRequest(
        effective_date=data.effective_date,
        rule=data.rule,
        targets=tuple(
            _target_amount(t, pk) for t, pk in zip(data.targets, ids, strict=True) if pk is not None
        ),
    )
    common: dict[str, Any] = {
        "default_rule": settings.default_application_rule,
        "limits": limits,
        "today": today(),
        "async_": async_,
    }
    if unapply:
        existing = await ledger.existing_item_parts(conn, data.source_kind, source.id, target_ids)
        result = engine.unapply(
            source,
            targets,
            existing,
            request,
            proration_guard=limits.proration_product_async if async_ else limits.proration_product_unapply,
            **common,
        )
    else:
        result = engine.apply(
            source,
            targets,
            request,
            proration_guard=limits.proration_product_async if async_ else limits.proration_product_apply,
            **common,
        )
    if progress is not None:
        await progress(0.6)  # computed
    warnings = tuple((w.code, w.message) for w in result.warnings)
    if not write:
        return Outcome(
            source.id,
            rule=result.rule,
            warnings=warnings,
            movements=result.movements,
            currency=source.currency,
        )
    kind = "UNAPPLY" if unapply else "APPLY"
    saving = None if progress is None else (lambda fraction: progress(0.6 + 0.4 * fraction))
    application_id = await ledger.save_settlement(
        conn,
        source=source,
        settlement=result,
        kind=kind,
        sign=-1 if unapply else 1,
        created_by=actor.name,
        progress=saving,
    )
    await _event(
        conn,
        "UNAPPLIED" if unapply else "APPLIED",
        source.kind,
        source.id,
        source.account_id,
        application_id,
        actor,
    )
    return Outcome(source.id, application_id, None, result.rule, warnings, result.movements)


async def _read_targets(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Any]:
    rows = (await conn.execute(select(s.receivable_t).where(s.receivable_t.c.id.in_(set(ids))))).all()
    return {r.id: r for r in rows}


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


async def _check_limits_from_counts(
    conn: AsyncConnection,
    data: SettleInput,
    source_id: int,
    target_ids: Sequence[int],
    *,
    unapply: bool,
    settings: Settings,
    async_: bool = False,
) -> None:
    """Limits from COUNTs, before a single item row is read: a request over TOTAL_ITEMS is refused
    without loading its 15,000 items."""
    limits = settings.limits
    named_sources = {i.source_item for t in data.targets for i in t.items or () if i.source_item}
    all_named = bool(data.targets) and all(
        t.items is not None and all(i.source_item for i in t.items) for t in data.targets
    )
    specified = {t.field: len(t.items) for t in data.targets if t.items is not None}
    documents = len(data.targets) if data.targets else len(target_ids)
    invoices = sum(1 for t in data.targets if t.kind == "INVOICE")
    if unapply:
        parts, memo_items, target_items = await _applied_counts(conn, data.source_kind, source_id, target_ids)
        errors = check_unapply_counts(
            limits=limits,
            documents=documents,
            invoices=invoices,
            specified_items=specified,
            specified_source_items=len(named_sources),
            item_parts=parts,
            total_items=memo_items + target_items,
            async_=async_,
        )
    else:
        resolved, _ = await ledger.resolve_targets(conn, [(t.kind, t.ref, t.field) for t in data.targets])
        unnamed = {
            pk: t for t, pk in zip(data.targets, resolved, strict=True) if pk is not None and t.items is None
        }
        open_counts = await ledger.open_item_counts(conn, list(unnamed)) if unnamed else {}
        item_counts = await _item_counts(conn, list(unnamed))
        memo_items = (
            len(named_sources)
            if all_named
            else (
                await ledger.open_memo_item_count(conn, source_id) if data.source_kind == CREDIT_MEMO else 0
            )
        )
        target_items = sum(open_counts.get(pk, 0) for pk in unnamed) + sum(
            len({i.target_item for i in t.items}) for t in data.targets if t.items is not None
        )
        errors = check_apply_counts(
            limits=limits,
            documents=documents,
            invoices=invoices,
            items_per_target={t.field: item_counts.get(pk, 0) for pk, t in unnamed.items()},
            specified_items=specified,
            specified_source_items=len(named_sources),
            total_items=memo_items + target_items,
            async_=async_,
        )
    if errors:
        raise e.Rejected(errors)


async def _item_counts(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = (
        await conn.execute(
            select(s.receivable_t.c.id, s.receivable_t.c.item_count).where(s.receivable_t.c.id.in_(ids))
        )
    ).all()
    return {pk: n for pk, n in rows}


async def _applied_counts(
    conn: AsyncConnection, kind: str, source_id: int, target_ids: Sequence[int]
) -> tuple[int, int, int]:
    p, ip = s.part_t, s.item_part_t
    owner = p.c.credit_memo_id if kind == CREDIT_MEMO else p.c.payment_id
    stmt = (
        select(
            func.count(),
            func.count(ip.c.credit_memo_item_id.distinct()),
            func.count(ip.c.target_item_id.distinct()),
        )
        .select_from(ip.join(p, p.c.id == ip.c.part_id))
        .where(owner == source_id, ip.c.amount > 0, p.c.target_id.in_(set(target_ids)))
    )
    parts, memo_items, target_items = (await conn.execute(stmt)).one()
    return int(parts), int(memo_items), int(target_items)


async def _event(
    conn: AsyncConnection,
    kind: str,
    source_kind: str,
    source_id: int,
    account_id: int,
    application_id: int | None,
    actor: Actor,
) -> None:
    memo = source_kind == CREDIT_MEMO
    await s.add_event(
        conn,
        kind,
        account_id=account_id,
        credit_memo_id=source_id if memo else None,
        payment_id=None if memo else source_id,
        application_id=application_id,
        occurred_at=datetime.now(UTC),
        created_by=actor.name,
    )


def _request_json(data: SettleInput) -> dict[str, Any]:
    return {
        "source": data.source.raw,
        "date": str(data.effective_date),
        "rule": data.rule,
        "targets": [
            [
                t.kind,
                t.ref.raw,
                str(t.amount),
                None if t.items is None else [[i.target_item, str(i.amount), i.source_item] for i in t.items],
            ]
            for t in data.targets
        ],
    }


# ---------------------------------------------------------------- reverse, write-off, refund


async def reverse_or_write_off(
    db: Database,
    settings: Settings,
    *,
    memo: Ref,
    write_off: bool,
    memo_date: date | None,
    apply_date: date | None = None,
    reason_code: str | None = None,
    comment: str | None = None,
    idempotency_key: str | None = None,
    actor: Actor = SYSTEM,
) -> Outcome:
    operation = "write_off" if write_off else "reverse"
    claim = idempotency.claim(
        idempotency_key,
        caller=actor.name or "",
        operation=operation,
        request=[memo.raw, str(memo_date), str(apply_date), reason_code, comment],
    )

    async def run(conn: AsyncConnection) -> Outcome:
        if claim is not None and (remembered := await idempotency.replay(conn, claim)) is not None:
            return Outcome.from_json(remembered)
        row = await ledger.lock_source(conn, CREDIT_MEMO, memo, ("creditMemoId",))
        if not write_off and row.item_count > settings.limits.reversal_items:
            raise e.Rejected(check_reversal_counts(limits=settings.limits, items=row.item_count))
        source = await ledger.load_source(conn, CREDIT_MEMO, row)
        if write_off:
            plan = engine.plan_write_off(source, today=today(), memo_date=memo_date, reason_code=reason_code)
        else:
            plan = engine.plan_reverse(
                source,
                limits=settings.limits,
                today=today(),
                memo_date=memo_date,
                apply_date=apply_date,
                reason_code=reason_code,
            )
        (number,) = await s.reserve_numbers(conn, "DEBIT_MEMO")
        now = datetime.now(UTC)
        dm = await s.insert_row(
            conn,
            s.receivable_t,
            kind="DEBIT_MEMO",
            number=number,
            account_id=source.account_id,
            status="POSTED",
            currency=source.currency,
            doc_date=plan.memo_date,
            amount=plan.amount,
            balance=plan.amount,
            item_count=len(plan.items),
            reason_code=plan.reason_code,
            comment=comment,
            referred_credit_memo_id=source.id,
            created_at=now,
            posted_at=now,
        )
        planned = [
            NewPlannedItem(
                seq=n, kind=i.kind, parent_seq=i.parent_index, amount=i.amount, sku=None, description=None
            )
            for n, i in enumerate(plan.items)
        ]
        item_ids = await s.insert_items(
            conn,
            s.receivable_item_t,
            {"receivable_id": dm, "doc_kind": "DEBIT_MEMO", "currency": source.currency},
            planned,
            {"amount": "amount", "balance": "amount"},
        )
        moves = tuple(
            Movement(m.source_item_id, dm, item_ids[m.item_index], m.amount) for m in plan.movements
        )
        result = Settlement(None, moves, plan.amount, plan.apply_date)
        kind = "WRITE_OFF" if write_off else "REVERSE"
        application_id = await ledger.save_settlement(
            conn, source=source, settlement=result, kind=kind, sign=1, created_by=actor.name, debit_memo_id=dm
        )
        if not write_off:
            await s.set_values(conn, s.credit_memo_t, source.id, reversed=True)
        await _event(
            conn,
            "WRITTEN_OFF" if write_off else "REVERSED",
            CREDIT_MEMO,
            source.id,
            source.account_id,
            application_id,
            actor,
        )
        outcome = Outcome(source.id, application_id, dm)
        if claim is not None:
            await idempotency.remember(conn, claim, outcome.as_json())
        return outcome

    return await db.write(run)


async def refund(
    db: Database,
    settings: Settings,
    *,
    memo: Ref,
    amount: Decimal | str,
    refund_date: date | None,
    method: str | None = None,
    idempotency_key: str | None = None,
    actor: Actor = SYSTEM,
) -> Outcome:
    claim = idempotency.claim(
        idempotency_key,
        caller=actor.name or "",
        operation="refund",
        request=[memo.raw, str(amount), str(refund_date), method],
    )

    async def run(conn: AsyncConnection) -> Outcome:
        if claim is not None and (remembered := await idempotency.replay(conn, claim)) is not None:
            return Outcome.from_json(remembered)
        row = await ledger.lock_source(conn, CREDIT_MEMO, memo, ("creditMemoId",))
        source = await ledger.load_source(conn, CREDIT_MEMO, row)
        result = engine.refund(source, amount, limits=settings.limits, today=today(), refund_date=refund_date)  # type: ignore[arg-type]
        by_item = dict(result.items)
        await ledger.add_amounts(
            conn, s.credit_memo_item_t, {"refund_amount": 1, "unapplied_amount": -1}, by_item
        )
        await ledger.add_amounts(
            conn, s.credit_memo_t, {"refund_amount": 1, "unapplied_amount": -1}, {source.id: result.total}
        )
        await ledger.add_to_unapplied_part(conn, source.id, -result.total)
        application_id = await s.insert_row(
            conn,
            s.application_t,
            kind="REFUND",
            account_id=source.account_id,
            effective_date=result.refund_date,
            amount=result.total,
            currency=source.currency,
            rule=None,
            credit_memo_id=source.id,
            created_by=actor.name,
            created_at=datetime.now(UTC),
        )
        await ledger.write_lines(
            conn, application_id, source.currency, ((i, None, None, a) for i, a in result.items)
        )
        await _event(conn, "REFUNDED", CREDIT_MEMO, source.id, source.account_id, application_id, actor)
        outcome = Outcome(source.id, application_id)
        if claim is not None:
            await idempotency.remember(conn, claim, outcome.as_json())
        return outcome

    return await db.write(run)


async def validate_async(
    conn: AsyncConnection, settings: Settings, data: SettleInput, *, unapply: bool
) -> tuple[int, int, int]:
    """What an async request can be refused for before it is queued, from counts and document rows
    only: the source (exists, POSTED), the targets (exist, POSTED, same account and currency), the
    amounts (format, precision, positive) and the async limits. Returns (source id, account id,
    items the job will touch)."""
    src = await ledger.lock_source(conn, data.source_kind, data.source, _source_field(data.source_kind))
    ids, problems = await ledger.resolve_targets(conn, [(t.kind, t.ref, t.field) for t in data.targets])
    target_ids = [i for i in ids if i is not None]
    if unapply and not data.targets:
        target_ids = sorted(
            {p.target_id for p in await ledger.existing_item_parts(conn, data.source_kind, src.id, None)}
        )
    errors: list[e.RuleViolation] = list(problems)
    if src.status != "POSTED":
        errors.append(
            e.InvalidStatus(
                f"{src.number} is {src.status}, not POSTED", field=_source_field(data.source_kind)
            )
        )
    rows = await _read_targets(conn, target_ids)
    named = [(t.field, pk) for t, pk in zip(data.targets, ids, strict=True) if pk is not None]
    referred = [(f, getattr(rows.get(pk), "referred_credit_memo_id", None)) for f, pk in named]
    operation, reversed = "unapplied" if unapply else "applied", bool(getattr(src, "reversed", False))
    errors += finality.refusals(
        data.source_kind,
        src.id,
        src.number,
        reversed=reversed,
        operation=operation,
        targets=referred or [((), r.referred_credit_memo_id) for r in rows.values()],
    )
    for t, pk in zip(data.targets, ids, strict=True):
        row = rows.get(pk) if pk is not None else None
        if row is None:
            continue
        if row.status != "POSTED":
            errors.append(e.InvalidStatus(f"{row.number} is {row.status}, not POSTED", field=t.field))
        if row.account_id != src.account_id:
            errors.append(e.AccountMismatch(f"{row.number} belongs to another account", field=t.field))
        if row.currency != src.currency:
            errors.append(
                e.CurrencyMismatch(f"{row.number} is in {row.currency}, not {src.currency}", field=t.field)
            )
        for j, item in enumerate(t.items or ()):
            try:
                positive_minor(item.amount, src.currency, field=(*t.field, "items", str(j), "amount"))
            except e.RuleViolation as v:
                errors.append(v)
        try:
            positive_minor(t.amount, src.currency, field=(*t.field, "amount"))
        except e.RuleViolation as v:
            errors.append(v)
    try:
        await _check_limits_from_counts(
            conn, data, src.id, target_ids, unapply=unapply, settings=settings, async_=True
        )
    except e.Rejected as rejected:
        errors += rejected.errors
    if errors:
        raise e.Rejected(errors)
    return (
        int(src.id),
        int(src.account_id),
        await _items_involved(conn, data, src.id, target_ids, unapply=unapply),
    )


async def _items_involved(
    conn: AsyncConnection, data: SettleInput, source_id: int, target_ids: Sequence[int], *, unapply: bool
) -> int:
    if unapply:
        parts, memo_items, target_items = await _applied_counts(conn, data.source_kind, source_id, target_ids)
        return memo_items + target_items
    open_counts = await ledger.open_item_counts(conn, list(target_ids)) if target_ids else {}
    memo_items = await ledger.open_memo_item_count(conn, source_id) if data.source_kind == CREDIT_MEMO else 0
    return memo_items + sum(open_counts.values())


def input_to_json(data: SettleInput) -> dict[str, Any]:
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


def input_from_json(d: dict[str, Any]) -> SettleInput:
    from gateway.ids import Ref

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


async def settle_in_job(
    conn: AsyncConnection,
    settings: Settings,
    data: SettleInput,
    *,
    unapply: bool,
    actor: Actor,
    progress: Progress,
) -> Outcome:
    """The job's run: the same rules and writes as a synchronous settle, with the async limits."""
    return await _settle(
        conn, settings, data, unapply=unapply, actor=actor, write=True, async_=True, progress=progress
    )
