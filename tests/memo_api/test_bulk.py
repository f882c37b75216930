"""bulkCreateCreditMemos / bulkUpdateCreditMemos: a result per entry in entry order, field paths that
name the entry, each entry its own transaction, the 50-memo limit."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway import store as s
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient

RESULT = "results { creditMemo { number amount comment } userErrors { code field } } userErrors { code field limit { name max actual remedies } }"
CREATE = (
    f"mutation($input: BulkCreateCreditMemosInput!) {{ bulkCreateCreditMemos(input: $input) {{ {RESULT} }} }}"
)
UPDATE = (
    f"mutation($input: BulkUpdateCreditMemosInput!) {{ bulkUpdateCreditMemos(input: $input) {{ {RESULT} }} }}"
)


async def memo_count(db: Database) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(s.credit_memo_t)) or 0)


def entry(account: str, amount: str, comment: str | None = None) -> dict[str, object]:
    return {"accountId": account, "items": [{"amount": amount}], "comment": comment}


async def test_one_bad_entry_blocks_no_other(db: Database, gql: GraphQLClient) -> None:
    acct = encode("Account", await f.account(db))
    out = await gql(
        CREATE,
        input={
            "memos": [
                entry(acct, "10.00", "first"),
                entry(acct, "1.001"),
                entry(encode("Account", 999), "5.00"),
                entry(acct, "2.50", "last"),
            ]
        },
    )
    results = out["bulkCreateCreditMemos"]["results"]
    assert out["bulkCreateCreditMemos"]["userErrors"] == []
    assert [r["creditMemo"] for r in results] == [
        {"number": "CM00000001", "amount": "10.00", "comment": "first"},
        None,
        None,
        {"number": "CM00000002", "amount": "2.50", "comment": "last"},
    ]
    assert [r["userErrors"] for r in results] == [
        [],
        [{"code": "AMOUNT_PRECISION", "field": ["memos", "1", "items", "0", "amount"]}],
        [{"code": "NOT_FOUND", "field": ["memos", "2", "accountId"]}],
        [],
    ]
    assert await memo_count(db) == 2


async def test_more_than_fifty_memos_are_refused_whole(db: Database, gql: GraphQLClient) -> None:
    acct = encode("Account", await f.account(db))
    out = await gql(CREATE, input={"memos": [entry(acct, "1.00")] * 51})
    payload = out["bulkCreateCreditMemos"]
    assert payload["results"] == []
    assert payload["userErrors"] == [
        {
            "code": "LIMIT_EXCEEDED",
            "field": ["memos"],
            "limit": {
                "name": "MEMOS_PER_BULK_REQUEST",
                "max": 50,
                "actual": 51,
                "remedies": ["SPLIT_DOCUMENTS"],
            },
        }
    ]
    assert await memo_count(db) == 0
    out = await gql(CREATE, input={"memos": [entry(acct, "1.00")] * 50})
    assert [r["userErrors"] for r in out["bulkCreateCreditMemos"]["results"]] == [[]] * 50
    assert await memo_count(db) == 50


async def test_bulk_update_reports_per_entry(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    draft = await f.credit_memo(db, acct, post=False)
    posted = await f.credit_memo(db, acct, post=True)
    out = await gql(
        UPDATE,
        input={
            "memos": [
                {"id": encode("CreditMemo", draft), "comment": "a", "memoDate": "2026-05-01"},
                {"id": encode("CreditMemo", posted), "comment": "b", "memoDate": "2026-05-01"},
                {"id": encode("CreditMemo", posted), "comment": "c"},
            ]
        },
    )
    results = out["bulkUpdateCreditMemos"]["results"]
    assert [r["creditMemo"] and r["creditMemo"]["comment"] for r in results] == ["a", None, "c"]
    assert results[1]["userErrors"] == [{"code": "INVALID_STATUS", "field": ["memos", "1", "memoDate"]}]
