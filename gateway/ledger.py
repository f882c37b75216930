"""Settlement persistence: resolve and lock documents, count for limits, load rule state, save.

Locking order, everywhere: the credit memo or payment first, then its targets in ascending id
order (one ``SELECT … ORDER BY id FOR UPDATE``). Two requests therefore never wait on each other in
a cycle, and under READ COMMITTED every locked row is read in its latest committed version. On
SQLite the write transaction holds the database lock from ``BEGIN IMMEDIATE`` on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Row, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import scope
from gateway import store as s
from gateway.ids import Ref
from gateway.settlement import errors as e
from gateway.settlement.model import (
    CREDIT_MEMO,
    ExistingItemPart,
    Movement,
    Settlement,
    Source,
    SourceItem,
    Target,
    TargetItem,
)


async def lock_source(conn: AsyncConnection, kind: str, ref: Ref, field: Sequence[str]) -> Row[Any]:
    table = s.credit_memo_t if kind == CREDIT_MEMO else s.payment_t
    return await s.find(conn, table, ref, s.LABELS[kind], field=field, lock=True)


async def resolve_targets(
    conn: AsyncConnection, wanted: Sequence[tuple[str, Ref, tuple[str, ...]]]
) -> tuple[list[int | None], list[e.RuleViolation]]:
    """The receivable id each (kind, ref, field) names, or None with a NotFound at ``field + id``."""
    pks = {r.pk for _, r, _ in wanted if r.pk is not None and r.pk > 0}
    numbers = {r.number for _, r, _ in wanted if r.pk is None}
    found: dict[Any, Any] = {}  # ("id", pk) or ("number", number) -> row
    if pks:
        stmt = select(
            s.receivable_t.c.id, s.receivable_t.c.number, s.receivable_t.c.kind, s.receivable_t.c.account_id
        )
        for row in (await conn.execute(stmt.where(s.receivable_t.c.id.in_(pks)))).all():
            found[("id", row.id)] = row
    if numbers:
        stmt = select(
            s.receivable_t.c.id, s.receivable_t.c.number, s.receivable_t.c.kind, s.receivable_t.c.account_id
        )
        for row in (await conn.execute(stmt.where(s.receivable_t.c.number.in_(numbers)))).all():
            found[("number", row.number)] = row
    ids: list[int | None] = []
    problems: list[e.RuleViolation] = []
    for kind, r, field in wanted:
        hit = found.get(("id", r.pk) if r.pk is not None else ("number", r.number))
        if hit is None or hit.kind != kind or not scope.visible(hit.account_id):
            problems.append(e.NotFound(s.LABELS[kind], r.raw, field=(*field, "id")))
            ids.append(None)
        else:
            ids.append(int(hit.id))
    return ids, problems


async def lock_targets(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = select(s.receivable_t).where(s.receivable_t.c.id.in_(wanted)).order_by(s.receivable_t.c.id)
    rows = (await conn.execute(stmt.with_for_update())).all()
    return {row.id: row for row in rows}


async def open_item_counts(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, int]:
    """Items with something open per receivable (zero-balance items do not count for limits)."""
    t = s.receivable_item_t
    stmt = select(t.c.receivable_id, func.count()).where(t.c.receivable_id.in_(set(ids)), t.c.balance > 0)
    return {rid: n for rid, n in (await conn.execute(stmt.group_by(t.c.receivable_id))).all()}


async def open_memo_item_count(conn: AsyncConnection, memo_id: int) -> int:
    t = s.credit_memo_item_t
    stmt = select(func.count()).where(t.c.credit_memo_id == memo_id, t.c.unapplied_amount > 0)
    return int((await conn.execute(stmt)).scalar_one())


async def load_source(conn: AsyncConnection, kind: str, row: Row[Any]) -> Source:
    items: tuple[SourceItem, ...] = ()
    if kind == CREDIT_MEMO:
        t = s.credit_memo_item_t
        rows = (await conn.execute(select(t).where(t.c.credit_memo_id == row.id).order_by(t.c.seq))).all()
        items = tuple(
            SourceItem(
                r.id,
                r.seq,
                r.kind,
                r.parent_item_id,
                r.source_item_id,
                r.amount,
                r.applied_amount,
                r.unapplied_amount,
                r.refund_amount,
            )
            for r in rows
        )
    a = s.application_t
    owner = a.c.credit_memo_id if kind == CREDIT_MEMO else a.c.payment_id
    latest = await conn.scalar(
        select(func.max(a.c.effective_date)).where(owner == row.id, a.c.kind == "APPLY")
    )
    return Source(
        kind=kind,
        id=row.id,
        number=row.number,
        account_id=row.account_id,
        currency=row.currency,
        status=row.status,
        doc_date=row.memo_date if kind == CREDIT_MEMO else row.effective_date,
        amount=row.amount,
        applied=row.applied_amount,
        unapplied=row.unapplied_amount,
        refund=getattr(row, "refund_amount", 0),
        reversed=getattr(row, "reversed", False),
        items=items,
        latest_application_date=s.as_date(latest)
        if isinstance(latest, date | datetime)
        else _parse_date(latest),
    )


def _parse_date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


async def load_targets(
    conn: AsyncConnection, rows: dict[int, Row[Any]], *, with_items: bool = True, progress: Any = None
) -> dict[int, Target]:
    """Targets with their items, read in batches of documents (progress is reported per batch)."""
    items: dict[int, list[TargetItem]] = defaultdict(list)
    ids = list(rows)
    batch = 20
    for start in range(0, len(ids) if with_items else 0, batch):
        t = s.receivable_item_t
        stmt = (
            select(t)
            .where(t.c.receivable_id.in_(ids[start : start + batch]))
            .order_by(t.c.receivable_id, t.c.seq)
        )
        for r in (await conn.execute(stmt)).all():
            items[r.receivable_id].append(
                TargetItem(r.id, r.seq, r.kind, r.parent_item_id, r.amount, r.balance)
            )
        if progress is not None:
            await progress(min(1.0, (start + batch) / len(ids)))
    return {
        pk: Target(
            kind=r.kind,
            id=r.id,
            number=r.number,
            account_id=r.account_id,
            currency=r.currency,
            status=r.status,
            doc_date=r.doc_date,
            amount=r.amount,
            balance=r.balance,
            items=tuple(items[pk]),
            referred_credit_memo_id=getattr(r, "referred_credit_memo_id", None),
        )
        for pk, r in rows.items()
    }


async def existing_item_parts(
    conn: AsyncConnection, kind: str, source_id: int, target_ids: Sequence[int] | None
) -> list[ExistingItemPart]:
    p, ip = s.part_t, s.item_part_t
    owner = p.c.credit_memo_id if kind == CREDIT_MEMO else p.c.payment_id
    stmt = (
        select(ip.c.credit_memo_item_id, p.c.target_id, ip.c.target_item_id, ip.c.amount)
        .select_from(ip.join(p, p.c.id == ip.c.part_id))
        .where(owner == source_id, ip.c.amount > 0)
        .order_by(ip.c.id)
    )
    if target_ids is not None:
        stmt = stmt.where(p.c.target_id.in_(set(target_ids)))
    return [ExistingItemPart(a, b, c, d) for a, b, c, d in (await conn.execute(stmt)).all()]


async def save_settlement(
    conn: AsyncConnection,
    *,
    source: Source,
    settlement: Settlement,
    kind: str,
    sign: int,
    created_by: str | None,
    debit_memo_id: int | None = None,
    progress: Any = None,
) -> int:
    """Move the money of ``settlement`` (``sign`` +1 apply, −1 unapply) and write its immutable
    application with one line per movement. Returns the application id."""
    now = datetime.now(UTC)
    moves = settlement.movements
    by_target: dict[int, int] = defaultdict(int)
    by_target_item: dict[int, int] = defaultdict(int)
    by_source_item: dict[int, int] = defaultdict(int)
    for m in moves:
        by_target[m.target_id] += m.amount
        by_target_item[m.target_item_id] += m.amount
        if m.source_item_id is not None:
            by_source_item[m.source_item_id] += m.amount
    total = settlement.amount
    memo = source.kind == CREDIT_MEMO

    # rows to write: item balances, memo items, item parts, lines (progress runs over all of them)
    ticker = Ticker(len(by_target_item) + len(by_source_item) + 2 * len(moves), progress)
    await add_amounts(conn, s.receivable_item_t, {"balance": -sign}, by_target_item, ticker)
    await add_amounts(
        conn,
        s.receivable_t,
        {"balance": -sign, ("credit_memo_amount" if memo else "payment_amount"): sign},
        by_target,
    )
    if memo:
        await add_amounts(
            conn,
            s.credit_memo_item_t,
            {"applied_amount": sign, "unapplied_amount": -sign},
            by_source_item,
            ticker,
        )
    source_table = s.credit_memo_t if memo else s.payment_t
    await add_amounts(
        conn, source_table, {"applied_amount": sign, "unapplied_amount": -sign}, {source.id: total}
    )
    await _move_parts(conn, source, moves, by_target, sign, now, ticker)

    application_id = await s.insert_row(
        conn,
        s.application_t,
        kind=kind,
        account_id=source.account_id,
        effective_date=settlement.effective_date,
        amount=total,
        currency=source.currency,
        rule=settlement.rule,
        credit_memo_id=source.id if memo else None,
        payment_id=None if memo else source.id,
        debit_memo_id=debit_memo_id,
        created_by=created_by,
        created_at=now,
    )
    await write_lines(
        conn,
        application_id,
        source.currency,
        ((m.source_item_id, m.target_id, m.target_item_id, m.amount) for m in moves),
        ticker,
    )
    return application_id


async def write_lines(
    conn: AsyncConnection,
    application_id: int,
    currency: str,
    lines: Iterable[tuple[int | None, int | None, int | None, int]],
    ticker: Ticker | None = None,
) -> None:
    rows = [
        {
            "application_id": application_id,
            "seq": n,
            "credit_memo_item_id": src,
            "target_id": tgt,
            "target_item_id": item,
            "currency": currency,
            "amount": amount,
        }
        for n, (src, tgt, item, amount) in enumerate(lines)
    ]
    if rows:
        await (ticker or Ticker(len(rows))).many(conn, s.application_line_t.insert(), rows)


CHUNK = 2_000


class Ticker:
    """Counts rows written, chunk by chunk, and reports the fraction done (job progress)."""

    def __init__(self, total: int, report: Any = None) -> None:
        self.total, self.done, self.report = max(total, 1), 0, report

    async def many(self, conn: AsyncConnection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            await conn.execute(stmt, chunk)
            self.done += len(chunk)
            if self.report is not None:
                await self.report(min(1.0, self.done / self.total))


async def add_amounts(
    conn: AsyncConnection,
    table: Table,
    columns: dict[str, int],
    amounts: dict[int, int],
    ticker: Ticker | None = None,
) -> None:
    """``column += factor × amount`` for every row id in ``amounts``: executemany, in chunks."""
    if not amounts:
        return
    values = {col: table.c[col] + factor * bindparam("b_amount") for col, factor in columns.items()}
    stmt = update(table).where(table.c.id == bindparam("b_id")).values(**values)
    rows = [{"b_id": pk, "b_amount": amount} for pk, amount in amounts.items()]
    await (ticker or Ticker(len(rows))).many(conn, stmt, rows)


async def _move_parts(
    conn: AsyncConnection,
    source: Source,
    moves: Sequence[Movement],
    by_target: dict[int, int],
    sign: int,
    now: datetime,
    ticker: Ticker | None = None,
) -> None:
    p, ip = s.part_t, s.item_part_t
    memo = source.kind == CREDIT_MEMO
    owner = p.c.credit_memo_id if memo else p.c.payment_id
    parts = {
        r.target_id: r.id
        for r in (await conn.execute(select(p.c.id, p.c.target_id).where(owner == source.id))).all()
    }
    for target_id in by_target:
        if target_id not in parts:
            parts[target_id] = await s.insert_row(
                conn,
                p,
                credit_memo_id=source.id if memo else None,
                payment_id=None if memo else source.id,
                target_id=target_id,
                currency=source.currency,
                amount=0,
                created_at=now,
            )
    await add_amounts(conn, p, {"amount": sign}, {parts[t]: a for t, a in by_target.items()})
    await add_amounts(conn, p, {"amount": -sign}, {parts[None]: sum(by_target.values())})

    part_ids = [parts[t] for t in by_target]
    existing = {
        (r.part_id, r.credit_memo_item_id, r.target_item_id): r.id
        for r in (
            await conn.execute(
                select(ip.c.id, ip.c.part_id, ip.c.credit_memo_item_id, ip.c.target_item_id).where(
                    ip.c.part_id.in_(part_ids)
                )
            )
        ).all()
    }
    changes: dict[int, int] = defaultdict(int)
    new: dict[tuple[int, int | None, int], int] = defaultdict(int)
    for m in moves:
        key = (parts[m.target_id], m.source_item_id, m.target_item_id)
        if key in existing:
            changes[existing[key]] += m.amount
        else:
            new[key] += sign * m.amount
    await add_amounts(conn, ip, {"amount": sign}, dict(changes), ticker)
    if new:
        await (ticker or Ticker(len(new))).many(
            conn,
            ip.insert(),
            [
                {
                    "part_id": part,
                    "credit_memo_item_id": src,
                    "target_item_id": item,
                    "currency": source.currency,
                    "amount": amount,
                }
                for (part, src, item), amount in new.items()
            ],
        )


async def add_to_unapplied_part(conn: AsyncConnection, memo_id: int, delta: int) -> None:
    p = s.part_t
    await conn.execute(
        update(p)
        .where(p.c.credit_memo_id == memo_id, p.c.target_id.is_(None))
        .values(amount=p.c.amount + delta)
    )
