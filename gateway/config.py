"""Settings, read once from the environment (``GATEWAY_*``) and passed in; nothing reads it elsewhere."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.settlement.limits import Limits

PREFIX = "GATEWAY_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./settlement.db"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Default application rule when a request names none (Zuora's default is PRORATION).
    default_application_rule: str = "PRORATION"
    # Connections: `first` when omitted, and the most one page may hold.
    page_size_default: int = 50
    page_size_max: int = 1_000
    # SQLite: how long a writer waits for the lock before SQLITE_BUSY (milliseconds).
    sqlite_busy_timeout_ms: int = 30_000
    # How many times a transaction is retried on a serialization failure or a busy database.
    transaction_retries: int = 20
    # Workers that run async jobs inside the gateway process (0: only `settlement-gateway worker`).
    workers: int = 1
    # A worker's claim on a job lasts this long unless renewed by its heartbeat.
    job_lease_seconds: float = 30.0
    job_poll_seconds: float = 0.5
    # Tests only: once a job has written its first rows, the worker creates this file and holds its
    # transaction open, so a test can kill it at a known point inside the transaction.
    test_job_hold_file: str | None = None
    graphiql: bool = True
    introspection: bool = True
    # Authentication: off only with `serve --insecure-no-auth` (a warning on every start).
    auth: bool = True
    # Hostile queries: refused before execution, with the numbers.
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 5_000
    max_body_bytes: int = 1_000_000
    max_query_cost: int = 50_000
    # Rate limit per token: a bucket of `rate_limit_burst` requests refilled at `rate_limit_per_second`.
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # Reads whose every field schema/model.py declares skip graphql-core's per-field execution.
    planned_reads: bool = True
    # Failed authentications per client address (any token, or none): a bucket of this burst.
    auth_failures_per_second: float = 1.0
    auth_failure_burst: int = 20
    # WebSockets: a socket's token is checked again this often (a revoked token's sockets close
    # with 4403) and before every operation; subscriptions open at once per token and per process.
    token_check_seconds: float = 2.0
    max_subscriptions_per_token: int = 20
    max_subscriptions: int = 500
    # Strict input: a date more than this many days from today is refused (INVALID_VALUE).
    max_date_distance_days: int = 3_660
    # A token's principal is remembered this long per process: a revocation elsewhere (the CLI, another
    # instance) takes effect within this window; one in this process at once. 0 = no cache.
    token_cache_seconds: float = 5.0
    # SQLite: run write transactions on the event loop's thread (gateway.inline_sqlite) instead of
    # through aiosqlite's thread, one hop per transaction instead of ~7 per statement. False: every
    # write through aiosqlite (the path reads always take).
    sqlite_inline_writes: bool = True
    log_level: str = "INFO"
    # Credit memo files: where the local file store keeps them, the largest upload, the accepted
    # content types (comma-separated).
    files_dir: str = "./files"
    max_file_bytes: int = 10_000_000
    file_content_types: str = "application/pdf,image/png,image/jpeg,text/plain,text/csv"
    # Outgoing mail (emailCreditMemo). No host: emails fail with a clear error on the memo.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "billing@localhost"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 30.0
    # Browser origins allowed to call the API (CORS), comma-separated in the environment; none by default.
    cors_origins: tuple[str, ...] = ()
    # Automatic persisted queries: how many queries (and bytes of query text) the LRU cache keeps.
    persisted_query_entries: int = 1_000
    persisted_query_bytes: int = 16_000_000
    # Responses at least this long are gzipped for clients that accept it (0: never).
    gzip_min_bytes: int = 1_000
    # Logs: "json" (one object a line), "text" (for a person), or "auto": text on a terminal, else JSON.
    log_format: str = "auto"
    # Dependencies that do not answer: every wait is bounded (see README, Operations).
    database_connect_timeout_seconds: float = 5.0
    database_statement_timeout_seconds: float = 30.0
    # PostgreSQL: connections kept open, and how many more may open under load (each closed again
    # when it comes back to a full pool: a new backend, its statements prepared anew).
    database_pool_size: int = 20
    database_max_overflow: int = 10
    redis_timeout_seconds: float = 2.0
    readiness_timeout_seconds: float = 1.5
    # A worker that lost the database retries after 0.5 s, 1 s, 2 s … up to this.
    worker_backoff_max_seconds: float = 30.0
    # The Retry-After of a 503 while the database is unavailable.
    retry_after_seconds: int = 5
    # GET /metrics (Prometheus): "admin" (an admin token when auth is on), "public", or "off".
    metrics: str = "admin"
    # SIGTERM: in-flight requests get this long to finish; running jobs are handed back at once.
    shutdown_grace_seconds: float = 20.0
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        object.__setattr__(self, "database_url", async_database_url(self.database_url))
        for name, allowed in (
            ("log_format", ("auto", "json", "text")),
            ("metrics", ("admin", "public", "off")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{PREFIX}{name.upper()} must be one of {', '.join(allowed)}")
        for name, least in (("database_pool_size", 1), ("database_max_overflow", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{PREFIX}{name.upper()} must be at least {least}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Every field is ``GATEWAY_<FIELD>``; every limit is ``GATEWAY_LIMIT_<NAME>``."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "limits":
                continue
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                try:
                    values[f.name] = _parse(raw, f.type)
                except ValueError:
                    kind = "a whole number" if "int" in str(f.type) else "a number"
                    raise ValueError(f"{PREFIX}{f.name.upper()}={raw!r} is not {kind}") from None
        limits = {}
        for name in Limits.names():
            raw = environ.get(f"{PREFIX}LIMIT_{name.upper()}")
            if raw:
                limits[name] = int(raw.replace("_", "").replace(",", ""))
        return cls(**values, limits=Limits(**limits))

    @classmethod
    def env_names(cls) -> set[str]:
        """Every environment variable the settings read (the docker test checks compose against it)."""
        names = {PREFIX + f.name.upper() for f in dataclasses.fields(cls) if f.name != "limits"}
        return names | {f"{PREFIX}LIMIT_{n.upper()}" for n in Limits.names()}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def allowed_content_types(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.file_content_types.split(",") if t.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None


def async_database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` (what everyone writes) mean the async driver here."""
    for plain in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def _parse(raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if "bool" in kind:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if "float" in kind:
        return float(raw)
    if "int" in kind:
        return int(raw)
    return raw
