"""Rate limits: failed authentications per client address; buckets shared by every instance through
Redis (when GATEWAY_TEST_REDIS_URL is set), and the process's own buckets when Redis is down."""

from __future__ import annotations

import os
import uuid

import httpx
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
