"""updateCreditMemo and createTaxationItems through schema.execute: status rules with field paths,
item changes with the totals recomputed to the cent, taxation items in FIFO order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway import store as s
from gateway.config import Settings
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient

MEMO = "creditMemo { number status memoDate amount taxAmount unappliedAmount comment reasonCode transferredToAccounting excludeFromAutoApplyRules items { nodes { kind amount sku description parentItem { sku } } } parts { nodes { amount } } }"
ERRORS = "userErrors { code field message }"
UPDATE = (
    f"mutation($input: UpdateCreditMemoInput!) {{ updateCreditMemo(input: $input) {{ {MEMO} {ERRORS} }} }}"
)
TAXES = f"mutation($input: CreateTaxationItemsInput!) {{ createTaxationItems(input: $input) {{ {MEMO} {ERRORS} }} }}"


async def item_ids(db: Database, memo_pk: int) -> list[int]:
    async with db.connect() as conn:
        return [r.id for r in await s.memo_items(conn, memo_pk)]


async def memo_row(db: Database, pk: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(s.credit_memo_t).where(s.credit_memo_t.c.id == pk))).one()


async def test_header_fields_change_on_a_posted_memo(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, post=True)
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "comment": "goodwill",
            "reasonCode": "Correcting invoice error",
            "transferredToAccounting": "YES",
            "excludeFromAutoApplyRules": True,
        },
    )
    cm = out["updateCreditMemo"]["creditMemo"]
    assert out["updateCreditMemo"]["userErrors"] == []
    assert (cm["status"], cm["comment"], cm["reasonCode"]) == (
        "POSTED",
        "goodwill",
        "Correcting invoice error",
    )
    assert (cm["transferredToAccounting"], cm["excludeFromAutoApplyRules"]) == ("YES", True)
    # an empty string clears a text field
    out = await gql(UPDATE, input={"id": encode("CreditMemo", memo), "comment": ""})
    assert out["updateCreditMemo"]["creditMemo"]["comment"] is None


async def test_memo_date_and_items_change_only_while_draft(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, post=True)
    (item,) = await item_ids(db, memo)
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "comment": "x",
            "memoDate": "2026-04-01",
            "items": [{"id": encode("CreditMemoItem", item), "amount": "5.00"}],
        },
    )
    errors = out["updateCreditMemo"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("INVALID_STATUS", ["memoDate"]),
        ("INVALID_STATUS", ["items"]),
    ]
    row = await memo_row(db, memo)
    assert (row.comment, row.amount, str(row.memo_date)) == (None, 1000, "2026-03-02")  # nothing written


async def test_a_canceled_memo_changes_no_more(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, post=False)
    await gql(
        "mutation($id: ID!) { cancelCreditMemo(id: $id) { userErrors { code } } }",
        id=encode("CreditMemo", memo),
    )
    out = await gql(UPDATE, input={"id": encode("CreditMemo", memo), "comment": "late"})
    assert [(e["code"], e["field"]) for e in out["updateCreditMemo"]["userErrors"]] == [
        ("INVALID_STATUS", ["comment"])
    ]


async def test_draft_items_change_and_the_totals_follow(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("100.00", tax="8.25"), f.item("50.10"), post=False)
    charge, tax, other = await item_ids(db, memo)
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "memoDate": "2026-04-01",
            "items": [
                {"id": encode("CreditMemoItem", charge), "amount": "120.00", "sku": "SKU-1"},
                {"id": encode("CreditMemoItem", tax), "amount": "9.90"},
                {"id": encode("CreditMemoItem", other), "description": "support"},
            ],
        },
    )
    cm = out["updateCreditMemo"]["creditMemo"]
    assert out["updateCreditMemo"]["userErrors"] == []
    assert (cm["memoDate"], cm["amount"], cm["taxAmount"], cm["unappliedAmount"]) == (
        "2026-04-01",
        "180.00",
        "9.90",
        "180.00",
    )
    assert [(i["kind"], i["amount"], i["sku"], i["description"]) for i in cm["items"]["nodes"]] == [
        ("CHARGE", "120.00", "SKU-1", None),
        ("TAX", "9.90", None, None),
        ("CHARGE", "50.10", None, "support"),
    ]
    assert [p["amount"] for p in cm["parts"]["nodes"]] == ["180.00"]
    async with db.connect() as conn:
        rows = await s.memo_items(conn, memo)
    assert [r.unapplied_amount for r in rows] == [12000, 990, 5010]


async def test_bad_item_changes_are_all_reported_and_nothing_is_written(
    db: Database, gql: GraphQLClient
) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("100.00"), post=False)
    other = await f.credit_memo(db, acct, f.item("1.00"), post=False)
    (charge,) = await item_ids(db, memo)
    (foreign,) = await item_ids(db, other)
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "comment": "never written",
            "items": [
                {"id": encode("CreditMemoItem", charge), "amount": "1.001"},
                {"id": encode("CreditMemoItem", foreign), "amount": "1.00"},
                {"id": encode("CreditMemoItem", charge), "amount": "2.00"},
            ],
        },
    )
    assert [(e["code"], e["field"]) for e in out["updateCreditMemo"]["userErrors"]] == [
        ("AMOUNT_PRECISION", ["items", "0", "amount"]),
        ("ITEM_NOT_IN_DOCUMENT", ["items", "1", "id"]),
        ("INVALID_VALUE", ["items", "2", "id"]),
    ]
    row = await memo_row(db, memo)
    assert (row.comment, row.amount) == (None, 10000)


async def test_a_memo_from_an_invoice_credits_no_more_than_the_invoice_item(
    db: Database, gql: GraphQLClient
) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    async with db.connect() as conn:
        (inv_item,) = [r.id for r in await s.credited_amounts(conn, inv)]
    memo = await f.credit_memo_from_invoice(db, inv, [(inv_item, "40.00")], post=False)
    (item,) = await item_ids(db, memo)
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "items": [{"id": encode("CreditMemoItem", item), "amount": "100.01"}],
        },
    )
    assert [(e["code"], e["field"]) for e in out["updateCreditMemo"]["userErrors"]] == [
        ("ITEM_EXCEEDS_CREDITABLE", ["items", "0", "amount"])
    ]
    out = await gql(
        UPDATE,
        input={
            "id": encode("CreditMemo", memo),
            "items": [{"id": encode("CreditMemoItem", item), "amount": "25.00"}],
        },
    )
    assert out["updateCreditMemo"]["creditMemo"]["amount"] == "25.00"
    async with db.connect() as conn:
        (row,) = await s.credited_amounts(conn, inv)
    assert row.credited_amount == 2500


async def test_taxation_items_go_right_after_their_parent(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct, f.item("10.00", tax="1.00"), f.item("20.00"), post=False)
    a, a_tax, b = await item_ids(db, memo)
    for n, pk in enumerate((a, a_tax, b)):
        await gql(
            UPDATE,
            input={
                "id": encode("CreditMemo", memo),
                "items": [{"id": encode("CreditMemoItem", pk), "sku": f"S{n}"}],
            },
        )
    out = await gql(
        TAXES,
        input={
            "creditMemoId": encode("CreditMemo", memo),
            "taxationItems": [
                {"creditMemoItemId": encode("CreditMemoItem", b), "amount": "1.60", "sku": "VAT-B"},
                {"creditMemoItemId": encode("CreditMemoItem", a), "amount": "0.25", "sku": "CITY-A"},
            ],
        },
    )
    cm = out["createTaxationItems"]["creditMemo"]
    assert out["createTaxationItems"]["userErrors"] == []
    assert [
        (i["kind"], i["amount"], i["sku"], (i["parentItem"] or {}).get("sku")) for i in cm["items"]["nodes"]
    ] == [
        ("CHARGE", "10.00", "S0", None),
        ("TAX", "1.00", "S1", "S0"),
        ("TAX", "0.25", "CITY-A", "S0"),
        ("CHARGE", "20.00", "S2", None),
        ("TAX", "1.60", "VAT-B", "S2"),
    ]
    assert (cm["amount"], cm["taxAmount"], cm["unappliedAmount"]) == ("32.85", "2.85", "32.85")
    assert [p["amount"] for p in cm["parts"]["nodes"]] == ["32.85"]
    async with db.connect() as conn:
        assert [r.seq for r in await s.memo_items(conn, memo)] == [0, 1, 2, 3, 4]
    assert (await memo_row(db, memo)).item_count == 5


async def test_taxation_items_are_refused_on_posted_memos_and_non_charges(
    db: Database, gql: GraphQLClient
) -> None:
    acct = await f.account(db)
    posted = await f.credit_memo(db, acct, post=True)
    (item,) = await item_ids(db, posted)
    tax_of = {"creditMemoItemId": encode("CreditMemoItem", item), "amount": "1.00"}
    out = await gql(TAXES, input={"creditMemoId": encode("CreditMemo", posted), "taxationItems": [tax_of]})
    assert [(e["code"], e["field"]) for e in out["createTaxationItems"]["userErrors"]] == [
        ("INVALID_STATUS", ["creditMemoId"])
    ]
    draft = await f.credit_memo(db, acct, f.item("10.00", tax="1.00"), post=False)
    _, tax = await item_ids(db, draft)
    out = await gql(
        TAXES,
        input={
            "creditMemoId": encode("CreditMemo", draft),
            "taxationItems": [
                {"creditMemoItemId": encode("CreditMemoItem", tax), "amount": "1.00"},
                {"creditMemoItemId": encode("CreditMemoItem", item), "amount": "0"},
            ],
        },
    )
    assert [(e["code"], e["field"]) for e in out["createTaxationItems"]["userErrors"]] == [
        ("ITEM_KIND_MISMATCH", ["taxationItems", "0", "creditMemoItemId"]),
        ("ITEM_NOT_IN_DOCUMENT", ["taxationItems", "1", "creditMemoItemId"]),
        ("AMOUNT_NOT_POSITIVE", ["taxationItems", "1", "amount"]),
    ]
    assert (await memo_row(db, draft)).amount == 1100


async def test_edits_need_document_manage_and_stay_in_the_token_accounts(
    db: Database, settings: Settings
) -> None:
    mine, theirs = await f.account(db), await f.account(db, name="Other")
    memo = await f.credit_memo(db, theirs, post=False)
    reader = GraphQLClient(db, settings, Principal("reader", frozenset({"read"})))
    out = await reader(UPDATE, input={"id": encode("CreditMemo", memo), "comment": "x"})
    assert [e["code"] for e in out["updateCreditMemo"]["userErrors"]] == ["PERMISSION_DENIED"]
    scoped = GraphQLClient(
        db, settings, Principal("clerk", frozenset({"document.manage"}), frozenset({mine}))
    )
    out = await scoped(UPDATE, input={"id": encode("CreditMemo", memo), "comment": "x"})
    assert [(e["code"], e["field"]) for e in out["updateCreditMemo"]["userErrors"]] == [("NOT_FOUND", ["id"])]
    assert (await memo_row(db, memo)).comment is None
