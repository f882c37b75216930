"""The typed per-request context: database, settings, who asks, the request's loaders."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.config import Settings
from gateway.db import Commits, Database
from gateway.observability.requests import request_id

if TYPE_CHECKING:
    from resolvers.loaders import Loaders

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a token's name, its permissions and (None = all) the accounts it may see."""

    name: str
    permissions: frozenset[str] = frozenset({"admin"})
    accounts: frozenset[int] | None = None


ANONYMOUS_ADMIN = Principal("local", frozenset({"admin"}))  # only where auth is off, and said so
NOBODY = Principal("nobody", frozenset(), frozenset())  # no permission, no account


@dataclass
class Context:
    db: Database
    settings: Settings
    principal: Principal = NOBODY  # a context is given its caller explicitly
    request_id: str = field(default_factory=request_id)
    idempotency_key: str | None = None  # the Idempotency-Key header; an input's key wins
    connection_params: Any = None  # a WebSocket's connection_init payload (carries the token)
    authorization: str | None = None  # the Authorization header of the request or WebSocket upgrade
    # One read transaction per request: every loader sees the same snapshot. Loaders of one level
    # run concurrently, and a connection runs one statement at a time, hence the lock.
    _conn: AsyncConnection | None = None
    _txn: Any = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _loaders: Loaders | None = None
    statements: int = 0
    planned: bool = False  # answered by schema.planner rather than graphql-core's executor
    # Nodes: requested (the cost computed before execution) and returned by plain lists, which the
    # cost cannot know in advance (resolvers.relations.charge stops the operation past the limit).
    cost: int = 0
    list_nodes: int = 0
    # A WebSocket's context is shared by its operations (strawberry makes one per connection): the
    # socket and its token, so that each operation runs in a fork and the token is checked again.
    websocket: Any = None
    token: str | None = None
    watchdog: asyncio.Task[None] | None = None
    # Money moves whose COMMIT is still on its way while their payload is built: nothing is read,
    # and nothing answered, before they are done (``Database.write``, ``gateway.committed``)
    commits: Commits = field(default_factory=Commits)

    def fork(self) -> Context:
        """A context of its own for one operation over a shared WebSocket: the same caller, a fresh
        snapshot and fresh loaders (nothing cached from an earlier operation)."""
        return dataclasses.replace(
            self,
            request_id=uuid.uuid4().hex[:16],
            _conn=None,
            _txn=None,
            _lock=asyncio.Lock(),
            _loaders=None,
            statements=0,
            cost=0,
            list_nodes=0,
            websocket=None,
            watchdog=None,
            commits=Commits(),
        )

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            from resolvers.loaders import Loaders

            self._loaders = Loaders(self)
        return self._loaders

    async def read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if self.commits.pending:  # this request's writes are read as committed
            await self.commits.wait()
        async with self._lock:
            if self._conn is None:
                conn = await self.db.engine.connect()
                if conn.dialect.name == "postgresql":
                    conn = await conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                self._txn = await conn.begin()
                self._conn = conn
            self.statements += 1
            return await fn(self._conn)

    async def after_write(self) -> None:
        """A mutation committed: later reads must see it, through a new snapshot and empty caches."""
        await self.close()
        self._loaders = None

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await self._txn.rollback()
                finally:
                    await conn.close()
