"""The real Starlette app over HTTP: GraphQL by POST and GET, GraphiQL, health, masking."""

from __future__ import annotations

import logging

import httpx
import pytest

from gateway.db import Database
from tests import factories as f


async def test_healthz_and_readyz(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": "ok", "redis": "not configured"},
    )


async def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway.app import create_app
    from gateway.config import Settings

    app = create_app(Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503


async def test_graphiql_is_served_to_a_browser(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_queries_by_get_and_post(http: httpx.AsyncClient, db: Database) -> None:
    await f.account(db, "JPY")
    by_get = await http.get("/graphql", params={"query": "{ accounts { nodes { number currency } } }"})
    by_post = await http.post("/graphql", json={"query": "{ accounts { totalCount } }"})
    assert by_get.json()["data"] == {"accounts": {"nodes": [{"number": "A00000001", "currency": "JPY"}]}}
    assert by_post.json()["data"] == {"accounts": {"totalCount": 1}}
    assert by_post.json()["extensions"]["cost"] == {"requestedNodes": 50, "maxCost": 50_000}


async def test_mutations_are_refused_over_get(http: httpx.AsyncClient) -> None:
    r = await http.get(
        "/graphql",
        params={
            "query": 'mutation { createAccount(input: {name: "x", currency: "USD"}) { userErrors { code } } }'
        },
    )
    assert r.status_code in (400, 405)


async def test_amounts_never_travel_as_json_numbers(http: httpx.AsyncClient, db: Database) -> None:
    acct = await f.account(db)
    from gateway.ids import encode

    r = await http.post(
        "/graphql",
        json={
            "query": "mutation($i: CreatePaymentInput!) { createPayment(input: $i) { payment { amount } } }",
            "variables": {"i": {"accountId": encode("Account", acct), "amount": 10.5}},
        },
    )
    body = r.json()
    assert body.get("data") is None
    assert "never JSON numbers" in body["errors"][0]["message"]
    ok = await http.post(
        "/graphql",
        json={
            "query": "mutation($i: CreatePaymentInput!) { createPayment(input: $i) { payment { amount } } }",
            "variables": {"i": {"accountId": encode("Account", acct), "amount": "10.5"}},
        },
    )
    assert ok.json()["data"] == {"createPayment": {"payment": {"amount": "10.50"}}}


async def test_unexpected_exceptions_are_masked_with_a_request_id_and_logged(
    http: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await f.account(db)
    from schema import types

    def explode(cls, row):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail from the database layer")

    monkeypatch.setattr(types.Account, "from_row", classmethod(explode))

    # the planned path failing too: it steps aside (logged as a warning) and graphql-core answers
    async def planner_fails(*args: object) -> None:
        raise RuntimeError("secret detail from the planner")

    monkeypatch.setattr("schema.planner.execute", planner_fails)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        r = await http.post("/graphql", json={"query": "{ accounts { nodes { number } } }"})
    body = r.json()
    (error,) = body["errors"]
    assert "secret" not in r.text
    assert error["message"].startswith("Internal server error (request id ")
    request_id = error["extensions"]["requestId"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    (record,) = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])


async def test_a_syntax_error_is_reported_not_masked(http: httpx.AsyncClient) -> None:
    r = await http.post("/graphql", json={"query": "{ accounts { "})
    assert "Syntax Error" in r.json()["errors"][0]["message"]
