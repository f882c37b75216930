"""``/readyz`` (can this instance serve?) and ``/metrics`` (Prometheus), both bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import authenticate, bearer
from gateway.config import Settings
from gateway.db import Database
from gateway.observability import metrics


async def readiness(db: Database) -> Response:
    """503 without the database; 200 with Redis down (subscribers fall back to polling the rows),
    ``"redis": "degraded"`` saying so."""
    redis_ping = getattr(db.bus, "ping", None)
    checks = [db.ping()]
    if redis_ping is not None:
        checks.append(_bounded(redis_ping(), db.settings.readiness_timeout_seconds))
    database_ok, *redis = await asyncio.gather(*checks)
    body = {
        "status": "ready" if database_ok else "unavailable",
        "database": "ok" if database_ok else "unreachable",
        "redis": "not configured" if not redis else ("ok" if redis[0] else "degraded"),
    }
    return JSONResponse(body, status_code=200 if database_ok else 503)


async def _bounded(check: Awaitable[bool], seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return await check
    except TimeoutError:
        return False


async def metrics_page(request: Request, db: Database, settings: Settings) -> Response:
    if settings.metrics == "off":
        return Response(status_code=404)
    if settings.metrics != "public" and settings.auth:
        principal = await authenticate(db, bearer(request.headers.get("authorization")))
        if principal is None or "admin" not in principal.permissions:
            return JSONResponse(
                {
                    "errors": [
                        {"message": "/metrics needs an admin token", "extensions": {"code": "FORBIDDEN"}}
                    ]
                },
                status_code=403,
                headers={"WWW-Authenticate": "Bearer"},
            )
    body, content_type = await metrics.scrape(db)
    return Response(body, media_type=content_type)
