"""Engine setup and the transaction primitives.

Writes go through ``Database.write(fn)``: one transaction, retried as a whole on a busy SQLite
database or a PostgreSQL serialization failure / deadlock. On SQLite a write transaction starts with
``BEGIN IMMEDIATE`` so that it holds the single writer lock from its first statement and never fails
half-way with SQLITE_BUSY on upgrade. Reads run in one transaction per request (a consistent
snapshot: a memo and its parts are read from the same moment).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Hashable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway import direct
from gateway.config import Settings
from gateway.inline_sqlite import InlineConnection
from gateway.outage import Availability

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLSTATEs worth running the whole transaction again for.
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args=connect_args(settings),
            pool_size=8,
            max_overflow=16,
        )
        _configure_sqlite(engine, settings)
        return engine
    engine = create_async_engine(
        settings.database_url,
        # A connection opened past ``pool_size`` is closed when it is given back to a full pool. With
        # 16 requests at once and 10 kept, six connections were opened and closed again and again
        # (a backend started each time, its statements prepared anew): ~30% of the server's CPU.
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_connect_timeout_seconds,
        connect_args=connect_args(settings),
    )
    event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    # Many rows inserted at once through SQLAlchemy (a document's items) go as multi-row
    # INSERT … VALUES statements of up to 1,000 rows, as they already do with RETURNING, instead of
    # asyncpg's executemany, which the server runs as one statement per row. (A large move's lines
    # and item parts go as arrays: ``postings._as_columns``.)
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


# Set while a write transaction checks its connection out: it is not pinged (see ``Database.write``).
_UNPINGED: ContextVar[bool] = ContextVar("unpinged_checkout", default=False)


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection is checked by one round trip (``SELECT 1``, simple query protocol) before
    use: one the server has dropped (a restart, a failover, an idle timeout) is replaced, and
    every other pooled connection older than it too, before the request sees it.

    This is ``pool_pre_ping``'s recovery, for a third of its cost: SQLAlchemy's asyncpg ping wraps
    its query in BEGIN … ROLLBACK (for PgBouncer's transaction mode, which this gateway's cached
    prepared statements do not support anyway), three round trips on every checkout.

    A write transaction's first attempt skips it: a connection its first statement finds dropped
    is replaced and the transaction run again (``Database.write``)."""
    if _UNPINGED.get():
        return
    try:
        dbapi_connection.run_async(lambda conn: conn.execute("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure: a fresh connection, or the connect error
        raise InvalidatePoolError(f"ping failed: {exc!r}") from exc


def connect_args(settings: Settings) -> dict[str, Any]:
    """Bounded waits: a server that accepts connections but never answers fails, it does not hang."""
    if settings.is_sqlite:
        return {"timeout": settings.sqlite_busy_timeout_ms / 1000}
    statement_ms = int(settings.database_statement_timeout_seconds * 1000)
    return {
        "timeout": settings.database_connect_timeout_seconds,  # asyncpg: connecting, authenticating
        "command_timeout": settings.database_statement_timeout_seconds,  # client side: a dead server
        "server_settings": {"statement_timeout": str(statement_ms)},  # server side: a slow statement
    }


# A write statement on the inline engine waits this long for another process's write lock, on the
# event loop's thread; then the transaction is retried after an asynchronous back-off.
INLINE_BUSY_TIMEOUT_MS = 250


def create_write_engine(settings: Settings) -> AsyncEngine | None:
    """SQLite: an engine whose statements run on the calling thread (``gateway.inline_sqlite``),
    for write transactions, which this process serializes. None elsewhere (or in memory)."""
    path = settings.sqlite_path
    if not settings.is_sqlite or path is None:
        return None
    engine = create_async_engine(
        settings.database_url,
        async_creator=lambda: InlineConnection.open(str(path), INLINE_BUSY_TIMEOUT_MS / 1000),
        pool_size=2,
        max_overflow=4,
    )
    _configure_sqlite(engine, settings, busy_timeout_ms=INLINE_BUSY_TIMEOUT_MS)
    return engine


def _configure_sqlite(engine: AsyncEngine, settings: Settings, *, busy_timeout_ms: int | None = None) -> None:
    busy = settings.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN is ours (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        inline = conn.connection.driver_connection
        if isinstance(inline, InlineConnection):  # on this thread: no statement machinery needed
            try:
                inline.sqlite.execute(begin)
            except sqlite3.Error as error:  # as SQLAlchemy raises it: "database is locked" is retried
                raise DBAPIError.instance(begin, (), error, sqlite3.Error) from error
        else:
            conn.exec_driver_sql(begin)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code is None and orig is not None:
            code = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
        return code in _RETRY_SQLSTATES
    return False


class _Ready:
    """Already done: the turn of a write that waits in no line."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


READY = _Ready()


@asynccontextmanager
async def _kept_if_committed(
    conn: AsyncConnection, keep: Callable[[AsyncConnection], bool]
) -> AsyncIterator[AsyncConnection]:
    """One transaction on ``conn``. Committed, ``keep(conn)`` keeps it for the next write (or says
    no); otherwise, or when the transaction does not commit, it is rolled back and given back."""
    committed = False
    try:
        async with conn.begin():
            yield conn
        committed = True
    finally:
        if not (committed and keep(conn)):
            await asyncio.shield(conn.close())


class _Begun:
    """A PostgreSQL write connection kept after its commit, its next transaction begun in the
    background: the next write skips the checkout and the ``BEGIN`` round trip (~0.2 ms of a
    single-item apply's ~3.8 ms with 1 client) and, with it, the checkin.

    ``BEGIN`` is sent once the committing request's task gives way (after its response is on its
    way). Alone, it takes no snapshot and no lock: each statement of the next transaction still sees
    every commit before it (READ COMMITTED), and the gateway takes every timestamp in Python, not
    from the transaction's start. Not taken within ``SECONDS``, the connection is rolled back and
    given back to the pool, so an idle gateway holds no connection "idle in transaction".

    If the server dropped it meanwhile (a restart, ``idle_in_transaction_session_timeout``), the
    next write's first statement fails before anything is written, and ``Database.write`` runs that
    write again on a fresh, pinged connection, as for any unpinged checkout."""

    SECONDS = 2.0

    def __init__(self, conn: AsyncConnection, forget: Callable[[_Begun], None]) -> None:
        self.conn = conn
        self._forget = forget  # called when it expires
        loop = asyncio.get_running_loop()
        self._begin = loop.create_task(self._begin_after_the_answer())
        self._expiry = loop.call_later(self.SECONDS, self._expire)
        self._expired: asyncio.Task[None] | None = None

    async def _begin_after_the_answer(self) -> None:
        # Kept by a commit that its request awaited (``Database.write(…, commits=…)``), the
        # connection is kept before that request is woken: one turn of the loop lets it answer first.
        await asyncio.sleep(0)
        await direct.begin(self.conn)

    async def take(self) -> AsyncConnection | None:
        """The connection, its transaction begun; None when that failed (it is given back). A
        write cancelled while its ``BEGIN`` is still on its way gives it back too."""
        self._expiry.cancel()
        try:
            await asyncio.shield(self._begin)
        except Exception:  # noqa: BLE001 - a connection that cannot begin: a fresh one instead
            log.debug("a kept write connection could not begin", exc_info=True)
            await self.give_back()
            return None
        except BaseException:  # cancelled: the connection is nobody's now
            await asyncio.shield(self.give_back())
            raise
        return self.conn

    def _expire(self) -> None:
        self._forget(self)
        self._expired = asyncio.get_running_loop().create_task(self.give_back())

    async def give_back(self) -> None:
        """Rolled back and given back to the pool (closed, if it cannot be)."""
        self._expiry.cancel()
        with contextlib.suppress(Exception):
            await asyncio.shield(self._begin)
        await asyncio.shield(self.conn.close())


class Commits:
    """The commits still on their way of one request's writes (``Database.write(…, commits=…)``):
    the request reads nothing, and answers nothing, before ``wait()``. ``field``: the mutation
    field whose writes are added now (the path of a failure's error)."""

    __slots__ = ("_pending", "failures", "field")

    def __init__(self) -> None:
        self._pending: list[tuple[asyncio.Future[None], str | None]] = []
        self.failures: list[tuple[BaseException, str | None]] = []
        self.field: str | None = None

    def add(self, committed: asyncio.Future[None]) -> None:
        self._pending.append((committed, self.field))

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    async def wait(self) -> None:
        """Until every commit added so far is done; a failed one is kept in ``failures``."""
        while self._pending:
            committed, field = self._pending[0]
            with contextlib.suppress(Exception):  # (kept below, once)
                await committed  # not shielded: its waker is the commit itself, no hop between
            if self._pending and self._pending[0][0] is committed:  # (not taken by another waiter)
                self._pending.pop(0)
                if not committed.cancelled() and (failure := committed.exception()) is not None:
                    self.failures.append((failure, field))


class Database:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None, bus: Any = None) -> None:
        from gateway.events import Slots, create_bus

        self.settings = settings
        self.engine = engine or create_engine(settings)
        self.is_sqlite = settings.is_sqlite
        # every committed write wakes the subscribers (they read what changed from the rows)
        self.bus = bus or create_bus(settings.redis_url, settings.redis_timeout_seconds)
        self.subscriptions = Slots(settings.max_subscriptions_per_token, settings.max_subscriptions)
        self.availability = Availability("database")
        # SQLite has one writer: this process's writers queue here, first come first served, instead
        # of polling the file lock in the busy handler (other processes still meet that lock).
        self._writer: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        # PostgreSQL: this process's writers of one key (a money move's source document) wait in
        # line here, first come first served (see ``write``)
        self._lines: dict[Hashable, collections.deque[asyncio.Future[None]]] = {}
        # SQLite: write transactions (serialized by ``_writer``) run without thread hops
        self.write_engine = (
            create_write_engine(settings) if engine is None and settings.sqlite_inline_writes else None
        ) or self.engine
        # Inline SQLite: the write connection, kept from one write transaction to the next (they
        # take turns on ``_writer``): no checkout, options and checkin per write (~0.2 ms of an apply
        # that took ~1.5 ms of CPU in process).
        self._kept: AsyncConnection | None = None
        # PostgreSQL: the last write's connection, its next transaction begun (see ``_Begun``)
        self._begun: _Begun | None = None
        # PostgreSQL: writes whose caller went on while they commit (``write(…, commits=…)``)
        self._committing: set[asyncio.Task[Any]] = set()

    @asynccontextmanager
    async def connect(self, *, write: bool = False, ping: bool = True) -> AsyncIterator[AsyncConnection]:
        """One transaction; committed when the block ends without an exception. ``ping=False``: the
        connection is not checked on checkout (PostgreSQL; the caller runs again on a lost one)."""
        engine = self.write_engine if write else self.engine
        connection = engine.connect()
        unpinged = _UNPINGED.set(not ping)
        try:
            conn = await connection.start()
        finally:
            _UNPINGED.reset(unpinged)
        try:
            if write and self.is_sqlite:
                conn = await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn
        finally:
            await asyncio.shield(connection.close())

    async def write(
        self,
        fn: Callable[[AsyncConnection], Awaitable[T]],
        *,
        queue: Hashable | None = None,
        commits: Commits | None = None,
    ) -> T:
        """Run ``fn`` in one write transaction, again from the start on a retryable failure.

        ``queue``: the row every such transaction locks first (a money move's source document).
        On PostgreSQL this process's transactions of one key then wait in line here, in arrival
        order, instead of all in the server on that row's lock, where every release wakes every
        waiter and the one that wins is random (16 clients applying one memo: a p99 of 1.5 s). A
        waiter holds nothing: it checks a connection out when its turn comes, after the previous
        one has committed. So a hot document cannot take the pool from everyone else's requests,
        and no waiter can hold a connection that an earlier place needs (checking out while
        waiting, tried first, deadlocked until the pool's timeout with 50 applies of one memo).
        Other processes still meet the row lock; correctness never depends on the line. SQLite
        needs none: ``_writer`` already queues every writer.

        ``commits`` (PostgreSQL): ``fn``'s result is returned as soon as its ``COMMIT`` is on its
        way, and the commit's outcome is added to ``commits``: the caller builds its answer while
        the server commits, and must not answer, nor read, before ``commits.wait()`` (a request's
        ``Context`` does both). A failed commit is never retried then: its result was handed out.

        The first attempt's connection is not pinged on checkout (one round trip less on every
        write). If the server dropped it, the first statement fails before anything is committed
        (the server rolls the transaction back with the connection), and the transaction runs
        again on a pinged connection. A connection lost at ``COMMIT`` is not retried: whether the
        commit happened is unknown there."""
        if commits is None or self.is_sqlite:  # (SQLite commits inline: nothing to overlap)
            return await self._write(fn, queue)
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[T] = loop.create_future()
        committed: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._write(fn, queue, answered, committed))
        self._committing.add(task)
        task.add_done_callback(self._committing.discard)
        try:
            result = await asyncio.shield(answered)
        except asyncio.CancelledError:
            if not answered.done():  # nothing committed yet: the transaction is rolled back
                task.cancel()
            raise
        commits.add(committed)
        return result

    async def _write(
        self,
        fn: Callable[[AsyncConnection], Awaitable[T]],
        queue: Hashable | None,
        answered: asyncio.Future[T] | None = None,
        committed: asyncio.Future[None] | None = None,
    ) -> T:
        """``write``; with ``answered``, ``fn``'s result (or failure) is set on it just before the
        ``COMMIT`` is sent, and the commit's outcome on ``committed``."""
        try:
            return await self._attempts(fn, queue, answered, committed)
        except BaseException as exc:
            if answered is None:
                raise
            waiting = committed if answered.done() else answered
            if waiting is not None and not waiting.done():
                if isinstance(exc, asyncio.CancelledError):
                    waiting.cancel()
                else:
                    waiting.set_exception(exc)
                    waiting.exception()  # retrieved: a caller that gave up on it logs nothing
            if isinstance(exc, Exception):
                return None  # type: ignore[return-value]  # (handed over, not this task's)
            raise

    async def _attempts(
        self,
        fn: Callable[[AsyncConnection], Awaitable[T]],
        queue: Hashable | None,
        answered: asyncio.Future[T] | None,
        committed: asyncio.Future[None] | None,
    ) -> T:
        attempts = self.settings.transaction_retries
        for attempt in range(attempts + 1):
            committing = False
            try:
                async with self._serialized(), self._in_line(queue) as turn:
                    await turn
                    async with self._write_transaction(ping=attempt > 0) as conn:
                        result = await fn(conn)
                        committing = True
                        if answered is not None:  # its caller goes on once COMMIT is sent
                            answered.set_result(result)
                if committed is not None and not committed.done():  # (its caller may be gone)
                    committed.set_result(None)  # answered before the wake-up below is sent
                await self.bus.publish("settlement:events", {})
                return result
            except DBAPIError as exc:
                lost = exc.connection_invalidated and not committing
                handed_out = committing and answered is not None
                if attempt == attempts or handed_out or not (lost or is_retryable(exc)):
                    raise
                delay = min(0.5, 0.005 * 2**attempt) * (0.5 + random.random())
                log.debug("retrying transaction after %s (attempt %d)", exc.orig, attempt + 1)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _write_transaction(self, *, ping: bool) -> Any:
        """``connect(write=True)``, on the kept connection where there is one (inline SQLite), or on
        the last write's connection with its transaction already begun (PostgreSQL)."""
        if self._writer is None and not self.is_sqlite and not ping:
            return self._on_begun_connection()
        if self._writer is None or self.write_engine is self.engine:
            return self.connect(write=True, ping=ping)
        return self._on_kept_connection()

    @asynccontextmanager
    async def _on_begun_connection(self) -> AsyncIterator[AsyncConnection]:
        """One PostgreSQL write transaction on the connection the last write left begun, else on
        one checked out (not pinged). Committed, its connection is kept in turn (when no other is)
        and the next transaction begun once this request's task gives way; not committed
        (refused, failed, cancelled), it is rolled back and given back, as ``connect`` does."""
        begun, self._begun = self._begun, None
        conn = await begun.take() if begun is not None else None
        if conn is None:
            unpinged = _UNPINGED.set(True)
            try:
                conn = await self.write_engine.connect().start()
            finally:
                _UNPINGED.reset(unpinged)
        async with _kept_if_committed(conn, self._keep_begun):
            yield conn

    def _keep_begun(self, conn: AsyncConnection) -> bool:
        if self._begun is not None:
            return False
        self._begun = _Begun(conn, self._forget)
        return True

    def _forget(self, begun: _Begun) -> None:
        if self._begun is begun:
            self._begun = None

    @asynccontextmanager
    async def _on_kept_connection(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction on the kept inline connection (the caller holds ``_writer``). A
        transaction that does not commit (refused, failed, cancelled) is rolled back and its
        connection closed: the next write starts from a fresh one."""
        conn, self._kept = self._kept, None
        if conn is None or conn.closed or conn.invalidated:
            conn = await self.write_engine.connect().start()
            conn = await conn.execution_options(sqlite_immediate=True)
        async with _kept_if_committed(conn, self._keep_inline):
            yield conn

    def _keep_inline(self, conn: AsyncConnection) -> bool:
        self._kept = conn
        return True

    @asynccontextmanager
    async def _serialized(self) -> AsyncIterator[None]:
        if self._writer is None:
            yield
            return
        async with self._writer:
            yield

    @asynccontextmanager
    async def _in_line(self, key: Hashable | None) -> AsyncIterator[Awaitable[None]]:
        """A place in ``key``'s line, taken at once; the awaitable yielded is this place's turn, which
        comes when every earlier place has left (after its commit)."""
        if key is None or self._writer is not None:
            yield READY
            return
        line = self._lines.setdefault(key, collections.deque())
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not line:
            place.set_result(None)
        line.append(place)
        try:
            yield place
        finally:
            first = line[0] is place
            line.remove(place)
            if first and line and not line[0].done():
                line[0].set_result(None)
            if not line:
                del self._lines[key]

    async def read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.connect() as conn:
            return await fn(conn)

    async def ping(self) -> bool:
        """Within ``readiness_timeout_seconds``, whatever the server does."""
        try:
            async with asyncio.timeout(self.settings.readiness_timeout_seconds):
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")
        except TimeoutError:
            seconds = self.settings.readiness_timeout_seconds
            self.availability.lost(TimeoutError(f"no answer within {seconds:g} s"))
            return False
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "not ready"
            self.availability.lost(exc)
            return False
        self.availability.ok()
        return True

    async def dispose(self) -> None:
        if self._committing:  # writes whose requests went on: their commits end first
            await asyncio.gather(*self._committing, return_exceptions=True)
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept.close()
        begun, self._begun = self._begun, None
        if begun is not None:
            await begun.give_back()
        await self.bus.close()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        await self.engine.dispose()
