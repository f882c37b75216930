"""Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

Counters and histograms are updated as things happen; what lives in the database (jobs by status,
the queue) and the pool are read when Prometheus scrapes. Label values are bounded: an operation
name a client chose is kept for the first ``MAX_OPERATION_NAMES`` distinct names, "other" after."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

if TYPE_CHECKING:
    from gateway.db import Database
    from gateway.observability.requests import RequestInfo

PATHS = {"/graphql", "/healthz", "/readyz", "/metrics"}
MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_names: set[str] = set()

REQUESTS = Counter(
    "gateway_requests",
    "HTTP requests by path, GraphQL operation and outcome",
    ["path", "operation_type", "operation_name", "outcome"],
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "HTTP request latency",
    ["path", "operation_type", "operation_name"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SQL_TIME = Histogram(
    "gateway_request_sql_seconds",
    "Time spent in SQL statements per request",
    ["operation_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
WEBSOCKETS = Gauge("gateway_open_websockets", "Open WebSocket connections")
SUBSCRIPTIONS = Gauge("gateway_open_subscriptions", "Running GraphQL subscriptions")
JOBS = Gauge("gateway_jobs", "Async jobs by status (read at scrape time)", ["status"])
QUEUE_DEPTH = Gauge("gateway_job_queue_depth", "PENDING jobs")
OLDEST_PENDING = Gauge("gateway_job_oldest_pending_age_seconds", "Age of the oldest PENDING job (0: none)")
JOB_ITEMS = Counter("gateway_job_items_processed", "Items processed by jobs (rate = job progress)")
JOBS_FINISHED = Counter("gateway_jobs_finished", "Jobs finished by this process", ["status"])
THROTTLED = Counter("gateway_rate_limited", "Requests refused by the per-token rate limit (429)")
REPLAYS = Counter("gateway_idempotent_replays", "Requests answered from a remembered idempotency key")
POOL_IN_USE = Gauge("gateway_db_pool_checked_out", "Database connections in use")
POOL_SIZE = Gauge("gateway_db_pool_size", "Database connections held by the pool")
UP = Gauge("gateway_dependency_up", "1 when this process reaches the dependency", ["dependency"])


def operation_label(name: str | None) -> str:
    if not name:
        return "-"
    if name in _names:
        return name
    if _NAME.fullmatch(name) and len(_names) < MAX_OPERATION_NAMES:
        _names.add(name)
        return name
    return "other"


def outcome(status: int, errors: int = 0) -> str:
    if status == 429:
        return "throttled"
    if status == 503:
        return "unavailable"
    if status >= 500 or status == 0:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "error" if errors else "ok"


def observe_request(info: RequestInfo, status: int, elapsed: float, path: str) -> None:
    path = path if path in PATHS else "other"
    kind = info.operation_type or "-"
    name = operation_label(info.operation_name)
    REQUESTS.labels(path, kind, name, outcome(status, info.errors)).inc()
    LATENCY.labels(path, kind, name).observe(elapsed)
    if info.sql_statements:
        SQL_TIME.labels(kind).observe(info.sql_seconds)
    if status == 429:
        THROTTLED.inc()


@contextlib.contextmanager
def open_websocket() -> Iterator[None]:
    WEBSOCKETS.inc()
    try:
        yield
    finally:
        WEBSOCKETS.dec()


async def scrape(db: Database) -> tuple[bytes, str]:
    """The exposition text, after reading the job table and the pool."""
    from gateway import store as s

    j = s.job_t
    try:
        async with db.connect() as conn:
            rows = (await conn.execute(select(j.c.status, func.count()).group_by(j.c.status))).all()
            counts: dict[str, int] = {row[0]: row[1] for row in rows}
            oldest = await conn.scalar(select(func.min(j.c.created_at)).where(j.c.status == "PENDING"))
    except Exception as exc:  # noqa: BLE001 - the metrics still answer, with the database down
        db.availability.lost(exc)
    else:
        db.availability.ok()
        for status in ("PENDING", "PROCESSING", "COMPLETED", "FAILED"):
            JOBS.labels(status).set(counts.get(status, 0))
        QUEUE_DEPTH.set(counts.get("PENDING", 0))
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        OLDEST_PENDING.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
    pool: Any = db.engine.pool
    with contextlib.suppress(AttributeError):
        POOL_IN_USE.set(pool.checkedout())
        POOL_SIZE.set(pool.checkedin() + pool.checkedout())
    UP.labels("database").set(1 if db.availability.up else 0)
    redis = getattr(db.bus, "availability", None)
    if redis is not None:
        UP.labels("redis").set(1 if redis.up else 0)
    return generate_latest(), CONTENT_TYPE_LATEST
