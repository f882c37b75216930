"""A reversal and a write-off are final, on both databases: the memo cannot be unapplied from its
own reversal or write-off debit memo (sync or async), and a reversed memo can be neither applied,
unapplied nor refunded again. Exact codes, and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.app.test_security import counts
from tests.invariants import assert_invariants

REVERSE = """mutation($m: ID!) { reverseCreditMemo(input: {creditMemoId: $m}) { debitMemo { id } userErrors { code } } }"""
WRITE_OFF = """mutation($m: ID!) { writeOffCreditMemo(input: {creditMemoId: $m}) { debitMemo { id } userErrors { code } } }"""
UNAPPLY_DM = """mutation($m: ID!, $d: ID!) { unapplyCreditMemo(input: {creditMemoId: $m,
  debitMemos: [{id: $d, amount: "10.00"}]}) { userErrors { code field } } }"""
UNAPPLY_ALL = (
    """mutation($m: ID!) { unapplyCreditMemo(input: {creditMemoId: $m}) { userErrors { code field } } }"""
)
UNAPPLY_ASYNC = """mutation($m: ID!, $d: ID!) { unapplyCreditMemoAsync(input: {creditMemoId: $m,
  debitMemos: [{id: $d, amount: "10.00"}]}) { job { id } userErrors { code field } } }"""
UNAPPLY_ALL_ASYNC = """mutation($m: ID!) { unapplyCreditMemoAsync(input: {creditMemoId: $m}) { job { id } userErrors { code field } } }"""
REFUND = """mutation($m: ID!) { refundCreditMemo(input: {creditMemoId: $m, amount: "1.00"}) { userErrors { code field } } }"""
APPLY = """mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]})
  { userErrors { code field } } }"""
APPLY_ASYNC = """mutation($m: ID!, $i: ID!) { applyCreditMemoAsync(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: "1.00"}]}) { job { id } userErrors { code field } } }"""


async def post(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
    assert "errors" not in body, body
    (payload,) = body["data"].values()
    return payload  # type: ignore[no-any-return]


def refused(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    assert payload.get("job") is None
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def setup(db: Database) -> dict[str, str]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("10.00"), post=True)
    return {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


async def test_a_reversal_is_final(http: httpx.AsyncClient, db: Database) -> None:
    ids = await setup(db)
    reversal = await post(http, REVERSE, m=ids["m"])
    assert reversal["userErrors"] == []
    dm = reversal["debitMemo"]["id"]
    before = await counts(db)
    closed = ("INVALID_STATUS", ["creditMemoId"])
    assert refused(await post(http, UNAPPLY_DM, m=ids["m"], d=dm)) == [closed]
    assert refused(await post(http, UNAPPLY_ALL, m=ids["m"])) == [closed]
    assert refused(await post(http, UNAPPLY_ASYNC, m=ids["m"], d=dm)) == [closed]
    assert refused(await post(http, UNAPPLY_ALL_ASYNC, m=ids["m"])) == [closed]
    assert closed in refused(await post(http, REFUND, m=ids["m"]))
    assert closed in refused(await post(http, APPLY, m=ids["m"], i=ids["i"]))
    assert closed in refused(await post(http, APPLY_ASYNC, m=ids["m"], i=ids["i"]))
    assert await counts(db) == before
    await assert_invariants(db)


async def test_a_write_off_is_final(http: httpx.AsyncClient, db: Database) -> None:
    ids = await setup(db)
    written_off = await post(http, WRITE_OFF, m=ids["m"])
    assert written_off["userErrors"] == []
    dm = written_off["debitMemo"]["id"]
    before = await counts(db)
    assert refused(await post(http, UNAPPLY_DM, m=ids["m"], d=dm)) == [
        ("INVALID_STATUS", ["debitMemos", "0"])
    ]
    assert refused(await post(http, UNAPPLY_ALL, m=ids["m"])) == [("INVALID_STATUS", ["creditMemoId"])]
    assert refused(await post(http, UNAPPLY_ASYNC, m=ids["m"], d=dm)) == [
        ("INVALID_STATUS", ["debitMemos", "0"])
    ]
    assert refused(await post(http, UNAPPLY_ALL_ASYNC, m=ids["m"])) == [("INVALID_STATUS", ["creditMemoId"])]
    # Nothing was freed: there is still nothing to refund.
    assert refused(await post(http, REFUND, m=ids["m"])) == [("AMOUNT_EXCEEDS_UNAPPLIED", ["amount"])]
    assert await counts(db) == before
    await assert_invariants(db)


async def test_an_ordinary_debit_memo_is_still_unapplied(http: httpx.AsyncClient, db: Database) -> None:
    acct = await f.account(db)
    memo = encode("CreditMemo", await f.credit_memo(db, acct, f.item("10.00"), post=True))
    dm = encode("DebitMemo", await f.debit_memo(db, acct, f.item("50.00")))
    applied = await post(
        http,
        'mutation($m: ID!, $d: ID!) { applyCreditMemo(input: {creditMemoId: $m, debitMemos: [{id: $d, amount: "10.00"}]}) { userErrors { code } } }',
        m=memo,
        d=dm,
    )
    assert applied["userErrors"] == []
    assert refused(await post(http, UNAPPLY_DM, m=memo, d=dm)) == []
