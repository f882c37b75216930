"""Per request: its id (``X-Request-Id``, from the client when valid, else generated; returned on
every response), what it was (``RequestInfo``, filled in as it runs), one access-log line at its
end, and the answers an operator expects from failures:

- the database or Redis unreachable (``gateway.outage.is_unavailable``) → ``503`` JSON with code
  ``SERVICE_UNAVAILABLE``, ``Retry-After`` and the request id, and no traceback in the log;
- any other exception → ``500`` JSON with code ``INTERNAL_SERVER_ERROR`` and the request id (never
  Starlette's plain-text page), its traceback logged under the same id;
- every JSON error body (401, 413, 429, 503 …) carries ``extensions.requestId``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability import metrics
from gateway.observability.tracing import request_span
from gateway.outage import is_unavailable

access_log = logging.getLogger("gateway.access")
log = logging.getLogger("gateway.errors")
HEADER = "X-Request-Id"
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass
class RequestInfo:
    """Filled in by whoever knows: the GraphQL layer (operation, token, cost), the SQL hooks."""

    operation_name: str | None = None
    operation_type: str | None = None
    token: str | None = None
    cost: int | None = None
    errors: int = 0  # GraphQL errors in a 200 answer
    sql_seconds: float = 0.0
    sql_statements: int = 0
    outage: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestInfo | None] = ContextVar("gateway_request", default=None)


def current() -> RequestInfo | None:
    return _current.get()


def request_id() -> str:
    """The current request's id, or a fresh one outside a request (tests, the worker)."""
    return correlation_id.get() or uuid.uuid4().hex[:16]


def valid_request_id(value: str) -> bool:
    """A client's id is kept when it is 1–128 characters of letters, digits and ``._:-``."""
    return _VALID.fullmatch(value) is not None


def middleware(retry_after_seconds: int, tracing: bool = False) -> list[Middleware]:
    """Outermost first: the request id (asgi-correlation-id), then ``Observe``."""
    return [
        Middleware(
            CorrelationIdMiddleware,
            header_name=HEADER,
            generator=lambda: uuid.uuid4().hex,
            validator=valid_request_id,
        ),
        Middleware(Observe, retry_after_seconds=retry_after_seconds, tracing=tracing),
    ]


def error_body(message: str, code: str, rid: str, **extensions: Any) -> bytes:
    return orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, "requestId": rid, **extensions}}]}
    )


class Observe:
    """ASGI middleware (inside the request-id one): failure answers, error ids, access log, metrics."""

    def __init__(self, app: ASGIApp, retry_after_seconds: int = 5, tracing: bool = False) -> None:
        self.app, self.retry_after, self.tracing = app, retry_after_seconds, tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            with metrics.open_websocket(), request_span(self.tracing, scope):
                await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_span(self.tracing, scope) as span:
            status, info = await self._http(scope, receive, send)
            if span is not None:
                span.set_attribute("http.response.status_code", status)
                if info.operation_name:
                    span.set_attribute("graphql.operation.name", info.operation_name)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> tuple[int, RequestInfo]:
        info = RequestInfo()
        token = _current.set(info)
        started = time.perf_counter()
        status = 0
        response_started = False
        held: Message | None = None  # a JSON error's start, kept until its body is rewritten
        chunks: list[bytes] = []

        async def observed_send(message: Message) -> None:
            nonlocal status, response_started, held
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                if info.outage is not None or (status >= 400 and _is_json(message)):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                if info.outage is not None:
                    status = 503
                    await self._unavailable(send)
                    return
                body = _with_request_id(body)
                headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:
            if response_started and held is None:
                raise  # too late to answer anything else
            if is_unavailable(exc):
                info.outage = exc
                db = getattr(getattr(scope.get("app"), "state", None), "db", None)
                if db is not None:
                    db.availability.lost(exc)
                status = 503
                await self._unavailable(send)
            else:
                rid = request_id()
                log.error("unexpected error (request %s)", rid, exc_info=exc)
                status = 500
                await _send_json(
                    send,
                    500,
                    error_body(f"Internal server error (request id {rid})", "INTERNAL_SERVER_ERROR", rid),
                )
        finally:
            if info.sql_statements and info.outage is None and status < 500:
                db = getattr(getattr(scope.get("app"), "state", None), "db", None)
                if db is not None:
                    db.availability.ok()
            _current.reset(token)
            elapsed = time.perf_counter() - started
            _access(scope, status, elapsed, info)
            metrics.observe_request(info, status, elapsed, scope.get("path", ""))
        return status, info

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A lost database while a WebSocket runs (its token check, a subscription): closed with
        1013 (try again later), one log line per outage, no traceback."""
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            db = getattr(getattr(scope.get("app"), "state", None), "db", None)
            if db is not None:
                db.availability.lost(exc)
            with contextlib.suppress(Exception):  # the socket may be gone already
                await send({"type": "websocket.close", "code": 1013, "reason": "database unavailable"})

    async def _unavailable(self, send: Send) -> None:
        rid = request_id()
        body = error_body(
            "the database is unavailable: try again later",
            "SERVICE_UNAVAILABLE",
            rid,
            retryAfterSeconds=self.retry_after,
        )
        await _send_json(send, 503, body, ((b"retry-after", str(self.retry_after).encode()),))


def _is_json(message: Message) -> bool:
    return any(k.lower() == b"content-type" and b"json" in v for k, v in message.get("headers", ()))


def _with_request_id(body: bytes) -> bytes:
    """Every error of a JSON error body gets ``extensions.requestId`` (kept when already there)."""
    if b'"errors"' not in body:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return body
    rid = request_id()
    for error in errors:
        if isinstance(error, dict):
            extensions = error.setdefault("extensions", {})
            if isinstance(extensions, dict):
                extensions.setdefault("requestId", rid)
    return orjson.dumps(document)


async def _send_json(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _access(scope: Scope, status: int, elapsed: float, info: RequestInfo) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info(
        "%s %s %s %.1fms",
        scope.get("method", "-"),
        scope.get("path", "-"),
        status,
        elapsed * 1000,
        extra={
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "operation_name": info.operation_name,
            "operation_type": info.operation_type,
            "token": info.token,
            "cost": info.cost,
            "errors": info.errors,
            "sql_ms": round(info.sql_seconds * 1000, 2),
            "sql_statements": info.sql_statements,
        },
    )


def observe_sql(engine: AsyncEngine) -> None:
    """Add every statement's time to the current request (``RequestInfo.sql_seconds``)."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_gateway_observed", False):
        return
    sync_engine._gateway_observed = True  # type: ignore[attr-defined]

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(conn: Any, *_: Any) -> None:
        conn.info.setdefault("gateway_sql_started", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(conn: Any, *_: Any) -> None:
        started = conn.info.get("gateway_sql_started")
        if started:
            count_sql(time.perf_counter() - started.pop())


def count_sql(seconds: float) -> None:
    """One statement's time, added to the current request's (a statement sent past SQLAlchemy,
    such as a COPY, counts itself here)."""
    info = _current.get()
    if info is not None:
        info.sql_seconds += seconds
        info.sql_statements += 1
