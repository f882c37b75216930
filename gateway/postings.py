"""Settlement writes: move money set-based (one executemany per table), write the immutable
application with its lines, the settlement event, the parts. Every statement of the write half of
a settlement lives here; ``ledger`` holds the reads."""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Dialect,
    Insert,
    Row,
    Table,
    bindparam,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import store as s
from gateway.settlement.model import CREDIT_MEMO, Movement, Refund, Settlement, Source


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
) -> Saved:
    """Move the money of ``settlement`` (``sign`` +1 apply, −1 unapply) and write its immutable
    application with one line per movement. Returns the application's and the source's rows as
    written (``RETURNING``: no statement of its own)."""
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
    moved = await _move_source(
        conn, source, total * sign, settlement.effective_date if kind == "APPLY" else None
    )
    await _move_parts(conn, source, moves, by_target, sign, now, ticker)

    application = await s.insert_returning_row(
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
        application.id,
        source.currency,
        ((m.source_item_id, m.target_id, m.target_item_id, m.amount) for m in moves),
        ticker,
    )
    await add_event(conn, EVENTS[kind], source, application.id, created_by)
    return Saved(application, moved, (s.credit_memo_t if memo else s.payment_t).name)


class Saved(NamedTuple):
    application: Row[Any]  # the application as inserted
    source: Row[Any]  # the credit memo or payment after the move
    source_table: str

    def written(self) -> tuple[tuple[str, Row[Any]], ...]:
        """(table name, row) of each row the move wrote and returned."""
        return ((s.application_t.name, self.application), (self.source_table, self.source))


EVENTS = {
    "APPLY": "APPLIED",
    "UNAPPLY": "UNAPPLIED",
    "REVERSE": "REVERSED",
    "WRITE_OFF": "WRITTEN_OFF",
    "REFUND": "REFUNDED",
}


async def add_event(
    conn: AsyncConnection, kind: str, source: Source, application_id: int | None, created_by: str | None
) -> None:
    memo = source.kind == CREDIT_MEMO
    await s.add_event(
        conn,
        kind,
        account_id=source.account_id,
        credit_memo_id=source.id if memo else None,
        payment_id=None if memo else source.id,
        application_id=application_id,
        occurred_at=datetime.now(UTC),
        created_by=created_by,
    )


async def _move_source(
    conn: AsyncConnection, source: Source, delta: int, applied_on: date | None
) -> Row[Any]:
    """applied += delta, unapplied -= delta; an APPLY also keeps ``latest_applied_on``. Returns the
    source's row as updated."""
    stmt = _source_update(source.kind, applied_on is not None)
    return (await conn.execute(stmt, {"b_id": source.id, "b_delta": delta, "b_day": applied_on})).one()


@functools.cache
def _source_update(kind: str, applied: bool) -> Any:
    t = s.credit_memo_t if kind == CREDIT_MEMO else s.payment_t
    delta: Any = bindparam("b_delta")
    values: dict[str, Any] = {
        "applied_amount": t.c.applied_amount + delta,
        "unapplied_amount": t.c.unapplied_amount - delta,
    }
    if applied:
        latest, day = t.c.latest_applied_on, bindparam("b_day", type_=t.c.latest_applied_on.type)
        values["latest_applied_on"] = case((or_(latest.is_(None), latest < day), day), else_=latest)
    return update(t).where(t.c.id == bindparam("b_id")).values(**values).returning(*t.c)


async def write_lines(
    conn: AsyncConnection,
    application_id: int,
    currency: str,
    lines: Iterable[tuple[int | None, int | None, int | None, int]],
    ticker: Ticker | None = None,
) -> None:
    rows = (
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
    )
    await (ticker or Ticker()).many(conn, _insert(s.application_line_t), rows)


CHUNK = 2_000


class Ticker:
    """Counts rows written, chunk by chunk, and reports the fraction done (job progress)."""

    def __init__(self, total: int = 1, report: Any = None) -> None:
        self.total, self.done, self.report = max(total, 1), 0, report

    async def many(
        self, conn: AsyncConnection, stmt: Any, rows: Iterable[dict[str, Any]], *, as_arrays: bool = False
    ) -> None:
        """``stmt`` for every row, a chunk at a time: an executemany, or with ``as_arrays`` one
        execution whose parameters are the chunk's columns as arrays. ``rows`` is consumed a chunk
        at a time: a generator keeps one chunk of parameters in memory, not 300,000."""
        it = iter(rows)
        while chunk := list(itertools.islice(it, CHUNK)):
            if as_arrays:
                await conn.execute(stmt, {k: [r[k] for r in chunk] for k in chunk[0]})
            elif columns := _as_columns(conn.dialect, stmt, tuple(chunk[0])):
                await conn.exec_driver_sql(columns, tuple([r[k] for r in chunk] for k in chunk[0]))
            elif plain := _plain(conn.dialect, stmt, tuple(chunk[0])):
                sql, names = plain
                await conn.exec_driver_sql(sql, [tuple(map(r.__getitem__, names)) for r in chunk])
            else:
                await conn.execute(stmt, chunk)
            self.done += len(chunk)
            if self.report is not None:
                await self.report(min(1.0, self.done / self.total))


@functools.cache
def _insert(table: Table) -> Any:
    return table.insert()


@functools.lru_cache(maxsize=64)
def _as_columns(dialect: Dialect, stmt: Any, keys: tuple[str, ...]) -> str | None:
    """On PostgreSQL, an ``INSERT`` of rows with ``keys`` (no ``RETURNING``) as one statement whose
    parameters are the chunk's columns as arrays: ``INSERT … SELECT * FROM unnest($1::integer[],
    …)``. One parameter per column instead of one per value: no per-row parameter processing in
    SQLAlchemy, and asyncpg encodes each column in one go."""
    if dialect.name != "postgresql" or not isinstance(stmt, Insert) or stmt._returning:  # noqa: SLF001
        return None
    table = stmt.table
    if any(k not in table.c for k in keys):
        return None
    converts = any(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys)
    defaulted = any(c.default is not None and c.key not in keys for c in table.c)  # computed in Python
    if converts or defaulted:
        return None
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(f"${n}::{table.c[k].type.compile(dialect=dialect)}[]" for n, k in enumerate(keys, 1))
    return f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, keys))}) SELECT * FROM unnest({arrays})"


@functools.lru_cache(maxsize=64)
def _plain(dialect: Dialect, stmt: Any, keys: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """``stmt`` compiled once for rows with ``keys``, as the driver's SQL and the order of its
    positional parameters, when the rows can go to the driver as they are: SQLite (an executemany
    runs in the database, without round trips, so a chunk needs no multi-row form), every
    parameter is a row's value (no constants, no column defaults computed in Python) and no type
    converts a value on the way in. A chunk then costs the driver's executemany, not SQLAlchemy's
    per-row parameter processing (~40% of a 15,000-item apply). ``None``: execute it as usual."""
    if dialect.name != "sqlite":
        return None
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors  # noqa: SLF001 - the converters SQLAlchemy would apply
    if (
        not compiled.positional
        or set(names) - set(keys)
        or any(n in processors for n in names)
        or getattr(compiled, "insert_prefetch", None)
        or getattr(compiled, "update_prefetch", None)
    ):
        return None
    return compiled.string, names


async def add_amounts(
    conn: AsyncConnection,
    table: Table,
    columns: dict[str, int],
    amounts: dict[int, int],
    ticker: Ticker | None = None,
) -> None:
    """``column += factor × amount`` for every row id in ``amounts``, in chunks: on PostgreSQL one
    ``UPDATE … FROM unnest(ids, amounts)`` per chunk (one round trip, one plan, instead of a
    statement per row), on SQLite an executemany (no round trips to save)."""
    if not amounts:
        return
    rows = ({"b_id": pk, "b_amount": amount} for pk, amount in amounts.items())
    if conn.dialect.name == "postgresql":
        stmt = _add_from_arrays(table, tuple(columns.items()))
        await (ticker or Ticker()).many(conn, stmt, rows, as_arrays=True)
        return
    await (ticker or Ticker()).many(conn, _add(table, tuple(columns.items())), rows)


@functools.cache
def _add(table: Table, columns: tuple[tuple[str, int], ...]) -> Any:
    # the factor (±1) is written into the SQL: a parameter for it would have to be sent with every row
    values = {
        col: table.c[col] + literal_column(str(factor), BigInteger) * bindparam("b_amount")
        for col, factor in columns
    }
    return update(table).where(table.c.id == bindparam("b_id")).values(**values)


@functools.cache
def _add_from_arrays(table: Table, columns: tuple[tuple[str, int], ...]) -> Any:
    """The set-based form of ``_add`` (PostgreSQL). Rows are the locked documents' own (their
    items, parts): the documents' locks, taken in id order, already order any two writers."""
    array = ARRAY(BigInteger)
    moved = (
        func.unnest(bindparam("b_id", type_=array), bindparam("b_amount", type_=array))
        .table_valued(column("id", BigInteger), column("amount", BigInteger))
        .render_derived(name="moved")
    )
    values = {col: table.c[col] + factor * moved.c.amount for col, factor in columns}
    return update(table).where(table.c.id == moved.c.id).values(**values)


@functools.cache
def _parts(memo: bool) -> Any:
    """The source's parts on some targets and its unapplied part, with their item parts."""
    p, ip = s.part_t, s.item_part_t
    owner = p.c.credit_memo_id if memo else p.c.payment_id
    targets = p.c.target_id.in_(bindparam("targets", expanding=True))
    return (
        select(p.c.id, p.c.target_id, ip.c.id, ip.c.credit_memo_item_id, ip.c.target_item_id)
        .select_from(p.outerjoin(ip, ip.c.part_id == p.c.id))
        .where(owner == bindparam("owner"), or_(targets, p.c.target_id.is_(None)))
    )


async def _move_parts(
    conn: AsyncConnection,
    source: Source,
    moves: Sequence[Movement],
    by_target: dict[int, int],
    sign: int,
    now: datetime,
    ticker: Ticker | None = None,
) -> None:
    """The source's parts of these targets (and its unapplied part) with their item parts are read
    by one statement; new parts are inserted by one, amounts changed by one executemany each."""
    p, ip = s.part_t, s.item_part_t
    memo = source.kind == CREDIT_MEMO
    parts: dict[int | None, int] = {}
    existing: dict[tuple[int, int | None, int], int] = {}
    params = {"owner": source.id, "targets": list(by_target)}
    for part_id, target_id, item_part_id, src, item in (await conn.execute(_parts(memo), params)).all():
        parts[target_id] = part_id
        if item_part_id is not None:
            existing[(part_id, src, item)] = item_part_id
    missing = [t for t in by_target if t not in parts]
    if missing:
        rows = [
            {
                "credit_memo_id": source.id if memo else None,
                "payment_id": None if memo else source.id,
                "target_id": t,
                "currency": source.currency,
                "amount": 0,
                "created_at": now,
            }
            for t in missing
        ]
        result = await conn.execute(p.insert().returning(p.c.id, p.c.target_id), rows)
        parts.update({target: pk for pk, target in result.all()})
    deltas = {parts[t]: sign * a for t, a in by_target.items()}
    deltas[parts[None]] = -sign * sum(by_target.values())
    await add_amounts(conn, p, {"amount": 1}, deltas)

    # A settlement has one movement per (source item, target item), so each movement is either one
    # existing item part's change or one new item part: the new ones stream from the movements.
    changes: dict[int, int] = defaultdict(int)
    if existing:
        for m in moves:
            key = (parts[m.target_id], m.source_item_id, m.target_item_id)
            if key in existing:
                changes[existing[key]] += m.amount
    await add_amounts(conn, ip, {"amount": sign}, dict(changes), ticker)
    await (ticker or Ticker()).many(
        conn,
        _insert(ip),
        (
            {
                "part_id": parts[m.target_id],
                "credit_memo_item_id": m.source_item_id,
                "target_item_id": m.target_item_id,
                "currency": source.currency,
                "amount": sign * m.amount,
            }
            for m in moves
            # (a source's first settlement on these targets has no item parts: nothing to look up)
            if not existing or (parts[m.target_id], m.source_item_id, m.target_item_id) not in existing
        ),
    )


async def save_refund(
    conn: AsyncConnection, source: Source, refund: Refund, *, created_by: str | None
) -> int:
    """Take a refund out of the memo, its items and its unapplied part; write its application."""
    refunded = {"refund_amount": 1, "unapplied_amount": -1}
    await add_amounts(conn, s.credit_memo_item_t, refunded, dict(refund.items))
    await add_amounts(conn, s.credit_memo_t, refunded, {source.id: refund.total})
    p = s.part_t
    await conn.execute(
        update(p)
        .where(p.c.credit_memo_id == source.id, p.c.target_id.is_(None))
        .values(amount=p.c.amount - refund.total)
    )
    application_id = await s.insert_row(
        conn,
        s.application_t,
        kind="REFUND",
        account_id=source.account_id,
        effective_date=refund.refund_date,
        amount=refund.total,
        currency=source.currency,
        rule=None,
        credit_memo_id=source.id,
        created_by=created_by,
        created_at=datetime.now(UTC),
    )
    await write_lines(conn, application_id, source.currency, ((i, None, None, a) for i, a in refund.items))
    await add_event(conn, "REFUNDED", source, application_id, created_by)
    return application_id
