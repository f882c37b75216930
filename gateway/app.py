"""``create_app(settings)``: the Starlette application with GraphQL, GraphiQL and health checks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.http.typevars import Context as ContextT
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from gateway.config import Settings
from gateway.context import Context
from gateway.db import Database
from gateway.masking import MaskUnexpectedErrors
from schema.build import build_schema

log = logging.getLogger(__name__)
_contexts: ContextVar[list[Context] | None] = ContextVar("gateway_contexts", default=None)


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(
            # Parsing and validating a document costs ~10 ms on this schema; clients repeat theirs.
            build_schema(
                [MaskUnexpectedErrors, lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)]
            ),
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
        self.db = db
        self.settings = settings

    async def get_context(self, request: Any, response: Any) -> Context:
        headers = getattr(request, "headers", {})
        context = Context(db=self.db, settings=self.settings, idempotency_key=headers.get("idempotency-key"))
        opened = _contexts.get()
        if opened is not None:
            opened.append(context)
        return context

    async def run(self, request: Any, context: ContextT = None, root_value: Any = None) -> Any:  # type: ignore[override,assignment]
        opened: list[Context] = []
        token = _contexts.set(opened)
        try:
            from strawberry.types.unset import UNSET

            return await super().run(
                request, UNSET if context is None else context, UNSET if root_value is None else root_value
            )
        finally:
            _contexts.reset(token)
            for context in opened:
                await context.close()

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(settings: Settings, *, db: Database | None = None) -> Starlette:
    database = db or Database(settings)
    graphql = GatewayGraphQL(database, settings)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ok = await database.ping()
        return JSONResponse(
            {"status": "ready" if ok else "database unreachable"}, status_code=200 if ok else 503
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        from gateway.jobs import workers

        try:
            async with workers(database, settings, settings.workers):
                yield
        finally:
            if db is None:
                await database.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.settings = settings
    return app
