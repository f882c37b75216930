"""Strict input over HTTP on both databases: every refusal has its exact code and field path, and
nothing is written (the row counts and every balance are unchanged)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.app.test_security import counts, world

BAD_AMOUNTS = ["1e2", "1_0.00", "١٢", "１.００", " 1.00", "1e999990"]
PAYMENT = """mutation($a: ID!, $amount: Decimal!) { createPayment(input: {accountId: $a, amount: $amount})
  { payment { id } userErrors { code field } } }"""
INVOICE = """mutation($a: ID!, $items: [NewItemInput!]!, $due: Date) {
  createInvoice(input: {accountId: $a, items: $items, dueDate: $due}) { invoice { id } userErrors { code field } } }"""
CREDIT_MEMO = """mutation($a: ID!, $reason: String, $comment: String, $day: Date) {
  createCreditMemo(input: {accountId: $a, items: [{amount: "1.00"}], reasonCode: $reason, comment: $comment,
  memoDate: $day}) { creditMemo { id } userErrors { code field } } }"""
APPLY = """mutation($m: ID!, $i: ID!, $amount: Decimal!, $day: Date) { applyCreditMemo(input: {creditMemoId: $m,
  effectiveDate: $day, invoices: [{id: $i, amount: $amount}]}) { userErrors { code field } } }"""
PREVIEW = """query($m: ID!, $i: ID!, $amount: Decimal!) { previewCreditMemoApplication(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: $amount}]}) { lines { amount } userErrors { code field } } }"""


async def post(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


def errors(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    (payload,) = data.values()
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


@pytest.mark.parametrize("bad", BAD_AMOUNTS)
async def test_an_amount_that_is_not_plain_ascii_digits_is_invalid_everywhere(
    http: httpx.AsyncClient, db: Database, bad: str
) -> None:
    ids = await world(db)
    before = await counts(db)
    # A deadline, not a measure: "1e999990" froze the process for ~26 s in every amount field.
    async with asyncio.timeout(10):
        paid = await post(http, PAYMENT, a=ids["a"], amount=bad)
        invoiced = await post(http, INVOICE, a=ids["a"], items=[{"amount": "1.00", "taxAmount": bad}])
        applied = await post(http, APPLY, m=ids["m"], i=ids["i"], amount=bad)
        previewed = await post(http, PREVIEW, m=ids["m"], i=ids["i"], amount=bad)
    assert errors(paid) == [("INVALID_VALUE", ["amount"])]
    assert errors(invoiced) == [("INVALID_VALUE", ["items", "0", "taxAmount"])]
    assert errors(applied) == [("INVALID_VALUE", ["invoices", "0", "amount"])]
    assert errors(previewed) == [("INVALID_VALUE", ["invoices", "0", "amount"])]
    assert previewed["previewCreditMemoApplication"]["lines"] == []
    assert await counts(db) == before


async def test_a_document_total_over_the_stored_range_is_refused(
    http: httpx.AsyncClient, db: Database
) -> None:
    ids = await world(db)
    before = await counts(db)
    biggest = "10000000000000.00"  # 10^15 minor units: the most one item may carry
    data = await post(http, INVOICE, a=ids["a"], items=[{"amount": biggest}, {"amount": biggest}])
    assert errors(data) == [("INVALID_VALUE", ["items"])]
    data = await post(http, INVOICE, a=ids["a"], items=[{"amount": biggest}])
    assert data["createInvoice"]["invoice"]["id"]
    assert (await counts(db))["rows"]["receivable"] == before["rows"]["receivable"] + 1


async def test_text_with_nul_or_over_its_length_is_refused_identically(
    http: httpx.AsyncClient, db: Database
) -> None:
    ids = await world(db)
    before = await counts(db)
    data = await post(http, CREDIT_MEMO, a=ids["a"], reason="a\x00b", comment="c" * 2001)
    assert errors(data) == [("INVALID_VALUE", ["reasonCode"]), ("INVALID_VALUE", ["comment"])]
    data = await post(
        http, INVOICE, a=ids["a"], items=[{"amount": "1.00", "sku": "s\x00", "description": "d\x07"}]
    )
    assert errors(data) == [
        ("INVALID_VALUE", ["items", "0", "sku"]),
        ("INVALID_VALUE", ["items", "0", "description"]),
    ]
    data = await post(
        http,
        'mutation($n: String!) { createAccount(input: {name: $n, currency: "USD"}) { userErrors { code field } } }',
        n="x" * 256,
    )
    assert errors(data) == [("INVALID_VALUE", ["name"])]
    # An id with a NUL byte is refused before any lookup (PostgreSQL used to fail internally).
    data = await post(http, PAYMENT, a="A\x0000001", amount="1.00")
    assert errors(data) == [("INVALID_VALUE", ["accountId"])]
    assert await counts(db) == before


async def test_a_date_far_from_today_or_not_yyyy_mm_dd_is_refused(
    http: httpx.AsyncClient, db: Database
) -> None:
    ids = await world(db)
    before = await counts(db)
    data = await post(http, APPLY, m=ids["m"], i=ids["i"], amount="1.00", day="9999-12-31")
    assert errors(data) == [("INVALID_VALUE", ["effectiveDate"])]
    data = await post(http, CREDIT_MEMO, a=ids["a"], day="0001-01-01")
    assert errors(data) == [("INVALID_VALUE", ["memoDate"])]
    for bad in ("20260302", "2026-W10-1", "２０２６-03-02"):
        response = await http.post(
            "/graphql",
            json={"query": APPLY, "variables": {"m": ids["m"], "i": ids["i"], "amount": "1.00", "day": bad}},
        )
        body = response.json()
        assert response.status_code == 200 and body.get("data") is None, body
        assert "YYYY-MM-DD" in body["errors"][0]["message"]
    assert await counts(db) == before


async def test_ids_and_numbers_are_canonical(http: httpx.AsyncClient, db: Database) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct)
    query = "query($id: ID!) { node(id: $id) { id } creditMemo(id: $id) { id } }"
    good = encode("CreditMemo", memo)
    assert (await post(http, query, id=good)) == {"node": {"id": good}, "creditMemo": {"id": good}}
    for text in (f"CreditMemo:{memo}".replace("1", "１"), f"CreditMemo:0{memo}"):
        crafted = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        assert (await post(http, query, id=crafted)) == {"node": None, "creditMemo": None}
    padded = encode("CreditMemo", memo) + "=" * 4
    assert (await post(http, query, id=padded)) == {"node": None, "creditMemo": None}
    number = "query($n: String!) { creditMemo(number: $n) { number } }"
    assert (await post(http, number, n="CM00000001")) == {"creditMemo": {"number": "CM00000001"}}
    for bad in (" CM00000001", "CM00000001\x00", "ＣＭ00000001"):
        assert (await post(http, number, n=bad)) == {"creditMemo": None}


async def test_crafted_after_cursors_are_invalid_values(http: httpx.AsyncClient, db: Database) -> None:
    await world(db)
    for payload in (b'["id", "x"]', b'["id", 9223372036854775808]', b"[]", b'["id", 1.5]', b"\xff\xfe"):
        cursor = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        for query in (
            "query($c: String) { creditMemos(after: $c) { totalCount } }",
            "query($c: String) { creditMemos(after: $c, sort: {field: MEMO_DATE}) { totalCount } }",
        ):
            response = await http.post("/graphql", json={"query": query, "variables": {"c": cursor}})
            body = response.json()
            assert response.status_code == 200, body
            (error,) = body["errors"]
            assert error["extensions"].pop("requestId")  # every error carries one (issue 13)
            assert error["extensions"] == {
                "code": "INVALID_VALUE",
                "category": "INVALID_VALUE",
                "field": ["after"],
            }
