"""The read side through schema.execute: one navigable graph, batched, paged by keyset."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient, StatementCounter

NESTED = """
query Nested($first: Int) {
  accounts(first: 10) {
    totalCount
    nodes {
      number
      creditMemos(first: $first) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          number amount unappliedAmount
          referredInvoice { number }
          items(first: 50) {
            totalCount
            nodes {
              kind amount
              parentItem { kind }
              taxationItems { kind amount }
              sourceItem { amount invoice { number } }
              itemParts {
                amount
                targetItem { __typename ... on InvoiceItem { amount } }
              }
            }
          }
          parts {
            nodes {
              amount
              target { __typename ... on Invoice { number items { nodes { amount balance } } } }
              itemParts {
                amount
                creditMemoItem { kind }
                targetItem { __typename ... on InvoiceItem { amount balance } ... on DebitMemoItem { amount } }
              }
            }
          }
        }
      }
    }
  }
}
"""


async def memos(db: Database, count: int) -> None:
    """``count`` memos over two accounts: half from invoices (with source items) and applied to
    them, so that parts have targets, target items and item parts; half by hand, unapplied."""
    from gateway.config import Settings

    accounts = [await f.account(db), await f.account(db, name="Beta")]
    for n in range(count):
        acct = accounts[n % 2]
        if n % 2 == 0:
            inv = await f.invoice(db, acct, f.item("100.00", tax="10.00"), f.item("20.00"))
            memo = await f.credit_memo_from_invoice(db, inv, [(await _first_item_of(db, inv), "10.00")])
            await f.settle(db, Settings(database_url=db.settings.database_url), memo, [(inv, "6.00")])
        else:
            await f.credit_memo(db, acct, f.item("5.00", tax="0.50"), f.item("7.25"))


async def _first_item_of(db: Database, invoice_pk: int) -> int:
    from sqlalchemy import select

    from gateway import store as s

    async with db.connect() as conn:
        return int(
            await conn.scalar(
                select(s.receivable_item_t.c.id)
                .where(s.receivable_item_t.c.receivable_id == invoice_pk)
                .order_by(s.receivable_item_t.c.seq)
                .limit(1)
            )
        )


async def test_a_deep_nested_query_costs_the_same_statements_for_5_and_50_memos(
    db: Database, gql: GraphQLClient, sql: StatementCounter
) -> None:
    await memos(db, 5)
    with sql:
        small = await gql(NESTED, first=100)
    small_count = sql.count
    await memos(db, 45)
    with sql:
        large = await gql(NESTED, first=100)
    assert sum(len(a["creditMemos"]["nodes"]) for a in small["accounts"]["nodes"]) == 5
    assert sum(len(a["creditMemos"]["nodes"]) for a in large["accounts"]["nodes"]) == 50
    parts = [
        p for a in large["accounts"]["nodes"] for m in a["creditMemos"]["nodes"] for p in m["parts"]["nodes"]
    ]
    assert sum(1 for p in parts if p["target"] and p["itemParts"] and p["target"]["items"]["nodes"]) == 3 + 23
    assert sql.count == small_count, sql.statements
    # one statement per relation level, never one per row
    assert small_count <= 16


async def test_amounts_carry_exactly_the_currency_decimals(db: Database, gql: GraphQLClient) -> None:
    for currency, amount in (("USD", "10"), ("JPY", "1000"), ("KWD", "1.5")):
        acct = await f.account(db, currency)
        await f.invoice(db, acct, f.item(amount))
    data = await gql("{ invoices { nodes { currency amount balance creditMemoAmount } } }")
    assert [
        (n["currency"], n["amount"], n["balance"], n["creditMemoAmount"]) for n in data["invoices"]["nodes"]
    ] == [
        ("USD", "10.00", "10.00", "0.00"),
        ("JPY", "1000", "1000", "0"),
        ("KWD", "1.500", "1.500", "0.000"),
    ]


async def test_lookups_accept_the_id_or_the_number(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    memo = await f.credit_memo(db, acct)
    inv = await f.invoice(db, acct)
    pay = await f.payment(db, acct, "3.00")
    q = """query($m: ID, $i: ID, $p: ID) {
      byId: creditMemo(id: $m) { number } byNumber: creditMemo(number: "CM00000001") { id }
      invoice(id: $i) { number } invoiceByNumber: invoice(number: "INV00000001") { id }
      payment(id: $p) { number } account(number: "A00000001") { name }
      wrongType: invoice(id: $m) { number } missing: creditMemo(number: "CM99999999") { id }
    }"""
    data = await gql(q, m=encode("CreditMemo", memo), i=encode("Invoice", inv), p=encode("Payment", pay))
    assert data == {
        "byId": {"number": "CM00000001"},
        "byNumber": {"id": encode("CreditMemo", memo)},
        "invoice": {"number": "INV00000001"},
        "invoiceByNumber": {"id": encode("Invoice", inv)},
        "payment": {"number": "P-00000001"},
        "account": {"name": "Acme"},
        "wrongType": None,
        "missing": None,
    }


async def test_node_and_nodes_resolve_every_type_by_its_opaque_id(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("1.00", tax="0.10"))
    dm = await f.debit_memo(db, acct)
    memo = await f.credit_memo(db, acct)
    ids = [
        encode("Account", acct),
        encode("Invoice", inv),
        encode("DebitMemo", dm),
        encode("CreditMemo", memo),
        encode("InvoiceItem", 1),
        encode("DebitMemoItem", 3),
        encode("Invoice", dm),
        "not-an-id",
    ]
    data = await gql("query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }", ids=ids)
    assert [n and n["__typename"] for n in data["nodes"]] == [
        "Account",
        "Invoice",
        "DebitMemo",
        "CreditMemo",
        "InvoiceItem",
        "DebitMemoItem",
        None,
        None,
    ]
    single = await gql(
        "query($id: ID!) { node(id: $id) { ... on CreditMemo { number } } }", id=encode("CreditMemo", memo)
    )
    assert single == {"node": {"number": "CM00000001"}}


async def test_keyset_pages_walk_a_connection_without_gaps_or_repeats(
    db: Database, gql: GraphQLClient
) -> None:
    acct = await f.account(db)
    for _ in range(7):
        await f.credit_memo(db, acct)
    seen, after, pages = [], None, 0
    while True:
        data = await gql(
            "query($after: String) { creditMemos(first: 3, after: $after) { totalCount "
            "pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { number } } } }",
            after=after,
        )
        conn = data["creditMemos"]
        assert conn["totalCount"] == 7
        seen += [e["node"]["number"] for e in conn["edges"]]
        pages += 1
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == [f"CM{n:08d}" for n in range(1, 8)]
    assert pages == 3


async def test_first_defaults_to_50_and_is_capped_at_1000(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    for _ in range(51):
        await f.credit_memo(db, acct)
    data = await gql("{ creditMemos { nodes { number } pageInfo { hasNextPage } } }")
    assert len(data["creditMemos"]["nodes"]) == 50
    assert data["creditMemos"]["pageInfo"]["hasNextPage"] is True
    result = await gql.execute("{ creditMemos(first: 1001) { totalCount } }")
    assert result.errors is not None
    (error,) = result.errors
    assert error.extensions == {"code": "INVALID_VALUE", "category": "INVALID_VALUE", "field": ["first"]}
    assert "1,000" in error.message


async def test_a_foreign_cursor_is_refused_clearly(db: Database, gql: GraphQLClient) -> None:
    result = await gql.execute('{ creditMemos(after: "garbage") { totalCount } }')
    assert result.errors is not None and result.errors[0].extensions["field"] == ["after"]
    page = await gql.execute("{ creditMemos(first: 1) { pageInfo { endCursor } } }")
    assert page.errors is None


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("{field: AMOUNT, direction: DESC}", ["CM00000002", "CM00000003", "CM00000001"]),
        ("{field: AMOUNT}", ["CM00000001", "CM00000003", "CM00000002"]),
        ("{field: MEMO_DATE, direction: DESC}", ["CM00000003", "CM00000002", "CM00000001"]),
        ("{field: NUMBER, direction: DESC}", ["CM00000003", "CM00000002", "CM00000001"]),
        ("{field: UNAPPLIED_AMOUNT, direction: DESC}", ["CM00000002", "CM00000003", "CM00000001"]),
    ],
)
async def test_credit_memo_sorts_page_stably(
    db: Database, gql: GraphQLClient, sort: str, expected: list[str]
) -> None:
    acct = await f.account(db)
    from gateway.ids import ref
    from gateway.services import documents as svc

    for amount, day in (("1.00", date(2026, 1, 1)), ("9.00", date(2026, 1, 2)), ("5.00", date(2026, 1, 3))):
        await svc.create_credit_memo(
            db,
            account=ref(encode("Account", acct), "Account"),
            memo_date=day,
            items=[f.item(amount)],
            post=True,
        )
    first = await gql(
        f"{{ creditMemos(first: 2, sort: {sort}) {{ nodes {{ number }} pageInfo {{ endCursor }} }} }}"
    )
    rest = await gql(
        f"query($a: String) {{ creditMemos(first: 2, after: $a, sort: {sort}) {{ nodes {{ number }} }} }}",
        a=first["creditMemos"]["pageInfo"]["endCursor"],
    )
    numbers = [n["number"] for n in first["creditMemos"]["nodes"] + rest["creditMemos"]["nodes"]]
    assert numbers == expected


async def test_credit_memo_filters(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    other = await f.account(db, name="Other")
    inv = await f.invoice(db, acct)
    item_pk = await _first_item_of(db, inv)
    await f.credit_memo(db, acct, post=False)  # CM1 draft
    await f.credit_memo_from_invoice(db, inv, [(item_pk, "3.00")])  # CM2 posted, from invoice
    await f.credit_memo(db, other)  # CM3 posted, other account

    async def numbers(filter_: str, **v: object) -> list[str]:
        decl = ", ".join(f"${k}: ID" for k in v)
        head = f"query({decl})" if decl else "query"
        data = await gql(
            f"{head} {{ creditMemos(filter: {filter_}) {{ totalCount nodes {{ number }} }} }}", **v
        )
        nodes = [n["number"] for n in data["creditMemos"]["nodes"]]
        assert data["creditMemos"]["totalCount"] == len(nodes)
        return nodes

    assert await numbers("{status: POSTED}") == ["CM00000002", "CM00000003"]
    assert await numbers("{accountId: $a}", a=encode("Account", acct)) == ["CM00000001", "CM00000002"]
    assert await numbers("{accountId: $a}", a="A00000002") == ["CM00000003"]
    assert await numbers("{referredInvoiceId: $i}", i=encode("Invoice", inv)) == ["CM00000002"]
    assert await numbers("{hasReferredInvoice: false}") == ["CM00000001", "CM00000003"]
    assert await numbers("{hasReferredInvoice: true}") == ["CM00000002"]
    assert await numbers("{reversed: false, status: DRAFT}") == ["CM00000001"]
    assert await numbers('{memoDateFrom: "2026-03-03"}') == []
    assert await numbers('{memoDateFrom: "2026-03-02", memoDateTo: "2026-03-02"}') == [
        "CM00000001",
        "CM00000002",
        "CM00000003",
    ]
    assert await numbers("{accountId: $a}", a="A-NOPE") == []


async def test_relations_in_both_directions(db: Database, gql: GraphQLClient) -> None:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00", tax="8.00"))
    await f.credit_memo_from_invoice(db, inv, [(await _first_item_of(db, inv), "10.00")])
    await f.debit_memo(db, acct, f.item("3.00"))
    await f.payment(db, acct, "2.00")
    data = await gql("""{
      account(number: "A00000001") {
        invoices { nodes { number account { number } creditMemos { nodes { number } }
          items { nodes { kind invoice { number } taxationItems { kind parentItem { kind } } } } } }
        debitMemos { nodes { number memoDate appliedAmount items { nodes { debitMemo { number } } } } }
        payments { totalCount nodes { number unappliedAmount parts { nodes { amount target { __typename } payment { number } } } } }
        creditMemos { nodes { number items { nodes { creditMemo { number } sourceItem { invoice { number } } } }
          parts { nodes { amount creditMemo { number } } } applications { totalCount } } }
      }
    }""")
    a = data["account"]
    assert a["invoices"]["nodes"][0]["creditMemos"]["nodes"] == [{"number": "CM00000001"}]
    assert a["invoices"]["nodes"][0]["items"]["nodes"][0]["taxationItems"] == [
        {"kind": "TAX", "parentItem": {"kind": "CHARGE"}}
    ]
    assert a["debitMemos"]["nodes"] == [
        {
            "number": "DM00000001",
            "memoDate": "2026-03-02",
            "appliedAmount": "0.00",
            "items": {"nodes": [{"debitMemo": {"number": "DM00000001"}}]},
        }
    ]
    assert a["payments"]["nodes"][0]["parts"]["nodes"] == [
        {"amount": "2.00", "target": None, "payment": {"number": "P-00000001"}}
    ]
    memo = a["creditMemos"]["nodes"][0]
    assert memo["items"]["nodes"] == [
        {"creditMemo": {"number": "CM00000001"}, "sourceItem": {"invoice": {"number": "INV00000001"}}}
    ]
    assert memo["parts"]["nodes"] == [{"amount": "10.00", "creditMemo": {"number": "CM00000001"}}]
    assert memo["applications"]["totalCount"] == 0
