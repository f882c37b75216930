"""The database and Redis taken away: JSON 503s with the request id, readiness within its bound,
one log line when a dependency goes and one when it is back, backoff, recovery."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway import auth
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.jobs import Worker
from tests import outage
from tests.outage import Proxy, free_port, gateway

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL")
QUERY = {"query": "query Count { accounts { totalCount } }"}


@pytest.fixture
def silent_port() -> Iterator[int]:
    with outage.silent_server() as port:
        yield port


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway.outage"]


@pytest.mark.parametrize("auth_on", [True, False], ids=["token-check", "resolver"])
async def test_a_lost_database_is_a_json_503_with_the_request_id(
    auth_on: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"postgresql://x@127.0.0.1:{free_port()}/none", workers=0, auth=auth_on)
    app = create_app(settings)
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        answers = [
            await client.post("/graphql", json=QUERY, headers={"Authorization": "Bearer t", **extra})
            for extra in ({"X-Request-Id": "client-id-1"}, {"X-Request-Id": "not valid!"}, {})
        ]
    for r in answers:
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        (error,) = r.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["requestId"] == r.headers["x-request-id"]
    assert answers[0].headers["x-request-id"] == "client-id-1"
    assert answers[1].headers["x-request-id"] != "not valid!"
    (line,) = outage_lines(caplog)  # three failed requests, one line
    assert line.startswith("database unavailable: ConnectionRefusedError")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_readyz_answers_within_two_seconds_when_the_database_never_answers(silent_port: int) -> None:
    app = create_app(Settings(database_url=f"postgresql://x@127.0.0.1:{silent_port}/none", workers=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        started = time.monotonic()
        ready = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert (ready.status_code, ready.json()) == (
        503,
        {"status": "unavailable", "database": "unreachable", "redis": "not configured"},
    )
    assert elapsed < 2.0


async def test_redis_down_is_degraded_not_unready(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.5)
    db = Database(settings)
    token = await auth.create_token(db, name="ops", permissions=["admin"])
    app = create_app(settings, db=db)
    caplog.set_level(logging.INFO)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://g",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            ready = await client.get("/readyz")
            created = [
                await client.post(
                    "/graphql",
                    json={
                        "query": 'mutation { createAccount(input: {name: "a", currency: "USD"}) { userErrors { code } } }'
                    },
                )
                for _ in range(3)
            ]
    finally:
        await db.dispose()
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": "ok", "redis": "degraded"},
    )
    assert [r.json()["data"] for r in created] == [{"createAccount": {"userErrors": []}}] * 3
    (line,) = outage_lines(caplog)
    assert line.startswith("redis unavailable: ")


async def test_a_worker_backs_off_and_logs_one_line_each_way(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(db, settings.replace(worker_backoff_max_seconds=0.05, job_poll_seconds=0.01))
    real_claim = worker.claim
    calls: list[float] = []

    async def claim():  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        if len(calls) <= 8:
            raise ConnectionRefusedError(111, "Connect call failed")
        return await real_claim()

    monkeypatch.setattr(worker, "claim", claim)
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        deadline = time.monotonic() + 20
        while len(calls) < 14 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(calls) >= 14
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps[:8]) >= 0.5 * 0.5 * 0.05 * 0.9  # waited between failed attempts (jittered)
    lines = outage_lines(caplog)
    assert len(lines) == 2, lines
    assert (
        lines[0]
        == "database unavailable: ConnectionRefusedError: [Errno 111] Connect call failed; retrying with backoff"
    )
    assert lines[1].startswith("database available again after ")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _json_lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


@pytest.mark.skipif(not PG_URL, reason="needs GATEWAY_TEST_DATABASE_URL")
async def test_postgresql_taken_away_and_given_back_under_a_running_server(
    pg_database: str, tmp_path: Path
) -> None:
    target = urlsplit(pg_database)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    via_proxy = pg_database.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
    log = tmp_path / "gateway.log"
    env = {
        "GATEWAY_WORKERS": "2",
        "GATEWAY_JOB_POLL_SECONDS": "0.02",
        "GATEWAY_WORKER_BACKOFF_MAX_SECONDS": "1",
        # the cached token answers without the database, so the loop below is fast: not a rate test
        "GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
        "GATEWAY_RATE_LIMIT_BURST": "100000",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    db = Database(Settings(database_url=pg_database))
    token = await auth.create_token(db, name="ops", permissions=["admin"])
    await db.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        gateway(via_proxy, log, **env) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as client,
    ):
        assert (await client.post("/graphql", json=QUERY)).json()["data"] == {"accounts": {"totalCount": 0}}
        await proxy.cut()
        down_since = time.monotonic()
        refused = 0
        while time.monotonic() - down_since < 3 or refused < 10:
            r = await client.post("/graphql", json=QUERY)
            assert r.status_code == 503, r.text
            assert r.json()["errors"][0]["extensions"]["requestId"] == r.headers["x-request-id"]
            assert r.headers["retry-after"] == "5"
            started = time.monotonic()
            ready = await client.get("/readyz")
            assert time.monotonic() - started < 2.0
            assert ready.status_code == 503
            refused += 1
        await proxy.start()  # the same port again
        deadline = time.monotonic() + 30
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the gateway did not recover"
            await asyncio.sleep(0.1)
        assert (await client.post("/graphql", json=QUERY)).json()["data"] == {"accounts": {"totalCount": 0}}
    await proxy.cut()
    lines = _json_lines(log)
    assert lines, log.read_text()
    assert all("request_id" in line for line in lines if line["logger"] == "gateway.access")
    others = [line for line in lines if line["logger"] != "gateway.access"]
    events = [str(line["event"]) for line in others if line["logger"] == "gateway.outage"]
    assert len(events) == 2, events
    assert events[0].startswith("database unavailable: ") and events[1].startswith("database available again")
    assert not [line for line in others if line["level"] in ("error", "critical")], others
    assert len(others) < 20, others  # not a traceback per poll: 2 workers polled every 20 ms for 3 s


@pytest.mark.skipif(not REDIS_URL, reason="needs GATEWAY_TEST_REDIS_URL")
async def test_redis_taken_away_and_given_back_under_a_running_server(
    database_url: str, tmp_path: Path
) -> None:
    assert REDIS_URL
    target = urlsplit(REDIS_URL)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    log = tmp_path / "gateway.log"
    db = Database(Settings(database_url=database_url))
    token = await auth.create_token(db, name="ops", permissions=["admin"])
    await db.dispose()
    env = {
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{proxy.port}{target.path}",
        "GATEWAY_REDIS_TIMEOUT_SECONDS": "0.5",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    create = {
        "query": 'mutation { createAccount(input: {name: "a", currency: "USD"}) { userErrors { code } } }'
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        gateway(database_url, log, **env) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as client,
    ):
        assert (await client.get("/readyz")).json()["redis"] == "ok"
        await proxy.cut()
        for _ in range(20):
            assert (await client.post("/graphql", json=create)).json()["data"] == {
                "createAccount": {"userErrors": []}
            }
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()["redis"]) == (200, "degraded")
        await proxy.start()
        deadline = time.monotonic() + 30
        while (await client.get("/readyz")).json()["redis"] != "ok":
            assert time.monotonic() < deadline, "redis did not come back"
            await asyncio.sleep(0.1)
    await proxy.cut()
    others = [line for line in _json_lines(log) if line["logger"] != "gateway.access"]
    events = [str(line["event"]) for line in others if line["logger"] == "gateway.outage"]
    assert len(events) == 2, events
    assert events[0].startswith("redis unavailable: ") and events[1].startswith("redis available again")
    assert not [line for line in others if line["level"] in ("error", "critical")], others


async def test_a_websocket_without_its_database_is_closed_1013_without_a_traceback(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    log = tmp_path / "gateway.log"
    env = {"GATEWAY_LOG_FORMAT": "json", "GATEWAY_WORKERS": "0"}
    async with gateway(f"postgresql://x@127.0.0.1:{free_port()}/none", log, **env) as base:
        codes = []
        for _ in range(3):
            ws = await connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer t"}}))
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 20)
            codes.append((ws.close_code, ws.close_reason))
    assert codes == [(1013, "database unavailable")] * 3
    others = [line for line in _json_lines(log) if line["logger"] != "gateway.access"]
    assert [line["event"] for line in others if line["level"] != "info"] == [
        "database unavailable: ConnectionRefusedError: [Errno 111] Connection refused; retrying with backoff"
    ]


async def test_a_database_that_never_answers_is_a_503_within_the_connect_timeout(silent_port: int) -> None:
    settings = Settings(
        database_url=f"postgresql://x@127.0.0.1:{silent_port}/none",
        workers=0,
        database_connect_timeout_seconds=0.5,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        started = time.monotonic()
        r = await client.post("/graphql", json=QUERY, headers={"Authorization": "Bearer t"})
        elapsed = time.monotonic() - started
    assert r.status_code == 503 and r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert elapsed < 2.0
