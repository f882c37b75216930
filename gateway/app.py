"""``create_app(settings)``: the Starlette application with GraphQL, GraphiQL and health checks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.http.typevars import Context as ContextT
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from gateway.auth import authenticate, bearer
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.hardening import BodySizeLimit, RateLimiter, hardening_extensions, throttled_response
from gateway.masking import MaskUnexpectedErrors
from schema.build import build_schema

log = logging.getLogger(__name__)
_contexts: ContextVar[list[Context] | None] = ContextVar("gateway_contexts", default=None)


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(
            # Parsing and validating a document costs ~10 ms on this schema; clients repeat theirs.
            build_schema(
                [
                    MaskUnexpectedErrors,
                    lambda: ParserCache(maxsize=512),
                    lambda: ValidationCache(maxsize=512),
                    *hardening_extensions(settings),
                ]
            ),
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
        self.db = db
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)

    async def get_context(self, request: Any, response: Any) -> Context:
        headers = getattr(request, "headers", {})
        context = Context(
            db=self.db,
            settings=self.settings,
            idempotency_key=headers.get("idempotency-key"),
            authorization=headers.get("authorization"),
        )
        state = getattr(request, "state", None)
        principal = getattr(state, "principal", None) if state is not None else None
        if principal is not None:  # HTTP: authenticated in run()
            context.principal = principal
        elif not self.settings.auth:
            context.principal = ANONYMOUS_ADMIN
        # else: NOBODY, a WebSocket until its connection_init (on_ws_connect)
        opened = _contexts.get()
        if opened is not None:
            opened.append(context)
        return context

    async def run(self, request: Any, context: ContextT = None, root_value: Any = None) -> Any:  # type: ignore[override,assignment]
        from strawberry.types.unset import UNSET

        opened: list[Context] = []
        token = _contexts.set(opened)
        try:
            if isinstance(request, Request) and not _is_graphiql_page(request):
                refused = await self._authenticate(request)
                if refused is not None:
                    return refused
            return await super().run(
                request, UNSET if context is None else context, UNSET if root_value is None else root_value
            )
        finally:
            _contexts.reset(token)
            for context in opened:
                await context.close()

    async def _authenticate(self, request: Request) -> Response | None:
        """Find the request's principal (kept for get_context), or answer 401 with no data."""
        if not self.settings.auth:
            request.state.principal = ANONYMOUS_ADMIN
            return None
        principal = await authenticate(self.db, bearer(request.headers.get("authorization")))
        if principal is None:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "a valid API token is required: Authorization: Bearer <token>",
                            "extensions": {"code": "UNAUTHENTICATED", "category": "UNAUTHENTICATED"},
                        }
                    ]
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.principal = principal
        wait = self.limiter.take(principal.name)
        return throttled_response(wait) if wait > 0 else None

    async def on_ws_connect(self, context: Context) -> Any:
        from strawberry.exceptions import ConnectionRejectionError
        from strawberry.types.unset import UNSET

        if not self.settings.auth:
            context.principal = ANONYMOUS_ADMIN
            return UNSET
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization") or context.authorization
        token = bearer(header) if header else params.get("token")
        principal = await authenticate(self.db, token)
        if principal is None:
            raise ConnectionRejectionError(
                {"message": "a valid API token is required", "code": "UNAUTHENTICATED"}
            )
        context.principal = principal
        return UNSET

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _is_graphiql_page(request: Request) -> bool:
    """A browser asking for GraphiQL itself (the page is public; its queries need a token)."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
    )


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
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
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
