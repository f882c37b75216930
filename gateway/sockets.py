"""Operations over a WebSocket: each in a context of its own, under the socket's token as it is now.

strawberry makes one context per WebSocket connection and runs every operation of the socket in it.
``SocketOperations`` gives each operation a fork of it (a fresh snapshot and fresh loaders, so a change
made over HTTP is visible to the next query), checks the token again first (a revoked token runs
nothing more and its socket is closed with 4403) and takes a token from the caller's rate-limit
bucket (THROTTLED past it). ``watch`` closes the sockets of a revoked token within
``token_check_seconds`` even when they are idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.context import Context, Principal

log = logging.getLogger(__name__)
REVOKED = 4403  # the close code graphql-transport-ws uses for "Forbidden"
NOBODY = Principal("revoked", frozenset(), frozenset())

Authenticate = Callable[[str | None], Awaitable[Principal | None]]
Take = Callable[[str], Awaitable[float]]


class SocketOperations(SchemaExtension):
    """One instance per operation (see ``factory``)."""

    def __init__(self, authenticate: Authenticate, take: Take) -> None:
        self.authenticate, self.take = authenticate, take
        self.throttled: float = 0.0

    async def on_operation(self) -> AsyncIterator[None]:
        shared = self.execution_context.context
        if not isinstance(shared, Context) or shared.websocket is None:
            yield  # HTTP: the request's own context already
            return
        own = shared.fork()
        principal = await self.authenticate(shared.token) if shared.token is not None else shared.principal
        if principal is None:  # revoked since the socket opened: nothing runs, the socket closes
            own.principal = shared.principal = NOBODY
            await close(shared)
        else:
            own.principal = principal
            self.throttled = await self.take(principal.name)
        self.execution_context.context = own
        try:
            yield
        finally:
            await own.close()

    def on_execute(self) -> Any:
        if self.throttled > 0:
            wait = self.throttled
            error = GraphQLError(
                f"too many requests for this API token: wait {wait:.2f} seconds",
                extensions={
                    "code": "THROTTLED",
                    "category": "LIMIT_EXCEEDED",
                    "retryAfterSeconds": round(wait, 3),
                },
            )
            self.execution_context.result = ExecutionResult(data=None, errors=[error])
        yield


def factory(authenticate: Authenticate, take: Take) -> Callable[[], SocketOperations]:
    return lambda: SocketOperations(authenticate, take)


async def close(context: Context) -> None:
    with contextlib.suppress(Exception):  # already closed by the client
        await context.websocket.close(code=REVOKED, reason="the API token was revoked")


async def watch(context: Context, authenticate: Authenticate, every: float) -> None:
    """Check the socket's token every ``every`` seconds; close the socket once it is revoked."""
    while True:
        await asyncio.sleep(every)
        try:
            principal = await authenticate(context.token)
        except Exception:  # noqa: BLE001 - a database hiccup is not a revocation; check again
            log.warning("token check failed; retrying", exc_info=True)
            continue
        if principal is None:
            context.principal = NOBODY
            await close(context)
            return
