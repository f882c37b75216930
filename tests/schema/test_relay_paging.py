"""What Relay and Apollo clients expect: ``last``/``before`` on every connection, a top-level
``payments`` connection and ``settlementEvents`` history whose cursors the subscription accepts."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.config import Settings
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient, StatementCounter

ACCOUNTS = """query($first: Int, $after: String, $last: Int, $before: String) {
  accounts(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { number } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
HISTORY = """query($first: Int, $after: String, $last: Int, $before: String, $a: ID) {
  settlementEvents(first: $first, after: $after, last: $last, before: $before, accountId: $a) {
    totalCount
    edges { cursor node { cursor kind account { number } application { amount } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
APPLY = """mutation($m: ID!, $i: ID!, $amount: Decimal!) { applyCreditMemo(input: {creditMemoId: $m,
  invoices: [{id: $i, amount: $amount}]}) { userErrors { code } } }"""


def numbers(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["number"] for e in connection["edges"]]


async def test_last_and_before_page_backwards_with_the_same_cursors(db: Database, gql: GraphQLClient) -> None:
    for _ in range(5):
        await f.account(db)
    forward = (await gql(ACCOUNTS, first=5))["accounts"]
    cursors = [e["cursor"] for e in forward["edges"]]
    tail = (await gql(ACCOUNTS, last=2))["accounts"]
    assert numbers(tail) == ["A00000004", "A00000005"]
    assert [e["cursor"] for e in tail["edges"]] == cursors[3:]
    assert tail["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": cursors[3],
        "endCursor": cursors[4],
    }
    previous = (await gql(ACCOUNTS, last=2, before=tail["pageInfo"]["startCursor"]))["accounts"]
    assert numbers(previous) == ["A00000002", "A00000003"]
    assert (previous["pageInfo"]["hasPreviousPage"], previous["pageInfo"]["hasNextPage"]) == (True, True)
    first = (await gql(ACCOUNTS, last=2, before=cursors[1]))["accounts"]
    assert numbers(first) == ["A00000001"] and first["pageInfo"]["hasPreviousPage"] is False
    window = (await gql(ACCOUNTS, first=10, after=cursors[0], before=cursors[3]))["accounts"]
    assert numbers(window) == ["A00000002", "A00000003"] and window["totalCount"] == 5


async def test_last_on_nested_connections_of_many_parents_is_one_statement(
    db: Database, gql: GraphQLClient, sql: StatementCounter
) -> None:
    for _ in range(3):
        acct = await f.account(db)
        for amount in ("1.00", "2.00", "3.00"):
            await f.credit_memo(db, acct, f.item(amount))
    query = """{ accounts { nodes { creditMemos(last: 2, sort: {field: AMOUNT, direction: DESC}) {
        nodes { amount } pageInfo { hasPreviousPage hasNextPage } } } } }"""
    with sql:
        data = await gql(query)
    assert sql.count == 2  # the accounts page, then every account's last two memos at once
    pages = [a["creditMemos"] for a in data["accounts"]["nodes"]]
    assert [[n["amount"] for n in p["nodes"]] for p in pages] == [["2.00", "1.00"]] * 3
    assert all(p["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False} for p in pages)


async def test_bad_windows_are_refused_with_the_argument_named(gql: GraphQLClient) -> None:
    both = await gql.execute("{ accounts(first: 1, last: 1) { totalCount } }")
    too_many = await gql.execute("{ accounts(last: 5000) { totalCount } }")
    not_a_cursor = await gql.execute('{ accounts(last: 1, before: "nope") { totalCount } }')
    assert [
        (r.errors[0].extensions["code"], r.errors[0].extensions["field"])
        for r in (both, too_many, not_a_cursor)
    ] == [("INVALID_VALUE", ["last"]), ("INVALID_VALUE", ["last"]), ("INVALID_VALUE", ["before"])]


async def test_a_top_level_payments_connection_in_the_callers_scope(
    db: Database, settings: Settings, gql: GraphQLClient
) -> None:
    mine, theirs = await f.account(db), await f.account(db)
    for acct, amount in ((mine, "10.00"), (theirs, "20.00"), (mine, "30.00")):
        await f.payment(db, acct, amount)
    query = "{ payments(last: 5) { totalCount nodes { amount account { number } } } }"
    everything = (await gql(query))["payments"]
    assert everything["totalCount"] == 3
    assert [n["amount"] for n in everything["nodes"]] == ["10.00", "20.00", "30.00"]
    portal = GraphQLClient(db, settings, Principal("portal", frozenset({"read"}), frozenset({mine})))
    scoped = (await portal(query))["payments"]
    assert scoped["totalCount"] == 2 and [n["amount"] for n in scoped["nodes"]] == ["10.00", "30.00"]
    writer = GraphQLClient(db, settings, Principal("writer", frozenset({"document.manage"})))
    denied = await writer.execute(query)
    assert denied.data is None and denied.errors[0].extensions["code"] == "PERMISSION_DENIED"


async def test_settlement_event_history_pages_by_the_subscription_cursors(
    db: Database, settings: Settings, gql: GraphQLClient
) -> None:
    accounts = []
    for _ in range(2):
        acct = await f.account(db)
        inv = await f.invoice(db, acct, f.item("100.00"))
        memo = await f.credit_memo(db, acct, f.item("10.00"))
        accounts.append((acct, encode("CreditMemo", memo), encode("Invoice", inv)))
    for amount in ("1.00", "2.00", "3.00"):
        for _, m, i in accounts:
            assert (await gql(APPLY, m=m, i=i, amount=amount))["applyCreditMemo"]["userErrors"] == []
    mine = encode("Account", accounts[0][0])
    page = (await gql(HISTORY, first=2, a=mine))["settlementEvents"]
    assert [e["node"]["kind"] for e in page["edges"]] == ["POSTED", "APPLIED"]
    assert all(e["cursor"] == e["node"]["cursor"] for e in page["edges"])
    assert page["totalCount"] == 4 and page["pageInfo"]["hasNextPage"] is True
    rest = (await gql(HISTORY, first=10, after=page["pageInfo"]["endCursor"], a=mine))["settlementEvents"]
    assert [(e["node"]["kind"], e["node"]["application"]["amount"]) for e in rest["edges"]] == [
        ("APPLIED", "2.00"),
        ("APPLIED", "3.00"),
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    newest = (await gql(HISTORY, last=2))["settlementEvents"]
    assert [
        (e["node"]["account"]["number"], e["node"]["application"]["amount"]) for e in newest["edges"]
    ] == [
        ("A00000001", "3.00"),
        ("A00000002", "3.00"),
    ]
    portal = GraphQLClient(
        db, settings, Principal("portal", frozenset({"read"}), frozenset({accounts[1][0]}))
    )
    scoped = (await portal(HISTORY, first=10))["settlementEvents"]
    assert {e["node"]["account"]["number"] for e in scoped["edges"]} == {"A00000002"}
    assert scoped["totalCount"] == 4
    hidden = await portal.execute(HISTORY, first=1, a=mine)
    assert hidden.errors[0].extensions["code"] == "INVALID_VALUE"
    assert hidden.errors[0].extensions["field"] == ["accountId"]


async def test_last_costs_what_first_costs(http: httpx.AsyncClient) -> None:
    query = "{ accounts(last: 100) { nodes { creditMemos(last: 50) { nodes { id } } } } }"
    r = await http.post("/graphql", json={"query": query})
    assert r.json()["extensions"]["cost"]["requestedNodes"] == 100 + 100 * 50
