"""Permissions and account scope of the PDF and email operations; the new memo relations are
batched (one statement per relation and level, whatever the number of memos)."""

from __future__ import annotations

from gateway import jobs
from gateway.config import Settings
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient, StatementCounter

GENERATE = "mutation($ids: [ID!]!) { generateCreditMemoPdfs(input: {creditMemoIds: $ids}) { id } }"
EMAIL = 'mutation($id: ID!) { emailCreditMemo(input: {creditMemoId: $id, to: ["a@b.example"]}) { job { id } userErrors { code field } } }'
STATUS = "query($ids: [ID!]!) { creditMemoPdfStatus(ids: $ids) { status } }"
MEMOS = "{ creditMemos(first: 50) { nodes { number pdf { status file { name } job { status } } files { totalCount nodes { name } } emails { status } } } }"


async def test_pdf_and_email_need_document_manage_and_the_account(db: Database, settings: Settings) -> None:
    mine, theirs = await f.account(db), await f.account(db, name="Other")
    memo = encode("CreditMemo", await f.credit_memo(db, theirs))
    reader = GraphQLClient(db, settings, Principal("reader", frozenset({"read"})))
    denied = await reader.execute(GENERATE, ids=[memo])
    assert denied.data == {"generateCreditMemoPdfs": None}
    assert [e.extensions["code"] for e in denied.errors or []] == ["PERMISSION_DENIED"]
    assert (await reader(EMAIL, id=memo))["emailCreditMemo"]["userErrors"] == [
        {"code": "PERMISSION_DENIED", "field": None}
    ]
    clerk = GraphQLClient(
        db, settings, Principal("clerk", frozenset({"document.manage", "read"}), frozenset({mine}))
    )
    hidden = await clerk.execute(GENERATE, ids=[memo])
    assert hidden.data == {"generateCreditMemoPdfs": None}
    assert [(e.extensions["code"], e.extensions["field"]) for e in hidden.errors or []] == [
        ("NOT_FOUND", ["creditMemoIds", "0"])
    ]
    assert (await clerk(EMAIL, id=memo))["emailCreditMemo"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["creditMemoId"]}
    ]
    assert (await clerk(STATUS, ids=[memo]))["creditMemoPdfStatus"] == [None]
    nobody = GraphQLClient(db, settings, Principal("nobody", frozenset({"document.manage"})))
    denied = await nobody.execute(STATUS, ids=[memo])
    assert denied.errors is not None and denied.errors[0].extensions["code"] == "PERMISSION_DENIED"  # type: ignore[index]


async def test_memo_files_pdf_and_emails_cost_the_same_statements_for_3_or_12_memos(
    db: Database, settings: Settings, gql: GraphQLClient, sql: StatementCounter
) -> None:
    counts = []
    for n in (3, 12):
        acct = await f.account(db)
        ids = [encode("CreditMemo", await f.credit_memo(db, acct)) for _ in range(n)]
        await gql(GENERATE, ids=ids)
        await jobs.Worker(db, settings).run_once()
        with sql:
            out = await gql(MEMOS)
        counts.append(sql.count)
        assert all(m["pdf"]["status"] == "GENERATED" for m in out["creditMemos"]["nodes"][-n:])
    # memos; pdf states, their files, their jobs; files and their count; emails
    assert counts[0] == counts[1] == 7, counts
