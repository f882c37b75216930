"""``create_app(settings)``: the Starlette application with GraphQL, GraphiQL and health checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult

from gateway import graphiql, ratelimit, sockets, transport
from gateway.auth import authenticate, bearer
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.downloads import download
from gateway.hardening import BodySizeLimit, hardening_extensions, throttled_response
from gateway.masking import MaskUnexpectedErrors
from gateway.observability import tracing
from gateway.observability.health import metrics_page, readiness
from gateway.observability.operation import ObserveOperation, note_result
from gateway.observability.requests import middleware as observability_middleware
from gateway.observability.requests import observe_sql
from gateway.persisted import PersistedQueries, RequestRefused
from gateway.shutdown import OpenSockets, TrackSockets
from schema.build import build_schema
from schema.planner import PlannedReads

log = logging.getLogger(__name__)
_contexts: ContextVar[list[Context] | None] = ContextVar("gateway_contexts", default=None)


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's adapter, except that closing a socket the gateway already closed (with a more
    precise code than strawberry's own, e.g. 4429 for a throttled login) is not an error."""

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await self.ws.close(code=code, reason=reason)


class GatewayGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = _WebSocketAdapter

    def __init__(self, db: Database, settings: Settings, *, traced: bool = False) -> None:
        super().__init__(
            # Parsing and validating a document costs ~10 ms on this schema; clients repeat theirs.
            build_schema(
                [
                    MaskUnexpectedErrors,
                    ObserveOperation,  # after the masking: it sees the errors first
                    lambda: ParserCache(maxsize=512),
                    lambda: ValidationCache(maxsize=512),
                    *hardening_extensions(settings),
                    sockets.factory(lambda token: authenticate(self.db, token, fresh=True), self._take),
                    *([PlannedReads] if settings.planned_reads else []),  # after the limits
                    *tracing.graphql_extensions(traced),
                ]
            ),
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=True,  # uploadCreditMemoFile (GraphQL multipart request spec)
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
        self.db = db
        self.settings = settings
        self.page = graphiql.page_html() if settings.graphiql else ""
        self.persisted = PersistedQueries(settings.persisted_query_entries, settings.persisted_query_bytes)
        self.redis = ratelimit.redis_client(settings.redis_url)  # shared buckets across instances
        self.limiter = ratelimit.Buckets(
            settings.rate_limit_per_second, settings.rate_limit_burst, self.redis
        )
        self.failures = ratelimit.Buckets(
            settings.auth_failures_per_second, settings.auth_failure_burst, self.redis, "address"
        )

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
        if isinstance(request, WebSocket):
            context.websocket = request  # shared by the socket's operations: each runs in a fork
        opened = _contexts.get()
        if opened is not None:
            opened.append(context)
        return context

    async def run(self, request: Any, context: Context | None = None, root_value: Any = None) -> Any:
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
        except RequestRefused as error:
            return JSONResponse(error.body, status_code=error.status)
        except transport.BadRequest as bad:
            return transport.refusal(bad.message, bad.code, bad.status)
        except HTTPException as refused:  # strawberry's own refusals: JSON with a code, not plain text
            return transport.refusal(refused.reason, "BAD_REQUEST", refused.status_code)
        finally:
            _contexts.reset(token)
            for each in opened:
                if each.watchdog is not None:
                    each.watchdog.cancel()
                await each.close()

    async def _authenticate(self, request: Request) -> Response | None:
        """Find the request's principal (kept for get_context), or answer 401 with no data."""
        if not self.settings.auth:
            request.state.principal = ANONYMOUS_ADMIN
            return None
        principal = await authenticate(self.db, bearer(request.headers.get("authorization")))
        if principal is None:
            # Failed authentications are limited per client address: guessing tokens is throttled.
            wait = await self.failures.take(_address(request))
            if wait > 0:
                return throttled_response(wait)
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
        wait = await self.limiter.take(principal.name)
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
            # Failed logins count against the client address, as over HTTP (one bucket for both).
            wait = await self.failures.take(_address(context.websocket))
            if wait <= 0:
                raise ConnectionRejectionError(
                    {"message": "a valid API token is required", "code": "UNAUTHENTICATED"}
                )
            retry = max(1, math.ceil(wait))
            message = f"too many failed authentications from this address; retry in {retry} s"
            if await self.pick_websocket_subprotocol(context.websocket) == GRAPHQL_TRANSPORT_WS_PROTOCOL:
                # graphql-transport-ws has no message for a refusal, only a close code: 4429, not 4403.
                await context.websocket.close(code=4429, reason=f"THROTTLED: {message}")
            raise ConnectionRejectionError(
                {"message": message, "code": "THROTTLED", "retryAfterSeconds": retry}
            )
        context.principal, context.token = principal, token
        context.watchdog = asyncio.create_task(
            sockets.watch(
                context, lambda t: authenticate(self.db, t, fresh=True), self.settings.token_check_seconds
            )
        )
        return UNSET

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Refuse what is not one GraphQL request (gateway.transport) before strawberry parses it; then
        resolve automatic persisted queries (gateway.persisted)."""
        if request.method == "GET":
            params = request.query_params
            transport.json_param(params.get("variables"))
            transport.json_param(params.get("extensions"))
        elif "application/json" in (request.content_type or ""):
            transport.json_object(await request.get_body())
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            self.persisted.resolve(item)
        return data

    async def execute_single(self, *, request_data: GraphQLRequestData, **kwargs: Any) -> Any:  # type: ignore[override]
        """A subscription by plain HTTP (its text sent, or a persisted hash) would run as a query and
        fail inside: refuse it up front."""
        if request_data.protocol == "http":
            transport.refuse_subscription(
                request_data.query, request_data.operation_name, self.settings.max_query_tokens
            )
        return await super().execute_single(request_data=request_data, **kwargs)

    def should_render_graphql_ide(self, request: Any) -> bool:
        return _is_graphiql_page(request)  # without GraphiQL, strawberry answers 404

    async def render_graphql_ide(self, request: Request) -> Response:
        headers = {"Content-Security-Policy": graphiql.CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}
        return HTMLResponse(self.page, headers=headers)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        note_result(result, getattr(getattr(request, "state", None), "principal", None))
        return await super().process_result(request, result)

    async def _take(self, key: str) -> float:
        return await self.limiter.take(key)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    def encode_json(self, data: object) -> str:
        # A str, not bytes: strawberry sends bytes as *binary* WebSocket frames, which GraphiQL and the
        # graphql-ws client reject; every message of both protocols must be a text frame.
        return orjson.dumps(data).decode()


def _address(connection: Any) -> str:
    client = getattr(connection, "client", None)
    return client.host if client is not None else "unknown"


def _is_graphiql_page(request: Any) -> bool:
    """A browser asking for GraphiQL itself (the page is public; its queries need a token). Not a
    persisted query by GET, which carries only ``extensions`` (and Apollo sends ``Accept: */*``)."""
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
        and "extensions" not in request.query_params
    )


def http_middleware(settings: Settings, *, traced: bool, open_sockets: OpenSockets) -> list[Middleware]:
    """Outermost first: the request id, access log, metrics and 503s (every answer has them); CORS
    answers preflights and decorates every answer (401, 413 and 429 too); gzip compresses HTTP
    responses only (Starlette's middleware passes WebSockets through); open sockets are tracked for
    a graceful shutdown; the body size is bounded."""
    stack = [*observability_middleware(settings.retry_after_seconds, traced)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_credentials=True,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Idempotency-Key", "Content-Type", "X-Request-Id"],
                expose_headers=["Retry-After", "X-Request-Id"],
                max_age=600,
            )
        )
    if settings.gzip_min_bytes > 0:
        stack.append(Middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes))
    stack.append(Middleware(TrackSockets, registry=open_sockets))
    stack.append(
        Middleware(
            BodySizeLimit,
            max_bytes=settings.max_body_bytes,
            # an upload's body: the file, its operations and map, and the multipart framing
            multipart_max_bytes=max(settings.max_body_bytes, settings.max_file_bytes + 64_000),
        )
    )
    return stack


def create_app(settings: Settings, *, db: Database | None = None) -> Starlette:
    database = db or Database(settings)
    traced = tracing.setup()
    if traced:
        tracing.instrument_engine(database.engine)
    graphql = GatewayGraphQL(database, settings, traced=traced)
    observe_sql(database.engine)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        return await readiness(database)

    async def metrics(request: Request) -> Response:
        return await metrics_page(request, database, settings)

    open_sockets = OpenSockets()

    async def going_away() -> None:
        """SIGTERM (gateway.shutdown): WebSockets closed with 1001, running jobs handed back."""
        await open_sockets.close_all()
        hand_back = getattr(app.state, "hand_back_jobs", None)
        if hand_back is not None:
            await hand_back()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        from gateway.jobs import workers

        try:
            async with workers(database, settings, settings.workers) as hand_back:
                app.state.hand_back_jobs = hand_back
                yield
        finally:
            await graphql.close()
            if db is None:
                await database.dispose()

    app = Starlette(
        middleware=http_middleware(settings, traced=traced, open_sockets=open_sockets),
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/files/{id}", download, methods=["GET"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *([Mount(graphiql.STATIC_PATH, graphiql.static_files())] if settings.graphiql else []),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.going_away = going_away
    app.state.settings = settings
    return app
