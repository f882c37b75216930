"""Automatic persisted queries over HTTP, as Apollo Client sends them (its default ``Accept: */*``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from gateway.db import Database
from tests import factories as f
from tests.conftest import app_client

APOLLO = {"Accept": "*/*"}
ACCOUNTS = "query Accounts { accounts { totalCount nodes { number } } }"


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


async def by_hash_get(client: httpx.AsyncClient, query: str, **variables: Any) -> httpx.Response:
    params = {"extensions": json.dumps(persisted(query))}
    if variables:
        params["variables"] = json.dumps(variables)
    return await client.get("/graphql", params=params, headers=APOLLO)


@pytest.fixture
async def small_cache(db: Database, settings: Settings, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(db, settings.replace(persisted_query_entries=2), admin_token) as client:
        yield client


async def test_a_miss_then_the_query_with_its_hash_then_the_hash_alone_by_get(
    http: httpx.AsyncClient, db: Database
) -> None:
    await f.account(db)
    miss = await by_hash_get(http, ACCOUNTS)
    assert miss.status_code == 200
    assert miss.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND", "category": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    registered = await http.post("/graphql", json={"query": ACCOUNTS, "extensions": persisted(ACCOUNTS)})
    expected = {"accounts": {"totalCount": 1, "nodes": [{"number": "A00000001"}]}}
    assert registered.json()["data"] == expected
    hit = await by_hash_get(http, ACCOUNTS)
    assert hit.status_code == 200 and hit.headers["content-type"] == "application/json"
    assert hit.json()["data"] == expected
    by_post = await http.post("/graphql", json={"extensions": persisted(ACCOUNTS)}, headers=APOLLO)
    assert by_post.json()["data"] == expected


async def test_variables_travel_beside_the_hash(http: httpx.AsyncClient, db: Database) -> None:
    await f.account(db, "JPY")
    query = "query($n: String!) { account(number: $n) { currency } }"
    await http.post("/graphql", json={"query": query, "extensions": persisted(query)})
    hit = await by_hash_get(http, query, n="A00000001")
    assert hit.json()["data"] == {"account": {"currency": "JPY"}}


async def test_a_hash_that_does_not_match_the_query_is_refused(http: httpx.AsyncClient) -> None:
    lie = {
        "persistedQuery": {
            "version": 1,
            "sha256Hash": hashlib.sha256(b"{ limits { totalItems } }").hexdigest(),
        }
    }
    r = await http.post("/graphql", json={"query": ACCOUNTS, "extensions": lie})
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_VALUE"
    assert error["extensions"]["field"] == ["extensions", "persistedQuery", "sha256Hash"]
    # and nothing was remembered under the lying hash
    assert (await by_hash_get(http, "{ limits { totalItems } }")).json()["errors"][0]["message"] == (
        "PersistedQueryNotFound"
    )


async def test_a_malformed_persisted_query_extension_is_a_clear_error(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/graphql", json={"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}}
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["field"] == ["extensions", "persistedQuery"]


async def test_a_persisted_mutation_is_not_run_by_get(http: httpx.AsyncClient, db: Database) -> None:
    mutation = 'mutation { createAccount(input: {name: "x", currency: "USD"}) { userErrors { code } } }'
    await http.post("/graphql", json={"query": mutation, "extensions": persisted(mutation)})
    r = await by_hash_get(http, mutation)
    assert r.status_code in (400, 405)
    accounts = await http.post("/graphql", json={"query": "{ accounts { totalCount } }"})
    assert accounts.json()["data"] == {"accounts": {"totalCount": 1}}  # only the POST created one


async def test_without_a_token_nothing_is_remembered(http: httpx.AsyncClient) -> None:
    anonymous = await http.post(
        "/graphql",
        json={"query": ACCOUNTS, "extensions": persisted(ACCOUNTS)},
        headers={"Authorization": ""},
    )
    assert anonymous.status_code == 401
    assert (await by_hash_get(http, ACCOUNTS)).json()["errors"][0]["message"] == "PersistedQueryNotFound"


async def test_the_cache_keeps_the_most_recently_used_queries(small_cache: httpx.AsyncClient) -> None:
    one, two, three = (f"query Q{i} {{ __typename }}" for i in range(3))
    for query in (one, two):
        await small_cache.post("/graphql", json={"query": query, "extensions": persisted(query)})
    assert "data" in (await by_hash_get(small_cache, one)).json()  # one is now the most recent
    await small_cache.post("/graphql", json={"query": three, "extensions": persisted(three)})
    found = {q: "data" in (await by_hash_get(small_cache, q)).json() for q in (one, two, three)}
    assert found == {one: True, two: False, three: True}


def test_the_cache_is_bounded_in_bytes_too() -> None:
    from strawberry.http import GraphQLRequestData

    from gateway.persisted import PersistedQueries

    cache = PersistedQueries(max_entries=100, max_bytes=100)
    for i in range(5):
        query = f"query Q{i} {{ {'__typename ' * 3}}}"  # 44 bytes each
        cache.resolve(GraphQLRequestData(query, None, None, persisted(query)))
    assert len(cache) == 2
    huge = "{ " + "__typename " * 20 + "}"
    cache.resolve(GraphQLRequestData(huge, None, None, persisted(huge)))  # runs, is not kept
    assert len(cache) == 2
