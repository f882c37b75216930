"""A property over the transport: random byte strings and random JSON values sent as the body, as the
variables and as every scalar argument never produce a 500, an error without a code, an unmasked
(internal) error or a write. 200 examples each in CI (the "ci" hypothesis profile)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.settlement.errors import Code
from tests.app.test_fuzz import World as FuzzWorld
from tests.app.test_security import counts

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Text as a hostile client writes it: NULs, controls, other scripts' digits, exponents, huge numbers.
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["1e999990", "١٢", "１.００", "9" * 400, "\x00", "9999-12-31", "20260101", "Q3JlZGl0TWVtbzox="]
    ),
)
# Every scalar argument the API takes, each operation with its variables.
OPERATIONS = [
    ("query($id: ID!) { node(id: $id) { id } }", {"id": "ID!"}),
    (
        "query($n: String, $a: String) { creditMemo(number: $n) { id } creditMemos(after: $a) { totalCount } }",
        {},
    ),
    ("query($f: Int, $a: String) { accounts(first: $f, after: $a) { totalCount } }", {}),
    (
        "query($m: ID!, $i: ID!, $x: Decimal!, $d: Date) { previewCreditMemoApplication(input: "
        "{creditMemoId: $m, effectiveDate: $d, invoices: [{id: $i, amount: $x}]}) { userErrors { code } } }",
        {},
    ),
    (
        "mutation($n: String!, $c: String!, $num: String) { createAccount(input: {name: $n, currency: $c, "
        "number: $num}) { userErrors { code } } }",
        {},
    ),
    (
        "mutation($a: ID!, $x: Decimal!, $t: Decimal, $s: String, $d: Date) { createInvoice(input: {accountId: $a, "
        "invoiceDate: $d, items: [{amount: $x, taxAmount: $t, sku: $s, description: $s}]}) { userErrors { code } } }",
        {},
    ),
    (
        "mutation($m: ID!, $i: ID!, $x: Decimal!, $k: String, $d: Date) { applyCreditMemo(input: {creditMemoId: $m, "
        "effectiveDate: $d, idempotencyKey: $k, invoices: [{id: $i, amount: $x}]}) { userErrors { code } } }",
        {},
    ),
    (
        "mutation($m: ID!, $x: Decimal!, $r: String, $d: Date) { refundCreditMemo(input: {creditMemoId: $m, "
        "amount: $x, method: $r, refundDate: $d}) { userErrors { code } } }",
        {},
    ),
]
VARIABLES = ["id", "n", "a", "f", "m", "i", "x", "d", "c", "num", "t", "s", "k", "r"]
CODES = {
    "BAD_REQUEST",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "INVALID_VALUE",
    "NOT_FOUND",
    "TOO_MANY_TOKENS",
    "QUERY_TOO_COSTLY",
    "REQUEST_TOO_LARGE",
}


RULE_CODES = {c.value for c in Code}


class World(FuzzWorld):
    """The fuzz test's seeded database and app, with its row counts before the run."""

    def __init__(self) -> None:
        super().__init__()
        self.before = self.loop.run_until_complete(counts(self.db))

    def post(self, body: bytes) -> None:
        response = self.loop.run_until_complete(
            self.client.post("/graphql", content=body, headers={"content-type": "application/json"})
        )
        assert response.status_code in (200, 400, 413), (response.status_code, response.text)
        answer = response.json()
        for error in answer.get("errors") or []:
            assert error["extensions"]["code"] in CODES, error
        for payload in (answer.get("data") or {}).values():
            for error in (payload or {}).get("userErrors") or []:
                assert error["code"] in RULE_CODES, error  # a rule's refusal, as data

    def close(self) -> None:
        try:
            assert self.loop.run_until_complete(counts(self.db)) == self.before  # nothing was written
        finally:
            super().close()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


PROPERTY = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(body=st.binary(max_size=300))
def test_random_bytes_as_the_body(world: World, body: bytes) -> None:
    world.post(body)


@PROPERTY
@given(value=JSON)
def test_random_json_values_as_the_body(world: World, value: Any) -> None:
    world.post(json.dumps(value).encode())


@PROPERTY
@given(operation=st.sampled_from(OPERATIONS), variables=JSON)
def test_random_json_values_as_the_variables(
    world: World, operation: tuple[str, Any], variables: Any
) -> None:
    world.post(json.dumps({"query": operation[0], "variables": variables}).encode())


@PROPERTY
@given(
    operation=st.sampled_from(OPERATIONS),
    values=st.fixed_dictionaries({name: st.one_of(TEXT, JSON) for name in VARIABLES}),
)
def test_random_scalar_arguments(world: World, operation: tuple[str, Any], values: dict[str, Any]) -> None:
    query = operation[0]
    used = {name: value for name, value in values.items() if f"${name}:" in query or f"${name})" in query}
    world.post(json.dumps({"query": query, "variables": used}).encode())
