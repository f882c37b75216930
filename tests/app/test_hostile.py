"""Hostile requests: too deep, too many aliases or tokens, too costly, introspection off, too
fast, too large. Each is refused before execution with an exact code and the numbers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, get_introspection_query, parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.hardening import (
    BodySizeLimit,
    RateLimiter,
    count_tokens,
    hardening_extensions,
    query_cost,
    query_shape,
    throttled_response,
)
from schema.build import build_schema
from tests import factories as f

NESTED = "{ creditMemos(first: 100) { nodes { items(first: 50) { nodes { id } } } } }"
DEPTH_3 = "{ creditMemos { nodes { id } } }"
DEPTH_4 = "{ creditMemos { nodes { account { id } } } }"
SCHEMA = build_schema()._schema


async def run(db: Database, settings: Settings, query: str, **variables: Any) -> tuple[Any, int]:
    """The result and the number of SQL statements the operation ran."""
    schema = build_schema(hardening_extensions(settings))
    context = Context(db=db, settings=settings, principal=ANONYMOUS_ADMIN)
    try:
        result = await schema.execute(query, variable_values=variables, context_value=context)
    finally:
        await context.close()
    return result, context.statements


def refusal(result: Any) -> dict[str, Any]:
    """The one error of a refused operation (no data), its extensions."""
    assert result.data is None
    assert len(result.errors) == 1, [e.formatted for e in result.errors]
    return result.errors[0].extensions  # type: ignore[no-any-return]


def limit(code: str, name: str, max: int, actual: int) -> dict[str, Any]:
    return {"code": code, "category": "LIMIT_EXCEEDED", "limit": {"name": name, "max": max, "actual": actual}}


# The measures, without a database.


def shape(query: str) -> tuple[int, int]:
    """(depth, aliases) of a document's first operation."""
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return query_shape(operation.selection_set, fragments)


def test_depth_counts_selection_levels_through_fragments() -> None:
    assert shape("{ a }") == (1, 0)
    assert shape(DEPTH_3) == (3, 0)
    assert shape("{ a { ...F } } fragment F on T { b { ... on U { c { d } } } }") == (4, 0)
    # ofType is the linear wrapper chain of introspection: GraphiQL's schema query fits the default.
    assert shape(get_introspection_query()) == (6, 0)


def test_aliases_count_every_aliased_field_with_fragments_expanded_in_linear_time() -> None:
    assert shape("{ a: x b: y { c: z d } e }") == (2, 3)
    assert shape("{ ...F ...F } fragment F on Query { x: a y: b }") == (1, 4)
    # 40 fragments, each spreading the next twice: 2**40 aliased fields, measured without expanding.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    started = time.perf_counter()
    assert shape("{ ...F0 } " + chain + " fragment F40 on Query { a: x }") == (1, 2**40)
    assert time.perf_counter() - started < 0.5
    assert shape("{ ...A } fragment A on Query { ...B x: a } fragment B on Query { ...A }") == (1, 1)  # cycle


def test_tokens_are_counted_like_graphql_core_parser_counts_them_comments_included() -> None:
    for query in (NESTED, '# a comment\n{ a(x: "s", y: [1, 2]) { b } } # another', "{ a }"):
        assert count_tokens(query) == parse(query).token_count  # type: ignore[attr-defined]
    assert count_tokens("{ a }") == 3
    assert count_tokens("{ a b c d e f }", stop_after=3) == 4


def test_cost_multiplies_every_connection_subtree_by_its_first() -> None:
    """requestedNodes = Σ over connection fields of first × (product of the firsts above it) + 1 per
    plain object field per instance of its parent; nodes/edges/node/pageInfo and scalars are free."""
    assert query_cost(SCHEMA, parse(NESTED), None, 50) == 100 + 100 * 50
    assert query_cost(SCHEMA, parse("{ creditMemos { totalCount } }"), None, 50) == 50  # first defaults
    assert query_cost(SCHEMA, parse("{ creditMemos { edges { node { id } } } }"), None, 7) == 7
    # a plain object field is 1 node per instance of its parent: 10 + 10 × (account 1 + referredInvoice 1)
    plain = "{ creditMemos(first: 10) { nodes { account { id } referredInvoice { id } } pageInfo { hasNextPage } } }"
    assert query_cost(SCHEMA, parse(plain), None, 50) == 10 + 10 * 2
    # first from a variable, from the variable's default, or the page default when null
    by_variable = (
        "query($n: Int = 20) { creditMemos(first: $n) { nodes { items(first: 3) { nodes { id } } } } }"
    )
    assert query_cost(SCHEMA, parse(by_variable), {"n": 100}, 50) == 100 + 100 * 3
    assert query_cost(SCHEMA, parse(by_variable), {}, 50) == 20 + 20 * 3
    assert query_cost(SCHEMA, parse(by_variable), {"n": None}, 50) == 50 + 50 * 3
    # fragments and inline fragments; nodes(ids:) asks for len(ids) nodes
    fragment = "{ ...M } fragment M on Query { creditMemos(first: 4) { nodes { ... on CreditMemo { items(first: 5) { totalCount } } } } }"
    assert query_cost(SCHEMA, parse(fragment), None, 50) == 4 + 4 * 5
    by_ids = '{ nodes(ids: ["a", "b", "c"]) { ... on CreditMemo { items(first: 10) { nodes { id } } } } }'
    assert query_cost(SCHEMA, parse(by_ids), None, 50) == 3 + 3 * 10
    assert query_cost(SCHEMA, parse("{ __schema { types { name } } limits { totalItems } }"), None, 50) == 1


# Through the schema, with small limits.


async def test_a_query_at_the_depth_limit_runs_and_one_level_more_is_refused(
    db: Database, settings: Settings
) -> None:
    small = settings.replace(max_query_depth=3)
    ok, _ = await run(db, small, DEPTH_3)
    assert ok.errors is None and ok.data == {"creditMemos": {"nodes": []}}
    refused, statements = await run(db, small, DEPTH_4)
    assert refusal(refused) == limit("QUERY_TOO_DEEP", "QUERY_DEPTH", 3, 4)
    assert refused.errors[0].message == (
        "this query has 4 levels of nesting, more than the limit of 3: fetch the deeper data in a second query, by id"
    )
    assert statements == 0


async def test_aliases_over_the_limit_are_refused(db: Database, settings: Settings) -> None:
    small = settings.replace(max_aliases=2)
    ok, _ = await run(db, small, "{ a: accounts { totalCount } b: accounts { totalCount } }")
    assert ok.errors is None and ok.data == {"a": {"totalCount": 0}, "b": {"totalCount": 0}}
    query = "{ a: accounts { totalCount } b: accounts { totalCount } c: accounts { n: totalCount } }"
    refused, statements = await run(db, small, query)
    assert (refusal(refused), statements) == (limit("TOO_MANY_ALIASES", "ALIASES", 2, 4), 0)


async def test_a_document_over_the_token_limit_is_refused_with_its_count(
    db: Database, settings: Settings
) -> None:
    query = "{ accounts { totalCount } } # a comment is a token too"
    assert count_tokens(query) == 7
    ok, _ = await run(db, settings.replace(max_query_tokens=7), query)
    assert ok.errors is None and ok.data == {"accounts": {"totalCount": 0}}
    refused, statements = await run(db, settings.replace(max_query_tokens=6), query)
    assert (refusal(refused), statements) == (limit("TOO_MANY_TOKENS", "QUERY_TOKENS", 6, 7), 0)
    assert refused.errors[0].message.startswith("this query has 7 tokens, more than the limit of 6")
    # a huge document is counted only up to 10 × the limit: a refusal stays cheap
    huge, _ = await run(db, settings.replace(max_query_tokens=6), "{ " + "a " * 100_000 + "}")
    assert refusal(huge)["limit"] == {"name": "QUERY_TOKENS", "max": 6, "actual": 61}


async def test_cost_over_the_limit_is_refused_before_anything_is_read(
    db: Database, settings: Settings
) -> None:
    await f.credit_memo(db, await f.account(db))
    ok, _ = await run(db, settings.replace(max_query_cost=5_100), NESTED)
    assert ok.errors is None and len(ok.data["creditMemos"]["nodes"]) == 1
    assert ok.extensions == {"cost": {"requestedNodes": 5_100, "maxCost": 5_100}}
    refused, statements = await run(db, settings.replace(max_query_cost=5_099), NESTED)
    assert (refusal(refused), statements) == (limit("QUERY_TOO_COSTLY", "QUERY_COST", 5_099, 5_100), 0)
    assert refused.errors[0].message == (
        "this query has 5,100 nodes requested, more than the limit of 5,099: "
        "ask for fewer items per page (a smaller first); page with after"
    )
    by_variable = "query($n: Int) { creditMemos(first: $n) { nodes { items(first: 50) { nodes { id } } } } }"
    refused, _ = await run(db, settings.replace(max_query_cost=5_099), by_variable, n=100)
    assert refusal(refused)["limit"] == {"name": "QUERY_COST", "max": 5_099, "actual": 5_100}


async def test_every_executed_operation_reports_its_cost(db: Database, settings: Settings) -> None:
    result, _ = await run(db, settings, "{ accounts(first: 10) { nodes { id } } limits { totalItems } }")
    assert result.errors is None
    assert result.extensions == {"cost": {"requestedNodes": 11, "maxCost": 50_000}}
    mutation = 'mutation { createAccount(input: {name: "x", currency: "USD"}) { account { id } userErrors { code } } }'
    result, _ = await run(db, settings, mutation)
    assert result.errors is None and result.extensions == {"cost": {"requestedNodes": 3, "maxCost": 50_000}}


async def test_introspection_can_be_switched_off(db: Database, settings: Settings) -> None:
    on, _ = await run(db, settings, get_introspection_query())  # GraphiQL's query fits the defaults
    assert on.errors is None and on.data["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}
    off = settings.replace(introspection=False)
    refused, statements = await run(db, off, "{ __schema { types { name } } }")
    assert refused.data is None and statements == 0
    assert [e.message for e in refused.errors] == [
        "GraphQL introspection has been disabled, but the requested query contained the field '__schema'.",
        "GraphQL introspection has been disabled, but the requested query contained the field 'types'.",
    ]
    by_type, _ = await run(db, off, '{ __type(name: "Query") { name } }')
    assert by_type.data is None and "'__type'" in by_type.errors[0].message
    typename, _ = await run(db, off, "{ __typename }")
    assert typename.errors is None and typename.data == {"__typename": "Query"}


async def test_limits_are_validation_rules_beside_the_schemas_own(db: Database, settings: Settings) -> None:
    result, statements = await run(db, settings.replace(max_query_depth=1), "{ nope { x } }")
    assert result.data is None and statements == 0
    assert [e.extensions.get("code") for e in result.errors] == ["QUERY_TOO_DEEP", None]
    assert result.errors[1].message.startswith("Cannot query field 'nope' on type 'Query'.")


async def test_refusals_hold_with_the_apps_parser_and_validation_caches(
    db: Database, settings: Settings
) -> None:
    from strawberry.extensions import ParserCache, ValidationCache

    from gateway.masking import MaskUnexpectedErrors

    small = settings.replace(max_query_depth=4, max_query_tokens=24, max_query_cost=5_099)
    caches = [MaskUnexpectedErrors, lambda: ParserCache(maxsize=8), lambda: ValidationCache(maxsize=8)]
    schema = build_schema([*caches, *hardening_extensions(small)])
    context = Context(db=db, settings=small, principal=ANONYMOUS_ADMIN)
    try:
        for _ in range(2):  # the second time from the caches
            deep = await schema.execute(
                "{ creditMemos { nodes { items { nodes { id } } } } }", context_value=context
            )
            assert refusal(deep) == limit("QUERY_TOO_DEEP", "QUERY_DEPTH", 4, 5)
            long = await schema.execute(NESTED, context_value=context)
            assert refusal(long) == limit("TOO_MANY_TOKENS", "QUERY_TOKENS", 24, 25)
            costly = "{ creditMemos(first: 100) { nodes { items(first: 50) { totalCount } } } }"
            assert refusal(await schema.execute(costly, context_value=context))["limit"]["actual"] == 5_100
            fine = await schema.execute(DEPTH_3, context_value=context)
            assert fine.errors is None and fine.extensions == {
                "cost": {"requestedNodes": 50, "maxCost": 5_099}
            }
    finally:
        await context.close()


# Rate limit and body size, over HTTP.


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate_per_second=2.0, burst=3)
    assert [limiter.take("a", now=10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=10.0) == 0.5  # empty: one token comes back in 1 / 2 s
    assert limiter.take("b", now=10.0) == 0.0  # buckets are per key
    assert limiter.take("a", now=10.25) == 0.25
    assert limiter.take("a", now=10.5) == 0.0
    assert limiter.take("a", now=10.5) == 0.5
    assert [limiter.take("a", now=100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # refilled to burst only
    assert RateLimiter(50.0, 100).take("x") == 0.0  # the monotonic clock by default
    with pytest.raises(ValueError):
        RateLimiter(0.0, 1)


def test_a_throttled_request_gets_429_with_retry_after() -> None:
    response = throttled_response(1.234567)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.body == (
        b'{"errors":[{"message":"too many requests for this API token: wait 1.23 seconds",'
        b'"extensions":{"code":"THROTTLED","category":"LIMIT_EXCEEDED","retryAfterSeconds":1.235}}]}'
    )
    assert throttled_response(0.01).headers["Retry-After"] == "1"


async def _echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


@pytest.fixture
async def small_body_app() -> AsyncIterator[httpx.AsyncClient]:
    app = BodySizeLimit(Starlette(routes=[Route("/", _echo_length, methods=["POST"])]), max_bytes=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


TOO_LARGE = {
    "errors": [
        {
            "message": "the request body is larger than 10 bytes: send a smaller request",
            "extensions": {"code": "REQUEST_TOO_LARGE", "category": "LIMIT_EXCEEDED", "maxBytes": 10},
        }
    ]
}


async def test_a_body_over_the_limit_gets_413_declared_or_streamed(small_body_app: httpx.AsyncClient) -> None:
    ok = await small_body_app.post("/", content=b"x" * 10)
    assert (ok.status_code, ok.json()) == (200, {"received": 10})
    declared = await small_body_app.post("/", content=b"x" * 11)
    assert (declared.status_code, declared.json()) == (413, TOO_LARGE)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"xxxx"

    streamed = await small_body_app.post("/", content=chunks())
    assert "content-length" not in streamed.request.headers
    assert (streamed.status_code, streamed.json()) == (413, TOO_LARGE)


async def test_the_body_limit_wraps_the_graphql_app(
    db: Database, settings: Settings, admin_token: str
) -> None:
    from gateway.app import create_app

    app = BodySizeLimit(create_app(settings, db=db), max_bytes=100)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as client:
        ok = await client.post("/graphql", json={"query": "{ accounts { totalCount } }"})
        assert ok.json()["data"] == {"accounts": {"totalCount": 0}}
        body = orjson.dumps({"query": "{ accounts { totalCount } }" + " " * 100})
        big = await client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and big.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 40):
                yield body[start : start + 40]

        streamed = await client.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert (
            streamed.status_code == 413
            and streamed.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
        )
