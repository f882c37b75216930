"""Transport refusals: every body that is not one GraphQL request as a JSON object, and every GraphQL
syntax or validation error, is answered with a JSON error carrying extensions.code: never a 500,
never plain text, and nothing runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.db import Database
from tests.app.test_security import counts, world

CREATE = 'mutation { createAccount(input: {name: "x", currency: "USD"}) { userErrors { code } } }'
BAD_BODIES = [
    (b"null", "null"),
    (b"123", "a number"),
    (b'"text"', "a string"),
    (b"true", "a boolean"),
    (b"[]", "batching is not supported"),
    (b'[{"query": "{ __typename }"}]', "batching is not supported"),
    (b"\xff\xfe{}", "UTF-8"),
    (b'{"query": "\xc3\x28"}', "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (
        b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 40 + b"]" * 40 + b"}}",
        "nested more than 32",
    ),
    (b'{"query": 5}', "`query` must be a string"),
    (b'{"query": "{ __typename }", "variables": [1]}', "`variables` must be an object"),
    (b'{"query": "subscription { settlementEvents { cursor } }"}', "WebSocket"),
    (
        b'{"query": "query A { __typename } subscription B { jobUpdated(id: \\"x\\") { status } }", '
        b'"operationName": "B"}',
        "WebSocket",
    ),
]


def coded(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


@pytest.mark.parametrize(("body", "says"), BAD_BODIES, ids=[repr(b[:24]) for b, _ in BAD_BODIES])
async def test_a_body_that_is_not_one_graphql_request_gets_400_with_a_code(
    http: httpx.AsyncClient, body: bytes, says: str
) -> None:
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    answer = response.json()
    assert coded(answer) == ["BAD_REQUEST"] and answer["data"] is None
    assert says in answer["errors"][0]["message"]


async def test_other_transport_refusals_are_json_with_a_code(http: httpx.AsyncClient, db: Database) -> None:
    await world(db)
    before = await counts(db)
    for response in (
        await http.get("/graphql", params={"query": CREATE}),  # a mutation over GET
        await http.post("/graphql", content=b"query=x", headers={"content-type": "text/plain"}),
        await http.get("/graphql", params={"query": "{ __typename }", "variables": "[" * 50 + "]" * 50}),
        await http.get("/graphql", params={"query": "subscription { settlementEvents { cursor } }"}),
    ):
        assert response.status_code == 400, response.text
        assert coded(response.json()) == ["BAD_REQUEST"]
    assert await counts(db) == before


async def test_graphql_syntax_and_validation_errors_carry_a_code(http: httpx.AsyncClient) -> None:
    for query, variables, code in (
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            "query($d: Date!) { creditMemos(filter: {memoDateFrom: $d}) { totalCount } }",
            {"d": "x"},
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "query($d: Date!) { creditMemos(filter: {memoDateFrom: $d}) { totalCount } }",
            {},
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            '{ creditMemos(filter: {memoDateFrom: "20260101"}) { totalCount } }',
            None,
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ):
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] is None and coded(body) == [code], body
