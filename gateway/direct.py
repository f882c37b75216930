"""A write transaction's statements sent straight to the driver (``sqlite3``, asyncpg), past
SQLAlchemy's execution.

A write transaction on SQLite runs on the event loop's thread (``gateway.inline_sqlite``), so each of
its statements could cost what SQLite costs: 2–5 µs for a single-row statement here. Through
SQLAlchemy's ``AsyncConnection.execute`` it costs 30–50 µs (the statement's cache key, parameter and
result processing, a greenlet switch per driver call), a fifth of a single-item apply. ``execute``
runs a statement, compiled once (``prepare``), on the connection's own ``sqlite3`` cursor, inside the
transaction SQLAlchemy began:

- values are converted as SQLAlchemy would convert them, in both directions (the compiled
  statement's own bind and result processors), and rows answer by column name and position;
- ``before_cursor_execute`` and ``after_cursor_execute`` fire as for any statement, so the request's
  log, the tracing spans and the tests' statement counters see every statement;
- a driver error is raised as SQLAlchemy raises it (``DBAPIError.instance``): the retries of
  ``Database.write`` see "database is locked" as before;
- a long statement (a chunk of a large write) is followed by a turn of the event loop, as the inline
  connection's own cursor does.

On PostgreSQL a statement of a connection in a transaction goes to asyncpg's ``fetch`` the same way
(the connection's own prepared-statement cache; asyncpg's ``BEGIN`` first, as SQLAlchemy's cursor
sends it), a list parameter's ``$n`` rendered for its length (once per length), and an error or a
cancellation goes through SQLAlchemy's own handling of a statement's error: raised as SQLAlchemy
raises it, a dropped connection invalidated (``Database.write`` runs its transaction again).

Any other connection (SQLite through aiosqlite's thread, a connection not in a transaction) and any
statement that cannot be sent as compiled (an empty ``IN`` list, a value computed in Python) go
through SQLAlchemy: callers get rows with the same names either way.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from gateway.inline_sqlite import InlineConnection, breathe

_EXPANDING = "__[POSTCOMPILE_{}]"


class Rows:
    """A statement's rows, read at once: what callers use of SQLAlchemy's ``Result``."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


class _Prepared(NamedTuple):
    sql: str
    params: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]  # (name, constant, converter)
    expanding: frozenset[str]  # parameters that are lists (``IN``)
    row: Callable[..., Any] | None  # the row type (None: no rows)
    results: tuple[Callable[[Any], Any] | None, ...]  # each column's converter
    converts: bool  # any result converter at all
    compiled: Any  # SQLAlchemy's compiled statement (PostgreSQL renders its lists' ``$n`` from it)


_MISSING = object()


def _row_type(keys: tuple[str, ...]) -> Any:
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]  # noqa: PYI024

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(keys, self, strict=True))

    return Row


@functools.lru_cache(maxsize=512)
def prepare(dialect: Dialect, stmt: Any, keys: tuple[str, ...], many: bool = False) -> _Prepared | None:
    """``stmt`` compiled once for parameters ``keys`` (SQLite's positional ``?``, asyncpg's ``$n``), or
    None when it cannot be sent as compiled: a parameter neither given nor constant, a list parameter
    whose values SQLAlchemy converts, a value computed in Python."""
    if dialect.name != "sqlite" and dialect.driver != "asyncpg":
        return None
    compiled = compile_for_driver(dialect, stmt, keys, many)
    if compiled is None:
        return None
    processors = compiled._bind_processors  # noqa: SLF001 - the converters SQLAlchemy would apply
    expanding = frozenset(b.key for b in compiled.post_compile_params)
    params = []
    for name in compiled.positiontup or ():
        bind = compiled.binds.get(name)
        if name in expanding and name in processors:
            return None
        if name in keys:
            params.append((name, _MISSING, processors.get(name)))
        elif bind is not None and not bind.required and bind.callable is None:
            value = bind.value
            convert = processors.get(name)
            params.append((name, convert(value) if convert else value, None))
        else:
            return None
    columns = compiled._result_columns  # noqa: SLF001 - the statement's result columns, in order
    row = _row_type(tuple(c.keyname for c in columns)) if columns else None
    results = tuple(c.type._cached_result_processor(dialect, None) for c in columns)  # noqa: SLF001
    return _Prepared(compiled.string, tuple(params), expanding, row, results, any(results), compiled)


def compile_for_driver(dialect: Dialect, stmt: Any, keys: tuple[str, ...], many: bool = False) -> Any:
    """``stmt`` compiled for parameters ``keys`` (``many``: an executemany of rows with those keys),
    or None when the driver cannot be given it as compiled: its parameters are not positional, or
    SQLAlchemy computes a value in Python (a column default) or writes one into the SQL."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
    if (
        not compiled.positional
        or compiled.literal_execute_params
        or getattr(compiled, "insert_prefetch", None)
        or getattr(compiled, "update_prefetch", None)
    ):
        return None
    return compiled


def driver(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection of an inline SQLite write connection (``gateway.inline_sqlite``),
    in a transaction; None for any other."""
    sync = conn.sync_connection
    if conn.dialect.name != "sqlite" or sync is None or sync.invalidated or sync.closed:
        return None  # (SQLAlchemy raises what it raises for a lost or closed connection)
    inline = sync.connection.driver_connection
    if not isinstance(inline, InlineConnection):
        return None
    raw = inline.sqlite
    return raw if raw.in_transaction else None


def asyncpg_adapter(conn: AsyncConnection) -> Any | None:
    """SQLAlchemy's adapter of the asyncpg connection of a PostgreSQL connection in a transaction
    (asyncpg's own transaction begins with its first statement, as SQLAlchemy's cursor begins it);
    None for any other."""
    sync = conn.sync_connection
    if conn.dialect.driver != "asyncpg" or sync is None or sync.invalidated or sync.closed:
        return None
    if not sync.in_transaction():  # (SQLAlchemy begins one on its first statement; this would not)
        return None
    return sync.connection.dbapi_connection


def _dollar_values(p: _Prepared, params: dict[str, Any]) -> tuple[str | None, list[Any]]:
    """asyncpg's SQL and values: a list parameter's values in its place, its ``$n`` rendered for its
    length (and the later ones moved); SQL None when SQLAlchemy would render them otherwise."""
    values: list[Any] = []
    for name, constant, convert in p.params:
        value = params[name] if constant is _MISSING else constant
        if name in p.expanding:
            values.extend(value)
        else:
            values.append(convert(value) if convert is not None else value)
    if not p.expanding:
        return p.sql, values
    lengths = tuple((name, len(params[name])) for name, _, _ in p.params if name in p.expanding)
    return _expanded(p.compiled, lengths), values


@functools.lru_cache(maxsize=512)
def _expanded(compiled: Any, lengths: tuple[tuple[str, int], ...]) -> str | None:
    """``compiled``'s SQL with its list parameters rendered for ``lengths`` (as SQLAlchemy renders
    them for each execution), or None when its parameters would not come in the order of ours."""
    expanded = compiled._process_parameters_for_postcompile({n: [None] * k for n, k in lengths})  # noqa: SLF001
    counts = dict(lengths)
    ours = [
        f"{name}_{i}" if name in counts else name
        for name in compiled.positiontup
        for i in (range(1, counts[name] + 1) if name in counts else (0,))
    ]
    return expanded.statement if list(expanded.positiontup) == ours else None


async def begin(conn: AsyncConnection) -> None:
    """asyncpg's ``BEGIN`` on a PostgreSQL connection outside SQLAlchemy's transaction, as
    SQLAlchemy's cursor sends it before a statement: the next transaction SQLAlchemy begins on this
    connection then sends none (``db._Begun``). Nothing when one is begun already."""
    sync = conn.sync_connection
    assert sync is not None
    adapter: Any = sync.connection.dbapi_connection
    async with adapter._execute_mutex:  # noqa: SLF001
        if adapter._transaction is None:  # noqa: SLF001
            await adapter._start_transaction()  # noqa: SLF001


async def _fetch(conn: AsyncConnection, adapter: Any, sql: str, values: list[Any]) -> Any:
    """One statement on asyncpg (its rows), in the transaction SQLAlchemy began, between the
    connection's statement events. Its errors, a cancellation included, go through SQLAlchemy's own
    handling: raised as SQLAlchemy raises them, a lost connection invalidated."""
    sync = conn.sync_connection
    assert sync is not None
    events = sync._has_events or sync.engine._has_events  # noqa: SLF001
    context = SimpleNamespace(executemany=False)
    if events:
        for fn in sync.dispatch.before_cursor_execute:
            sql, values = fn(sync, None, sql, values, context, False)
    try:
        async with adapter._execute_mutex:  # noqa: SLF001
            try:
                if adapter._transaction is None:  # noqa: SLF001
                    await adapter._start_transaction()  # noqa: SLF001 - as SQLAlchemy's cursor does
                records = await adapter._connection.fetch(sql, *values)  # noqa: SLF001
            except Exception as error:
                adapter._handle_exception(error)  # noqa: SLF001 - raises it as the DB-API error
    except BaseException as error:
        await greenlet_spawn(_handle, sync, error, sql, values)
        raise  # (_handle raises)
    if events:
        sync.dispatch.after_cursor_execute(sync, None, sql, values, context, False)
    return records


def _handle(sync: Any, error: BaseException, sql: str, values: list[Any]) -> None:
    """SQLAlchemy's handling of a statement's error, with the error as the one being handled (it
    reads ``sys.exc_info()``), in a greenlet of its own (closing a lost connection awaits)."""
    try:
        raise error
    except BaseException:
        sync._handle_dbapi_exception(error, sql, values, None, None)  # noqa: SLF001


def _values(p: _Prepared, params: dict[str, Any]) -> tuple[str, list[Any]]:
    sql, values = p.sql, []
    for name, constant, convert in p.params:
        value = params[name] if constant is _MISSING else constant
        if name in p.expanding:
            sql = sql.replace(_EXPANDING.format(name), ", ".join("?" * len(value)), 1)
            values.extend(value)
        else:
            values.append(convert(value) if convert is not None else value)
    return sql, values


async def execute(conn: AsyncConnection, stmt: Any, params: dict[str, Any] | None = None) -> Any:
    """``conn.execute(stmt, params)``: the rows (``Rows``), sent straight to ``sqlite3`` when
    ``conn`` is an inline SQLite write connection, or to asyncpg when it is a PostgreSQL connection in
    a transaction; else through SQLAlchemy (its ``Result``)."""
    params = params or {}
    raw = driver(conn)
    adapter = asyncpg_adapter(conn) if raw is None else None
    p = prepare(conn.dialect, stmt, tuple(params)) if raw is not None or adapter is not None else None
    if p is None or any(not params[name] for name in p.expanding):
        return await conn.execute(stmt, params)
    if adapter is not None:
        sql, values = _dollar_values(p, params)
        if sql is None:
            return await conn.execute(stmt, params)
        fetched: Any = await _fetch(conn, adapter, sql, values)
    else:
        assert raw is not None
        sql, values = _values(p, params)
        started = time.perf_counter()
        cursor = _run(conn, raw, sql, values, many=False)
        try:
            fetched = cursor.fetchall() if p.row is not None else []
        finally:
            cursor.close()
        await breathe(started)
    if p.row is None:
        return Rows([])
    make, results = p.row, p.results
    if not p.converts:
        return Rows([make(*r) for r in fetched])
    return Rows([make(*(f(v) if f else v for f, v in zip(results, r, strict=True))) for r in fetched])


async def exec_driver_sql(conn: AsyncConnection, sql: str, values: tuple[Any, ...]) -> Any:
    """``conn.exec_driver_sql(sql, values)`` (the driver's SQL and values, nothing converted): its rows,
    sent straight to asyncpg when ``conn`` is a PostgreSQL connection in a transaction."""
    adapter = asyncpg_adapter(conn)
    if adapter is None:
        return await conn.exec_driver_sql(sql, values)
    records = await _fetch(conn, adapter, sql, list(values))
    if not records:
        return Rows([])
    make = _row_type_of(tuple(records[0].keys()))
    return Rows([make(*r) for r in records])


@functools.lru_cache(maxsize=256)
def _row_type_of(keys: tuple[str, ...]) -> Any:
    return _row_type(keys)


async def executemany(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``sql`` (the driver's, with ``?``) once per row of values; the caller checked that the rows
    need no converting (``postings._plain``)."""
    raw = driver(conn)
    if raw is None:
        await conn.exec_driver_sql(sql, list(rows))
        return
    started = time.perf_counter()
    _run(conn, raw, sql, rows, many=True).close()
    await breathe(started)


def _run(
    conn: AsyncConnection, raw: sqlite3.Connection, sql: str, values: Any, *, many: bool
) -> sqlite3.Cursor:
    """One statement on ``raw``, between the connection's statement events (as SQLAlchemy fires
    them, with a context of its own for listeners that keep state on it, such as tracing's)."""
    sync = conn.sync_connection
    assert sync is not None
    events = sync._has_events or sync.engine._has_events  # noqa: SLF001
    context = SimpleNamespace(executemany=many)
    cursor = raw.cursor()
    if events:
        for fn in sync.dispatch.before_cursor_execute:
            sql, values = fn(sync, cursor, sql, values, context, many)
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except sqlite3.Error as error:
        cursor.close()
        raise DBAPIError.instance(sql, values, error, sqlite3.Error) from error
    if events:
        sync.dispatch.after_cursor_execute(sync, cursor, sql, values, context, many)
    return cursor
