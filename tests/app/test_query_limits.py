"""Hostile queries are refused before execution with the numbers; cost is on every response;
tokens are rate-limited; bodies are size-limited; introspection can be switched off."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.query_limits import count_tokens, measure
from gateway.rate_limit import RateLimiter
from tests.conftest import StatementCounter


async def client(db: Database, settings: Settings, token: str, **limits: object) -> httpx.AsyncClient:
    app = create_app(settings.replace(**limits), db=db)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g",
                             headers={"Authorization": f"Bearer {token}"})


def test_cost_multiplies_connection_sizes_through_the_nesting() -> None:
    from graphql import parse

    doc = parse("{ creditMemos(first: 100) { nodes { items(first: 50) { nodes { id } } parts { nodes { id } } } } }")
    m = measure(doc, None, 50)
    assert (m.cost, m.depth) == (100 + 100 * 50 + 100 * 50, 4)
    with_var = parse("query($n: Int) { accounts(first: $n) { nodes { invoices { totalCount } } } }")
    assert measure(with_var, {"n": 3}, 50).cost == 3 + 3 * 50


async def test_a_costly_query_is_refused_before_it_touches_the_database(
    db: Database, settings: Settings, admin_token: str, sql: StatementCounter
) -> None:
    async with await client(db, settings, admin_token, max_query_cost=5_000) as c:
        with sql:
            r = await c.post("/graphql", json={"query": "{ creditMemos(first: 100) { nodes { items(first: 50) { nodes { id } } } } }"})
        body = r.json()
        assert "data" not in body or body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "category": "LIMIT_EXCEEDED",
                                       "limit": {"name": "MAX_QUERY_COST", "max": 5000, "actual": 5100}}
        assert [q for q in sql.statements if "credit_memo" in q] == []
        ok = (await c.post("/graphql", json={"query": "{ creditMemos(first: 10) { totalCount } }"})).json()
        assert ok["extensions"]["cost"] == {"requestedNodes": 10, "maxCost": 5000}


@pytest.mark.parametrize(
    ("limits", "query", "code", "name", "maximum", "actual"),
    [
        ({"max_query_depth": 3}, "{ creditMemos { nodes { items { nodes { id } } } } }", "QUERY_TOO_DEEP", "MAX_QUERY_DEPTH", 3, 4),
        ({"max_aliases": 2}, "{ a: limits { totalItems } b: limits { totalItems } c: limits { totalItems } }", "TOO_MANY_ALIASES", "MAX_ALIASES", 2, 3),
        ({"max_query_tokens": 5}, "{ limits { totalItems } }", "TOO_MANY_TOKENS", "MAX_QUERY_TOKENS", 5, 6),
    ],
)
async def test_depth_aliases_and_tokens_over_the_limit(
    db: Database, settings: Settings, admin_token: str, limits: dict, query: str, code: str, name: str,
    maximum: int, actual: int,
) -> None:
    async with await client(db, settings, admin_token, **limits) as c:
        (error,) = (await c.post("/graphql", json={"query": query})).json()["errors"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["limit"] == {"name": name, "max": maximum, "actual": actual}


@pytest.mark.parametrize(
    ("limits", "query"),
    [
        ({"max_query_depth": 4}, "{ creditMemos { nodes { items { nodes { id } } } } }"),
        ({"max_aliases": 3}, "{ a: limits { totalItems } b: limits { totalItems } c: limits { totalItems } }"),
        ({"max_query_tokens": 6}, "{ limits { totalItems } }"),
    ],
)
async def test_at_the_limit_is_allowed(db: Database, settings: Settings, admin_token: str, limits: dict, query: str) -> None:
    async with await client(db, settings, admin_token, **limits) as c:
        assert "errors" not in (await c.post("/graphql", json={"query": query})).json()


def test_tokens_are_lexer_tokens() -> None:
    assert count_tokens("{ limits { totalItems } }") == 6


async def test_introspection_can_be_switched_off(db: Database, settings: Settings, admin_token: str) -> None:
    q = {"query": "{ __schema { types { name } } }"}
    async with await client(db, settings, admin_token) as on:
        assert "errors" not in (await on.post("/graphql", json=q)).json()
    async with await client(db, settings, admin_token, introspection=False) as off:
        assert "introspection" in (await off.post("/graphql", json=q)).json()["errors"][0]["message"].lower()


def test_token_bucket_math() -> None:
    bucket = RateLimiter(rate=2.0, burst=3)
    assert [bucket.take("t", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("t", now=100.0) == pytest.approx(0.5)
    assert bucket.take("other", now=100.0) == 0.0  # per token
    assert bucket.take("t", now=100.5) == 0.0  # half a second later: one more
    assert bucket.take("t", now=100.5) == pytest.approx(0.5)


async def test_a_token_over_its_rate_is_throttled_with_the_wait(db: Database, settings: Settings, admin_token: str) -> None:
    async with await client(db, settings, admin_token, rate_limit_per_second=0.5, rate_limit_burst=2) as c:
        codes = [(await c.post("/graphql", json={"query": "{ limits { totalItems } }"})) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    error = codes[2].json()["errors"][0]
    assert error["extensions"]["code"] == "THROTTLED" and 0 < error["extensions"]["retryAfterSeconds"] <= 2
    assert codes[2].headers["Retry-After"] == "2"


async def test_a_body_over_the_limit_is_413(db: Database, settings: Settings, admin_token: str) -> None:
    async with await client(db, settings, admin_token, max_body_bytes=200) as c:
        r = await c.post("/graphql", json={"query": "{ limits { totalItems } }", "pad": "x" * 500})
        ok = await c.post("/graphql", json={"query": "{ limits { totalItems } }"})
    assert r.status_code == 413 and r.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert ok.status_code == 200
