"""Shared bench helpers: fresh databases, a real uvicorn server, medians."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.config import Settings
from gateway.migrate import upgrade


async def create_pg_database(pg_url: str) -> str:
    base = pg_url.rpartition("/")[0]
    name = f"gateway_bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = f"{base}/{name}"
    await asyncio.to_thread(upgrade, Settings(database_url=url))
    return url


async def drop_pg_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    engine = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@contextlib.asynccontextmanager
async def database(pg_url: str | None) -> AsyncIterator[str]:
    if pg_url is None:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await asyncio.to_thread(upgrade, Settings(database_url=url))
            yield url
        return
    url = await create_pg_database(pg_url)
    try:
        yield url
    finally:
        await drop_pg_database(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Base(str):
    """A server's base URL, with an admin token for it (``.token``, ``.headers``)."""

    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def admin_token(database_url: str) -> str:
    from gateway import auth
    from gateway.db import Database

    db = Database(Settings(database_url=database_url))
    try:
        return await auth.create_token(db, name=f"admin-{uuid.uuid4().hex[:8]}", permissions=["admin"])
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def server(database_url: str, **env: str) -> AsyncIterator[Base]:
    """A real ``settlement-gateway serve`` process on loopback; yields its base URL (with a token)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env={**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = Base(f"http://127.0.0.1:{port}")
    base.token = await admin_token(database_url)
    try:
        await wait_until_serving(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def wait_until_serving(base: str, proc: subprocess.Popen[bytes], attempts: int = 400) -> None:
    """Poll ``/healthz`` until the server answers; fail early when its process has exited."""
    async with httpx.AsyncClient() as client:
        for _ in range(attempts):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            if proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {proc.returncode}")
            await asyncio.sleep(0.05)
    raise RuntimeError("the gateway did not start")


async def median_ms(fn: Callable[[], Awaitable[object]], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def label(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"
