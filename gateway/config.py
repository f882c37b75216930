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
    # A token's principal is remembered this long per process: a revocation elsewhere (the CLI, another
    # instance) takes effect within this window; one in this process at once. 0 = no cache.
    token_cache_seconds: float = 5.0
    log_level: str = "INFO"
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Every field is ``GATEWAY_<FIELD>``; every limit is ``GATEWAY_LIMIT_<NAME>``."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "limits":
                continue
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(raw, f.type)
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
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None


def _parse(raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    if "bool" in kind:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if "float" in kind:
        return float(raw)
    if "int" in kind:
        return int(raw)
    return raw
