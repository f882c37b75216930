"""Rate limits: failed authentications per client address; buckets shared by every instance through
Redis (when GATEWAY_TEST_REDIS_URL is set), and the process's own buckets when Redis is down."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import orjson
import pytest

from gateway import auth
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.ratelimit import Buckets, redis_client

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL")
QUERY = {"query": "{ accounts { totalCount } }"}


async def test_failed_authentications_are_throttled_per_client_address(
    db: Database, settings: Settings
) -> None:
    token = await auth.create_token(db, name="good", permissions=["read"])
    app = create_app(settings.replace(auth_failure_burst=3, auth_failures_per_second=0.001), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        statuses = []
        for n in range(5):
            response = await client.post(
                "/graphql", json=QUERY, headers={"Authorization": f"Bearer guess{n}"}
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429, 429]
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "THROTTLED" and int(response.headers["Retry-After"]) > 1
        # A valid token from the same address is not held back by the failures.
        ok = await client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {
            "data": {"accounts": {"totalCount": 0}},
            "extensions": ok.json()["extensions"],
        }


async def test_without_redis_a_bucket_is_per_process_and_redis_down_falls_back_to_it() -> None:
    down = redis_client("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        buckets = Buckets(0.001, 2, down)
        assert [await buckets.take("k") for _ in range(2)] == [0.0, 0.0]
        assert await buckets.take("k") > 0  # still limited, per process
    finally:
        await down.aclose()


@pytest.mark.skipif(not REDIS_URL, reason="GATEWAY_TEST_REDIS_URL is not set")
async def test_two_instances_share_one_bucket_through_redis() -> None:
    first, second = redis_client(REDIS_URL), redis_client(REDIS_URL)
    try:
        key = uuid.uuid4().hex
        a, b = Buckets(0.01, 4, first), Buckets(0.01, 4, second)  # two processes, one Redis
        taken = [await a.take(key), await b.take(key), await a.take(key), await b.take(key)]
        assert taken == [0.0, 0.0, 0.0, 0.0]
        wait = await b.take(key)
        assert 99 < wait <= 100  # one token comes back in 1 / 0.01 s
        assert await a.take(uuid.uuid4().hex) == 0.0  # buckets are per key
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.skipif(not REDIS_URL, reason="GATEWAY_TEST_REDIS_URL is not set")
async def test_the_app_limits_through_redis_when_configured(db: Database, settings: Settings) -> None:
    token = await auth.create_token(db, name=f"shared-{uuid.uuid4().hex[:8]}", permissions=["read"])
    limited = settings.replace(redis_url=REDIS_URL, rate_limit_burst=2, rate_limit_per_second=0.01)
    apps = [create_app(limited, db=db), create_app(limited, db=db)]  # two instances
    headers = {"Authorization": f"Bearer {token}"}
    statuses = []
    for app in apps:
        transport = httpx.ASGITransport(app=app)
        # The lifespan closes the instance's Redis client.
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://g") as client,
        ):
            for _ in range(2 if app is apps[0] else 1):
                statuses.append((await client.post("/graphql", json=QUERY, headers=headers)).status_code)
    assert statuses == [200, 200, 429]


async def test_failed_websocket_logins_are_throttled_per_client_address(settings: Settings) -> None:
    """Both WebSocket protocols, through a real server: past the burst of failures from one address,
    graphql-transport-ws closes with 4429 instead of 4403 and graphql-ws's connection_error says
    THROTTLED; HTTP shares the bucket; a valid token from that address still connects."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from benchmarks.common import server

    async def login(base: str, protocol: str, token: str) -> tuple[int | None, dict[str, Any]]:
        """(close code, or None) and the first message, after a connection_init with ``token``."""
        async with connect(base.replace("http", "ws") + "/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            await ws.send(
                orjson.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                ).decode()
            )
            try:
                message = orjson.loads(await ws.recv())
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, {"reason": closed.rcvd.reason}
            return None, message

    env = {
        "GATEWAY_WORKERS": "0",
        "GATEWAY_AUTH_FAILURE_BURST": "3",
        "GATEWAY_AUTH_FAILURES_PER_SECOND": "0.001",
    }
    async with server(settings.database_url, **env) as base:
        assert await login(base, "graphql-transport-ws", "guess1") == (4403, {"reason": "Forbidden"})
        code, message = await login(base, "graphql-ws", "guess2")
        assert code is None and message["type"] == "connection_error"
        assert message["payload"]["code"] == "UNAUTHENTICATED"
        assert await login(base, "graphql-transport-ws", "guess3") == (4403, {"reason": "Forbidden"})

        code, closed = await login(base, "graphql-transport-ws", "guess4")
        assert code == 4429 and closed["reason"].startswith("THROTTLED: too many failed authentications")
        code, message = await login(base, "graphql-ws", "guess5")
        assert code is None and message["type"] == "connection_error"
        assert message["payload"]["code"] == "THROTTLED" and message["payload"]["retryAfterSeconds"] > 1
        async with httpx.AsyncClient(base_url=base) as http:  # the same bucket as HTTP's
            refused = await http.post("/graphql", json=QUERY, headers={"Authorization": "Bearer guess6"})
        assert refused.status_code == 429 and refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"

        for protocol in ("graphql-transport-ws", "graphql-ws"):
            code, message = await login(base, protocol, base.token)
            assert code is None and message["type"] == "connection_ack"
