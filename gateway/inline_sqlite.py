"""SQLite driven on the event loop's own thread, for write transactions.

SQLAlchemy's aiosqlite dialect sends every cursor call (create, execute, fetch, close) to
aiosqlite's thread and back: about seven thread hops per statement, the main cost of a small write
transaction. A write transaction on SQLite holds the database's single write lock anyway, and this
process's writers already queue on ``Database``'s writer lock before ``BEGIN IMMEDIATE``, so the
statements of one write run here directly on the calling thread: the whole transaction costs no hop.
Only another process can make a statement wait (for the file lock); the write engine's busy timeout
is therefore short and ``Database.write`` retries a busy transaction with an asynchronous back-off.
A statement that ran long (a chunk of a large write) is followed by one turn of the event loop, so a
large write does not hold the other requests for its whole length.

This object speaks the part of aiosqlite's API that ``sqlalchemy.dialects.sqlite.aiosqlite`` uses;
it is passed to ``create_async_engine(async_creator=...)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

# A statement that ran longer than this (a chunk of a large write, a large read) is followed by one
# turn of the event loop, so that the other requests go on between the statements of a large write.
# A single apply's statements take tens of microseconds each and never yield.
YIELD_AFTER_SECONDS = 0.002


async def breathe(started: float) -> None:
    """One turn of the event loop after a statement that ran long."""
    if time.perf_counter() - started > YIELD_AFTER_SECONDS:
        await asyncio.sleep(0)


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        started = time.perf_counter()
        self._cursor.execute(sql, parameters)
        await breathe(started)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> _Cursor:
        started = time.perf_counter()
        self._cursor.executemany(sql, parameters)
        await breathe(started)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Immediate:
    """Stands for aiosqlite's request queue: runs the function at once, completes the future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(error)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn
        self._tx = _Immediate()

    @classmethod
    async def open(cls, path: str, timeout: float) -> InlineConnection:
        # check_same_thread=False: the pool may close it from the garbage collector's thread
        return cls(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself (``gateway.direct`` runs statements on it)."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        self._connection = None
        self._conn.close()
