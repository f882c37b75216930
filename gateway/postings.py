"""Settlement writes: move money set-based (one executemany per table), write the immutable
application with its lines, the settlement event, the parts. Every statement of the write half of
a settlement lives here; ``ledger`` holds the reads."""

from __future__ import annotations

import functools
import itertools
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from types import SimpleNamespace
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway import direct
from gateway import store as s
from gateway.observability.requests import count_sql
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
    # a small move's writes go out together on PostgreSQL; a large one's chunk by chunk (progress)
    out = Writes(conn, together=progress is None and len(moves) <= CHUNK)

    # rows to write: item balances, memo items, item parts, lines (progress runs over all of them)
    ticker = Ticker(len(by_target_item) + len(by_source_item) + 2 * len(moves), progress)
    await add_amounts(out, s.receivable_item_t, {"balance": -sign}, by_target_item, ticker)
    await add_amounts(
        out,
        s.receivable_t,
        {"balance": -sign, ("credit_memo_amount" if memo else "payment_amount"): sign},
        by_target,
    )
    if memo:
        await add_amounts(
            out,
            s.credit_memo_item_t,
            {"applied_amount": sign, "unapplied_amount": -sign},
            by_source_item,
            ticker,
        )
    await _move_parts(out, source, moves, by_target, sign, now, ticker)

    application = {
        "kind": kind,
        "account_id": source.account_id,
        "effective_date": settlement.effective_date,
        "amount": total,
        "currency": source.currency,
        "rule": settlement.rule,
        "credit_memo_id": source.id if memo else None,
        "payment_id": None if memo else source.id,
        "debit_memo_id": debit_memo_id,
        "created_by": created_by,
        "created_at": now,
    }
    if out.together:  # inserted by the same statement as the rest, its lines and event take its id
        await out.execute(s.insert_returning_id(s.application_t), application, name=_APPLICATION)
        application_id = None
    else:
        written: Any = await s.insert_returning_row(conn, s.application_t, **application)
        application_id = written.id
    await write_lines(
        out,
        application_id,
        source.currency,
        ((m.source_item_id, m.target_id, m.target_item_id, m.amount) for m in moves),
        ticker,
    )
    await add_event(out, EVENTS[kind], source, application_id, created_by)
    # the source's own update is the last write, and returns its row: with it go the waiting ones
    applied_on = settlement.effective_date if kind == "APPLY" else None
    moved: Any = await _move_source(out, source, total * sign, applied_on)
    if application_id is None:  # the application as inserted: the values sent, and its id
        row = dict(moved._mapping)
        written = SimpleNamespace(id=row.pop(_APPLICATION_ID), **application)
        moved = SimpleNamespace(**row)
    return Saved(written, moved, (s.credit_memo_t if memo else s.payment_t).name)


class Saved(NamedTuple):
    application: Any  # the application as inserted (a row, or its values and id)
    source: Any  # the credit memo or payment after the move (its row)
    source_table: str

    def written(self) -> tuple[tuple[str, Any], ...]:
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
    out: Writes, kind: str, source: Source, application_id: int | None, created_by: str | None
) -> None:
    """``application_id`` None (``Writes.together``): the application of the same statement."""
    memo = source.kind == CREDIT_MEMO
    values = {
        "kind": kind,
        "account_id": source.account_id,
        "credit_memo_id": source.id if memo else None,
        "payment_id": None if memo else source.id,
        "created_by": created_by,
        "occurred_at": datetime.now(UTC),
    }
    if application_id is None and out.together:
        await out.execute(_event_of_this_application(), values)
        return
    await out.execute(_insert(s.event_t), {**values, "application_id": application_id})


# The application inserted by the same statement (``Writes.together``): a ``WITH`` part of its own.
_APPLICATION = "application_written"
_APPLICATION_ID = "application_written_id"
_THIS_APPLICATION = f"(SELECT id FROM {_APPLICATION})"


@functools.cache
def _event_of_this_application() -> Any:
    return s.event_t.insert().values(application_id=literal_column(_THIS_APPLICATION))


async def _move_source(out: Writes, source: Source, delta: int, applied_on: date | None) -> Row[Any]:
    """applied += delta, unapplied -= delta; an APPLY also keeps ``latest_applied_on``. Returns the
    source's row as updated (with ``Writes.together``, and the id of the application)."""
    stmt = _source_update(source.kind, applied_on is not None, out.together)
    return (await out.last(stmt, {"b_id": source.id, "b_delta": delta, "b_day": applied_on})).one()


@functools.cache
def _source_update(kind: str, applied: bool, application: bool = False) -> Any:
    t = s.credit_memo_t if kind == CREDIT_MEMO else s.payment_t
    delta: Any = bindparam("b_delta")
    values: dict[str, Any] = {
        "applied_amount": t.c.applied_amount + delta,
        "unapplied_amount": t.c.unapplied_amount - delta,
    }
    if applied:
        latest, day = t.c.latest_applied_on, bindparam("b_day", type_=t.c.latest_applied_on.type)
        values["latest_applied_on"] = case((or_(latest.is_(None), latest < day), day), else_=latest)
    extra: list[Any] = [literal_column(_THIS_APPLICATION).label(_APPLICATION_ID)] if application else []
    return update(t).where(t.c.id == bindparam("b_id")).values(**values).returning(*t.c, *extra)


async def write_lines(
    out: Writes,
    application_id: int | None,
    currency: str,
    lines: Iterable[tuple[int | None, int | None, int | None, int]],
    ticker: Ticker | None = None,
) -> None:
    """``application_id`` None (``Writes.together``): the application of the same statement."""
    of_this_statement = application_id is None and out.together
    given = {} if of_this_statement else {"application_id": application_id}
    rows = (
        {
            **given,
            "seq": n,
            "credit_memo_item_id": src,
            "target_id": tgt,
            "target_item_id": item,
            "currency": currency,
            "amount": amount,
        }
        for n, (src, tgt, item, amount) in enumerate(lines)
    )
    lead = ("application_id", _THIS_APPLICATION) if of_this_statement else None
    await (ticker or Ticker()).many(out, _insert(s.application_line_t), rows, lead=lead)


CHUNK = 2_000


class Writes:
    """Where a move sends its writes. Each runs at once, except on PostgreSQL with ``together``
    (a move of at most one chunk): then the writes wait here, and go out with the move's last
    write (``last``, the source's update) as one statement, each a data-modifying ``WITH`` of it.
    A single-item apply's ten writes are one round trip and one statement's overhead instead of
    ten.

    PostgreSQL runs every part of that statement to completion on one snapshot and checks foreign
    keys at its end, so the parts may come in any order, but for one: none reads another's rows,
    except what a named part returns (``execute(…, name=…)``, ``exec_driver_sql(…, name=…)``: the
    application, whose id its lines and event take; an apply's parts, whose ids its item parts
    take), and a name is read only by the parts after it. No two parts touch one row (a move
    changes a row once). A write that cannot be sent this way (its SQL needs SQLAlchemy's
    processing) runs at once: the waiting writes do not depend on it, nor it on them."""

    def __init__(self, conn: AsyncConnection, *, together: bool = False) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.together = together and conn.dialect.name == "postgresql"
        self.waiting: list[tuple[str, str, tuple[Any, ...]]] = []  # (name, SQL, values)

    async def execute(self, stmt: Any, params: dict[str, Any], *, name: str | None = None) -> None:
        """``name``: the part's name in the ``WITH``, for the later parts that read what it returns
        (a write that must wait, since they need it)."""
        driver = _driver_sql(self.dialect, stmt, tuple(params)) if self.together else None
        if driver is None or "'" in driver.sql:  # (a literal could hold a ``$``)
            if name is not None:
                raise ValueError(f"{name}: a named write goes out with the others")
            await direct.execute(self.conn, stmt, params)
            return
        self.waiting.append((name or f"w{len(self.waiting)}", driver.sql, driver.values(params)))

    async def exec_driver_sql(self, sql: str, params: tuple[Any, ...], *, name: str | None = None) -> None:
        """``sql`` in the driver's form (``$n``); ``name`` as for ``execute``."""
        if self.together and "'" not in sql:
            self.waiting.append((name or f"w{len(self.waiting)}", sql, params))
        elif name is not None:
            raise ValueError(f"{name}: a named write goes out with the others")
        else:
            await self.conn.exec_driver_sql(sql, params)

    async def last(self, stmt: Any, params: dict[str, Any]) -> Any:
        """``stmt`` (its result), with every waiting write."""
        if not self.waiting:
            return await direct.execute(self.conn, stmt, params)
        driver = _driver_sql(self.dialect, stmt, tuple(params))
        if driver is None or "'" in driver.sql:
            raise ValueError("the last write goes out with the waiting ones")
        values = [v for _, _, waiting in self.waiting for v in waiting]
        values.extend(driver.values(params))
        combined = _with(
            tuple((name, sql) for name, sql, _ in self.waiting),
            tuple(len(v) for _, _, v in self.waiting),
            driver.sql,
        )
        self.waiting.clear()
        return await direct.exec_driver_sql(self.conn, combined, tuple(values))


_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=256)
def _with(parts: tuple[tuple[str, str], ...], counts: tuple[int, ...], last: str) -> str:
    """``WITH name AS (part), … last``, each part's ``$n`` moved past the parameters before it."""

    def shifted(sql: str, by: int) -> str:
        return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + by}", sql)

    ctes, offset = [], 0
    for (name, sql), count in zip(parts, counts, strict=True):
        ctes.append(f"{name} AS ({shifted(sql, offset)})")
        offset += count
    return f"WITH {', '.join(ctes)} {shifted(last, offset)}"


class _DriverSQL(NamedTuple):
    sql: str
    names: tuple[str, ...]  # the parameter of each ``$n``, in order
    processors: dict[str, Any]  # SQLAlchemy's converters of those parameters' values

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        get = self.processors.get
        return tuple(p(params[n]) if (p := get(n)) else params[n] for n in self.names)


@functools.lru_cache(maxsize=256)
def _driver_sql(dialect: Dialect, stmt: Any, keys: tuple[str, ...], many: bool = False) -> _DriverSQL | None:
    """``stmt`` compiled once for parameters ``keys`` (``many``: for an executemany of rows with
    those keys), as the driver's SQL, when its parameters are positional and each is one of
    ``keys``: no value computed in Python (a column default, a constant), no list that expands.
    ``None``: execute it through SQLAlchemy."""
    compiled = direct.compile_for_driver(dialect, stmt, keys, many)
    if compiled is None:
        return None
    names = tuple(compiled.positiontup or ())
    if set(names) - set(keys) or compiled.post_compile_params:
        return None
    processors = compiled._bind_processors  # noqa: SLF001 - the converters SQLAlchemy would apply
    return _DriverSQL(compiled.string, names, {n: processors[n] for n in names if n in processors})


class Ticker:
    """Counts rows written, chunk by chunk, and reports the fraction done (job progress)."""

    def __init__(self, total: int = 1, report: Any = None) -> None:
        self.total, self.done, self.report = max(total, 1), 0, report

    async def many(
        self,
        out: Writes,
        stmt: Any,
        rows: Iterable[dict[str, Any]],
        *,
        as_arrays: bool = False,
        lead: tuple[str, str] | None = None,
    ) -> None:
        """``stmt`` for every row, a chunk at a time: an executemany, or with ``as_arrays`` one
        execution whose parameters are the chunk's columns as arrays. ``rows`` is consumed a chunk
        at a time: a generator keeps one chunk of parameters in memory, not 300,000."""
        it = iter(rows)
        while chunk := list(itertools.islice(it, CHUNK)):
            if as_arrays:
                await out.execute(stmt, {k: [r[k] for r in chunk] for k in chunk[0]})
            elif columns := _as_columns(out.dialect, stmt, tuple(chunk[0]), lead):
                if lead is None and not out.together and len(chunk) >= COPY_FROM_ROWS:
                    await _copy(out.conn, stmt.table, tuple(chunk[0]), chunk)
                else:
                    await out.exec_driver_sql(columns, tuple([r[k] for r in chunk] for k in chunk[0]))
            elif lead is not None:
                raise ValueError(f"{stmt.table.name}: a leading column needs the array form")
            elif plain := _plain(out.dialect, stmt, tuple(chunk[0])):
                names = plain.names
                await direct.executemany(
                    out.conn, plain.sql, [tuple(map(r.__getitem__, names)) for r in chunk]
                )
            else:
                await out.conn.execute(stmt, chunk)
            self.done += len(chunk)
            if self.report is not None:
                await self.report(min(1.0, self.done / self.total))


# A chunk of at least this many new rows goes to PostgreSQL by COPY (asyncpg's binary form) instead
# of ``INSERT … SELECT * FROM unnest(arrays)``: 10,000 item parts took 42 ms against 55–80 ms. Below
# it, COPY's extra messages cost more than they save.
COPY_FROM_ROWS = 500


async def _copy(
    conn: AsyncConnection, table: Table, keys: tuple[str, ...], chunk: list[dict[str, Any]]
) -> None:
    """``chunk``'s rows into ``table`` by one COPY, in the transaction of ``conn`` (PostgreSQL). The
    table's statement triggers run as for an INSERT (migration 0004's checks see the rows in their
    transition table). A failure is raised as SQLAlchemy raises a statement's, so retries and error
    handling see what they would have seen."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None or not driver.is_in_transaction():  # COPY would commit on its own
        raise RuntimeError(f"COPY into {table.name} outside a transaction")
    records = [tuple(map(row.__getitem__, keys)) for row in chunk]
    started = time.perf_counter()
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=keys)
        count_sql(time.perf_counter() - started)  # the request's log counts it as a statement
    except Exception as error:
        dbapi = conn.dialect.loaded_dbapi
        try:
            raw.dbapi_connection._handle_exception(error)  # type: ignore[union-attr]  # noqa: SLF001
        except dbapi.Error as translated:  # the driver's error as the DB-API error SQLAlchemy wraps
            raise DBAPIError.instance(f"COPY {table.name}", None, translated, dbapi.Error) from error
        raise


@functools.cache
def _insert(table: Table) -> Any:
    return table.insert()


@functools.lru_cache(maxsize=64)
def _as_columns(
    dialect: Dialect, stmt: Any, keys: tuple[str, ...], lead: tuple[str, str] | None = None
) -> str | None:
    """On PostgreSQL, an ``INSERT`` of rows with ``keys`` (no ``RETURNING``) as one statement whose
    parameters are the chunk's columns as arrays: ``INSERT … SELECT * FROM unnest($1::integer[],
    …)``. One parameter per column instead of one per value: no per-row parameter processing in
    SQLAlchemy, and asyncpg encodes each column in one go. ``lead``: a first column and the SQL of
    its value, the same in every row."""
    if dialect.name != "postgresql" or not isinstance(stmt, Insert) or stmt._returning:  # noqa: SLF001
        return None
    table = stmt.table
    if any(k not in table.c for k in keys) or (lead is not None and lead[0] in keys):
        return None
    converts = any(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys)
    given = {*keys, *(lead[:1] if lead else ())}
    defaulted = any(c.default is not None and c.key not in given for c in table.c)  # computed in Python
    if converts or defaulted:
        return None
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(f"${n}::{table.c[k].type.compile(dialect=dialect)}[]" for n, k in enumerate(keys, 1))
    columns, first = ", ".join(map(quote, keys)), ""
    if lead is not None:
        columns, first = f"{quote(lead[0])}, {columns}", f"{lead[1]}, "
    return f"INSERT INTO {quote(table.name)} ({columns}) SELECT {first}* FROM unnest({arrays})"


def _plain(dialect: Dialect, stmt: Any, keys: tuple[str, ...]) -> _DriverSQL | None:
    """``stmt`` as the driver's SQL for an executemany of rows with ``keys``, when the rows can go to
    the driver as they are: SQLite (an executemany runs in the database, without round trips, so a
    chunk needs no multi-row form), every parameter a row's value and no type converting a value
    on the way in. A chunk then costs the driver's executemany, not SQLAlchemy's per-row parameter
    processing (~40% of a 15,000-item apply). ``None``: execute it as usual."""
    if dialect.name != "sqlite":
        return None
    plain = _driver_sql(dialect, stmt, keys, many=True)
    return plain if plain is not None and not plain.processors else None


async def add_amounts(
    out: Writes,
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
    if out.dialect.name == "postgresql":
        stmt = _add_from_arrays(table, tuple(columns.items()))
        await (ticker or Ticker()).many(out, stmt, rows, as_arrays=True)
        return
    await (ticker or Ticker()).many(out, _add(table, tuple(columns.items())), rows)


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
    values = {
        col: table.c[col] + literal_column(str(factor), BigInteger) * moved.c.amount
        for col, factor in columns
    }
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
    out: Writes,
    source: Source,
    moves: Sequence[Movement],
    by_target: dict[int, int],
    sign: int,
    now: datetime,
    ticker: Ticker | None = None,
) -> None:
    """The source's parts of these targets (and its unapplied part) with their item parts are read
    by one statement; new parts are inserted by one, amounts changed by one executemany each. An
    apply whose writes go out together (PostgreSQL) reads nothing: ``_add_to_parts``."""
    if out.together and sign > 0:
        await _add_to_parts(out, source, moves, by_target, now)
        return
    conn = out.conn
    p, ip = s.part_t, s.item_part_t
    memo = source.kind == CREDIT_MEMO
    parts: dict[int | None, int] = {}
    existing: dict[tuple[int, int | None, int], int] = {}
    params = {"owner": source.id, "targets": list(by_target)}
    for part_id, target_id, item_part_id, src, item in (
        await direct.execute(conn, _parts(memo), params)
    ).all():
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
    await add_amounts(out, p, {"amount": 1}, deltas)

    # A settlement has one movement per (source item, target item), so each movement is either one
    # existing item part's change or one new item part: the new ones stream from the movements.
    changes: dict[int, int] = defaultdict(int)
    if existing:
        for m in moves:
            key = (parts[m.target_id], m.source_item_id, m.target_item_id)
            if key in existing:
                changes[existing[key]] += m.amount
    await add_amounts(out, ip, {"amount": sign}, dict(changes), ticker)
    await (ticker or Ticker()).many(
        out,
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


# The parts an apply's combined write added to or inserted (a part of its ``WITH``), with their targets
_PARTS_MOVED = "parts_moved"


async def _add_to_parts(
    out: Writes, source: Source, moves: Sequence[Movement], by_target: dict[int, int], now: datetime
) -> None:
    """An apply's parts and item parts, written without reading them first (``Writes.together``):
    each is added to, or inserted, by an upsert on its unique index (migration 0007), and the item
    parts take their part's id from the parts' upsert in the same statement. The unapplied part
    gives what the targets' parts take. (An unapply cannot go this way: its amounts are negative, and
    an insert's CHECK refuses the row it proposes before it looks for the conflict.)"""
    memo = source.kind == CREDIT_MEMO
    targets, amounts = list(by_target), list(by_target.values())
    await out.exec_driver_sql(
        _part_upsert(memo), (source.id, source.currency, now, targets, amounts), name=_PARTS_MOVED
    )
    await out.exec_driver_sql(_unapplied_part_update(memo), (sum(amounts), source.id))
    await out.exec_driver_sql(
        _ITEM_PART_UPSERT,
        (
            source.currency,
            [m.target_id for m in moves],
            [m.source_item_id for m in moves],
            [m.target_item_id for m in moves],
            [m.amount for m in moves],
        ),
    )


@functools.cache
def _part_upsert(memo: bool) -> str:
    owner = "credit_memo_id" if memo else "payment_id"
    return (
        f"INSERT INTO part ({owner}, target_id, currency, amount, created_at)"
        " SELECT $1::INTEGER, moved.target_id, $2::VARCHAR, moved.amount, $3::TIMESTAMP WITH TIME ZONE"
        " FROM unnest($4::INTEGER[], $5::BIGINT[]) AS moved(target_id, amount)"
        f" ON CONFLICT ({owner}, target_id) DO UPDATE SET amount = part.amount + excluded.amount"
        " RETURNING part.id, part.target_id"
    )


@functools.cache
def _unapplied_part_update(memo: bool) -> str:
    owner = "credit_memo_id" if memo else "payment_id"
    return (
        "UPDATE part SET amount = part.amount - $1::BIGINT"
        f" WHERE part.{owner} = $2::INTEGER AND part.target_id IS NULL"
    )


_ITEM_PART_UPSERT = (
    "INSERT INTO item_part (part_id, credit_memo_item_id, target_item_id, currency, amount)"
    f" SELECT {_PARTS_MOVED}.id, moved.source_item_id, moved.target_item_id, $1::VARCHAR, moved.amount"
    " FROM unnest($2::INTEGER[], $3::INTEGER[], $4::INTEGER[], $5::BIGINT[])"
    " AS moved(target_id, source_item_id, target_item_id, amount)"
    f" JOIN {_PARTS_MOVED} ON {_PARTS_MOVED}.target_id = moved.target_id"
    " ON CONFLICT (part_id, credit_memo_item_id, target_item_id)"
    " DO UPDATE SET amount = item_part.amount + excluded.amount"
)


async def save_refund(
    conn: AsyncConnection, source: Source, refund: Refund, *, created_by: str | None
) -> int:
    """Take a refund out of the memo, its items and its unapplied part; write its application."""
    out = Writes(conn)
    refunded = {"refund_amount": 1, "unapplied_amount": -1}
    await add_amounts(out, s.credit_memo_item_t, refunded, dict(refund.items))
    await add_amounts(out, s.credit_memo_t, refunded, {source.id: refund.total})
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
    await write_lines(out, application_id, source.currency, ((i, None, None, a) for i, a in refund.items))
    await add_event(out, "REFUNDED", source, application_id, created_by)
    return application_id
