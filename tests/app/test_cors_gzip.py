"""CORS for browser apps on other origins (``GATEWAY_CORS_ORIGINS``) and gzip for large responses."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.db import Database
from tests import factories as f
from tests.conftest import app_client

APP_ORIGIN = "https://app.example"


@pytest.fixture
async def cors(db: Database, settings: Settings, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        db,
        settings.replace(cors_origins=(APP_ORIGIN, "https://other.example"), rate_limit_burst=2),
        admin_token,
    ) as client:
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
    }


def test_origins_are_read_comma_separated_from_the_environment() -> None:
    env = {"GATEWAY_CORS_ORIGINS": "https://a.example, http://127.0.0.1:3000,"}
    assert Settings.from_env(env).cors_origins == ("https://a.example", "http://127.0.0.1:3000")
    assert Settings.from_env({}).cors_origins == ()
    assert "GATEWAY_CORS_ORIGINS" in Settings.env_names()


async def test_a_preflight_from_an_allowed_origin_is_answered(cors: httpx.AsyncClient) -> None:
    r = await cors.options("/graphql", headers=preflight(APP_ORIGIN))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "idempotency-key", "content-type"} <= allowed
    assert "POST" in r.headers["access-control-allow-methods"]


async def test_a_preflight_from_another_origin_is_refused(cors: httpx.AsyncClient) -> None:
    r = await cors.options("/graphql", headers=preflight("https://evil.example"))
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


async def test_answers_to_an_allowed_origin_expose_retry_after_even_when_throttled(
    cors: httpx.AsyncClient,
) -> None:
    statuses = []
    for _ in range(4):
        r = await cors.post(
            "/graphql", json={"query": "{ limits { totalItems } }"}, headers={"Origin": APP_ORIGIN}
        )
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-expose-headers"] == "Retry-After, X-Request-Id"
        statuses.append(r.status_code)
    assert statuses[:2] == [200, 200] and statuses[-1] == 429
    assert int(r.headers["retry-after"]) >= 1


async def test_without_configured_origins_there_is_no_cors(http: httpx.AsyncClient) -> None:
    r = await http.options("/graphql", headers=preflight(APP_ORIGIN))
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers
    plain = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP_ORIGIN})
    assert "access-control-allow-origin" not in plain.headers


async def test_large_responses_are_gzipped_when_the_client_accepts_it(
    http: httpx.AsyncClient, db: Database
) -> None:
    for _ in range(30):
        await f.account(db)
    query = {"query": "{ accounts(first: 30) { nodes { id number name currency } } }"}
    async with http.stream("POST", "/graphql", json=query, headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    body = orjson.loads(gzip.decompress(raw))
    assert len(body["data"]["accounts"]["nodes"]) == 30 and len(raw) < len(gzip.decompress(raw))
    identity = await http.post("/graphql", json=query, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in identity.headers and identity.json() == body


async def test_small_responses_are_not_compressed(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and r.json() == {"status": "ok"}
