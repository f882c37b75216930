"""Shared bench helpers: fresh databases, a real uvicorn server, medians."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.processes import Process, running, wait_until
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
    pid: int

    def rss_kib(self) -> int:
        """The server process's resident memory (Linux /proc), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far, user and system (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


async def wait_until_up(
    probe: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], name: str, seconds: float
) -> None:
    """Polls ``probe`` until it answers 200, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await probe(client)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{name} did not start within {seconds:.0f} s")


@contextlib.asynccontextmanager
async def server(database_url: str, **env: str) -> AsyncIterator[Base]:
    """A real ``settlement-gateway serve`` process on loopback; yields its base URL (with a token).
    It is ready when ``/healthz`` answers (deadline 60 s) and is stopped, with anything it started,
    whatever happens."""
    port = free_port()
    settings = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_LOG_LEVEL": "WARNING", **env}
    with running(["serve", "--port", str(port)], settings) as process:
        base = Base(f"http://127.0.0.1:{port}")
        base.token = await admin_token(database_url)
        base.pid = process.popen.pid
        await until_healthy(base, process)
        yield base


async def until_healthy(base: str, process: Process) -> None:
    """Poll ``/healthz`` until the server answers (deadline 60 s); fail at once, with its output,
    when its process has exited."""
    async with httpx.AsyncClient(timeout=5) as client:

        async def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(f"{base}/healthz")).status_code == 200
            return False

        await wait_until(healthy, f"the gateway at {base} answering /healthz", process=process)


async def median_ms(fn: Callable[[], Awaitable[object]], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def interleaved_ms(
    fns: dict[str, Callable[[], Awaitable[object]]],
    runs: int,
    warmup: int = 2,
    between: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Medians of ``fns`` measured in turn within each run, so that a noisy neighbour slows them all
    alike and the ratios stay meaningful; ``between(name)`` runs untimed before each measurement."""
    for fn in fns.values():
        for _ in range(warmup):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            if between is not None:
                between(name)
            start = time.perf_counter()
            await fn()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def label(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"
