"""Settlement through schema.execute: payloads, codes, field paths, limits, warnings, preview."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from gateway import store as s
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from gateway.settlement.limits import Limits
from tests import factories as f
from tests.conftest import GraphQLClient
from tests.invariants import assert_invariants, balances

APPLY = """
mutation Apply($input: ApplyCreditMemoInput!) {
  applyCreditMemo(input: $input) {
    appliedRule
    warnings { code message }
    creditMemo { number appliedAmount unappliedAmount parts { totalCount nodes { amount } } }
    application { kind amount rule createdBy lines { amount sourceItem { kind } target { __typename } targetItem { __typename } } }
    userErrors { code category message field limit { name max actual remedies } }
  }
}
"""


async def setup(
    db: Database, memo_items: list[Any] | None = None, inv_items: list[Any] | None = None
) -> dict[str, Any]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, *(inv_items or [f.item("100.00", tax="10.00"), f.item("50.00")]))
    memo = await f.credit_memo(db, acct, *(memo_items or [f.item("30.00", tax="3.00")]))
    async with db.connect() as conn:
        inv_items_ = [
            r.id
            for r in (
                await conn.execute(
                    select(s.receivable_item_t)
                    .where(s.receivable_item_t.c.receivable_id == inv)
                    .order_by(s.receivable_item_t.c.seq)
                )
            ).all()
        ]
        memo_items_ = [
            r.id
            for r in (
                await conn.execute(
                    select(s.credit_memo_item_t)
                    .where(s.credit_memo_item_t.c.credit_memo_id == memo)
                    .order_by(s.credit_memo_item_t.c.seq)
                )
            ).all()
        ]
    return {
        "memo": encode("CreditMemo", memo),
        "inv": encode("Invoice", inv),
        "inv_items": [encode("InvoiceItem", i) for i in inv_items_],
        "memo_items": [encode("CreditMemoItem", i) for i in memo_items_],
    }


async def test_apply_answers_the_memo_the_application_and_its_lines(db: Database, gql: GraphQLClient) -> None:
    ids = await setup(db)
    data = await gql(
        APPLY,
        input={
            "creditMemoId": ids["memo"],
            "applicationRule": "FIFO",
            "invoices": [{"id": ids["inv"], "amount": "33.00"}],
        },
    )
    out = data["applyCreditMemo"]
    assert out["userErrors"] == []
    assert out["appliedRule"] == "FIFO"
    assert out["creditMemo"] == {
        "number": "CM00000001",
        "appliedAmount": "33.00",
        "unappliedAmount": "0.00",
        "parts": {"totalCount": 1, "nodes": [{"amount": "33.00"}]},
    }
    app = out["application"]
    assert (app["kind"], app["amount"], app["rule"], app["createdBy"]) == ("APPLY", "33.00", "FIFO", "local")
    assert [(ln["amount"], ln["sourceItem"]["kind"]) for ln in app["lines"]] == [
        ("30.00", "CHARGE"),
        ("3.00", "TAX"),
    ]
    assert {ln["targetItem"]["__typename"] for ln in app["lines"]} == {"InvoiceItem"}
    await assert_invariants(db)


async def test_item_errors_point_at_the_item_entry(db: Database, gql: GraphQLClient) -> None:
    ids = await setup(db)
    data = await gql(
        APPLY,
        input={
            "creditMemoId": ids["memo"],
            "invoices": [
                {
                    "id": ids["inv"],
                    "amount": "20.00",
                    "items": [
                        {
                            "targetItemId": ids["inv_items"][0],
                            "amount": "10.00",
                            "creditMemoItemId": ids["memo_items"][1],
                        },
                        {"targetItemId": ids["memo"], "amount": "5.00"},
                        {"targetItemId": ids["inv_items"][2], "amount": "50.01"},
                    ],
                }
            ],
        },
    )
    errors = [(e["code"], e["field"]) for e in data["applyCreditMemo"]["userErrors"]]
    assert sorted(errors) == sorted(
        [
            ("ITEM_NOT_IN_DOCUMENT", ["invoices", "0", "items", "1", "targetItemId"]),
            ("ITEM_KIND_MISMATCH", ["invoices", "0", "items", "0"]),
            ("AMOUNT_EXCEEDS_ITEM_BALANCE", ["invoices", "0", "items", "0", "amount"]),
            ("AMOUNT_EXCEEDS_ITEM_BALANCE", ["invoices", "0", "items", "2", "amount"]),
            ("ITEM_AMOUNTS_MISMATCH", ["invoices", "0", "items"]),
        ]
    )
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(s.application_t)) == 0


async def test_a_limit_breach_says_what_to_do_instead(db: Database, settings: Settings) -> None:
    small = GraphQLClient(db, settings.replace(limits=Limits(documents_per_request=1)))
    ids = await setup(db)
    data = await small(
        APPLY,
        input={
            "creditMemoId": ids["memo"],
            "invoices": [{"id": ids["inv"], "amount": "1.00"}],
            "debitMemos": [{"id": ids["inv"], "amount": "1.00"}],
        },
    )
    (error,) = [e for e in data["applyCreditMemo"]["userErrors"] if e["code"] == "LIMIT_EXCEEDED"]
    assert error["category"] == "LIMIT_EXCEEDED"
    assert error["limit"] == {
        "name": "DOCUMENTS_PER_REQUEST",
        "max": 1,
        "actual": 2,
        "remedies": ["SPLIT_DOCUMENTS"],
    }


async def test_proration_guard_falls_back_to_fifo_with_a_warning(db: Database, settings: Settings) -> None:
    guarded = GraphQLClient(db, settings.replace(limits=Limits(proration_product_apply=2)))
    ids = await setup(db)
    data = await guarded(
        APPLY,
        input={
            "creditMemoId": ids["memo"],
            "applicationRule": "PRORATION",
            "invoices": [{"id": ids["inv"], "amount": "10.00"}],
        },
    )
    out = data["applyCreditMemo"]
    assert out["userErrors"] == []
    assert out["appliedRule"] == "FIFO"
    (warning,) = out["warnings"]
    assert warning["code"] == "PRORATION_FALLBACK_TO_FIFO"
    assert "3" in warning["message"] and "2" in warning["message"]


async def test_preview_computes_the_lines_and_writes_nothing(db: Database, gql: GraphQLClient) -> None:
    ids = await setup(db)
    before = await balances(db)
    data = await gql(
        """query($input: ApplyCreditMemoInput!) { previewCreditMemoApplication(input: $input) {
        appliedRule lines { amount } warnings { code } userErrors { code } } }""",
        input={
            "creditMemoId": ids["memo"],
            "applicationRule": "PRORATION",
            "invoices": [{"id": ids["inv"], "amount": "16.00"}],
        },
    )
    preview = data["previewCreditMemoApplication"]
    assert preview["userErrors"] == [] and preview["appliedRule"] == "PRORATION"
    assert sum(int(ln["amount"].replace(".", "")) for ln in preview["lines"]) == 1600
    assert await balances(db) == before
    bad = await gql(
        """query($input: ApplyCreditMemoInput!) { previewCreditMemoApplication(input: $input) {
        lines { amount } userErrors { code field } } }""",
        input={"creditMemoId": ids["memo"], "invoices": [{"id": ids["inv"], "amount": "500.00"}]},
    )
    codes = {e["code"] for e in bad["previewCreditMemoApplication"]["userErrors"]}
    assert codes == {"AMOUNT_EXCEEDS_UNAPPLIED", "AMOUNT_EXCEEDS_BALANCE"}


async def test_limits_query_reports_the_settings(db: Database, settings: Settings) -> None:
    client = GraphQLClient(db, settings.replace(limits=Limits(total_items=123)))
    data = await client(
        "{ limits { documentsPerRequest itemsPerDocument totalItems asyncTotalItems "
        "prorationProductApply prorationProductUnapply reversalItems refundItems } }"
    )
    assert data["limits"] == {
        "documentsPerRequest": 1000,
        "itemsPerDocument": 1000,
        "totalItems": 123,
        "asyncTotalItems": 300000,
        "prorationProductApply": 10000,
        "prorationProductUnapply": 15000,
        "reversalItems": 2000,
        "refundItems": 15000,
    }


async def test_reverse_write_off_and_refund_payloads(db: Database, gql: GraphQLClient) -> None:
    ids = await setup(db)
    refund = await gql(
        """mutation($m: ID!) { refundCreditMemo(input: {creditMemoId: $m, amount: "3.00"}) {
        creditMemo { refundAmount unappliedAmount parts { nodes { amount } } } application { kind amount } userErrors { code } } }""",
        m=ids["memo"],
    )
    assert refund["refundCreditMemo"] == {
        "creditMemo": {
            "refundAmount": "3.00",
            "unappliedAmount": "30.00",
            "parts": {"nodes": [{"amount": "30.00"}]},
        },
        "application": {"kind": "REFUND", "amount": "3.00"},
        "userErrors": [],
    }
    reverse = await gql(
        """mutation($m: ID!) { reverseCreditMemo(input: {creditMemoId: $m}) {
        debitMemo { number } userErrors { code category field } } }""",
        m=ids["memo"],
    )
    assert reverse["reverseCreditMemo"]["userErrors"] == [
        {"code": "APPLIED_AMOUNT_NOT_ZERO", "category": "RULE_RESTRICTION", "field": None}
    ]
    write_off = await gql(
        """mutation($m: ID!) { writeOffCreditMemo(input: {creditMemoId: $m, reasonCode: "Bad debt"}) {
        creditMemo { unappliedAmount reversed } debitMemo { reasonCode balance amount referredCreditMemo { number } }
        application { kind } userErrors { code } } }""",
        m=ids["memo"],
    )
    assert write_off["writeOffCreditMemo"]["userErrors"] == [{"code": "NOT_FULLY_UNAPPLIED"}]
    await assert_invariants(db)


async def test_the_idempotency_key_header_replays(db: Database, http: httpx.AsyncClient) -> None:
    ids = await setup(db)
    body = {
        "query": APPLY,
        "variables": {
            "input": {"creditMemoId": ids["memo"], "invoices": [{"id": ids["inv"], "amount": "1.00"}]}
        },
    }
    first = (await http.post("/graphql", json=body, headers={"Idempotency-Key": "abc"})).json()
    again = (await http.post("/graphql", json=body, headers={"Idempotency-Key": "abc"})).json()
    other = (await http.post("/graphql", json=body)).json()
    app_id = first["data"]["applyCreditMemo"]["application"]
    assert again["data"]["applyCreditMemo"]["application"] == app_id
    assert other["data"]["applyCreditMemo"]["creditMemo"]["appliedAmount"] == "2.00"


async def test_settlement_events_are_written_with_the_application(db: Database, gql: GraphQLClient) -> None:
    ids = await setup(db)
    await gql(APPLY, input={"creditMemoId": ids["memo"], "invoices": [{"id": ids["inv"], "amount": "5.00"}]})
    await gql(
        """mutation($m: ID!) { unapplyCreditMemo(input: {creditMemoId: $m}) { userErrors { code } } }""",
        m=ids["memo"],
    )
    async with db.connect() as conn:
        rows = (await conn.execute(select(s.event_t).order_by(s.event_t.c.id))).all()
    assert [(r.kind, r.application_id is not None, r.created_by) for r in rows] == [
        ("POSTED", False, "system"),
        ("APPLIED", True, "local"),
        ("UNAPPLIED", True, "local"),
    ]
