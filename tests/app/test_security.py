"""Who gets in, who may do what, which data each caller sees: nothing leaks, nothing is written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from gateway import auth
from gateway import store as s
from gateway.config import Settings
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.conftest import GraphQLClient
from tests.invariants import balances

Q = "{ accounts { totalCount } }"


async def test_no_token_bad_token_or_revoked_token_get_401_and_no_data(
    http: httpx.AsyncClient, db: Database
) -> None:
    token = await auth.create_token(db, name="soon-revoked", permissions=["read"])
    for header in (None, "Bearer nope", "Basic abc", f"Bearer {token}x"):
        r = await http.post("/graphql", json={"query": Q}, headers={"Authorization": header or ""})
        assert r.status_code == 401
        assert "data" not in r.json() and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    ok = await http.post("/graphql", json={"query": Q}, headers={"Authorization": f"Bearer {token}"})
    assert ok.json()["data"] == {"accounts": {"totalCount": 0}}
    await auth.revoke_token(db, "soon-revoked")
    gone = await http.post("/graphql", json={"query": Q}, headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


async def test_graphiql_page_and_health_need_no_token(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"Accept": "text/html", "Authorization": ""})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert (await http.get("/healthz", headers={"Authorization": ""})).status_code == 200
    by_get = await http.get(
        "/graphql", params={"query": Q}, headers={"Accept": "text/html", "Authorization": ""}
    )
    assert by_get.status_code == 401


async def test_only_the_hash_of_a_token_is_stored(db: Database) -> None:
    token = await auth.create_token(db, name="hashed", permissions=["admin"])
    async with db.connect() as conn:
        stored = (await conn.execute(select(auth.token_t))).one()
    assert token not in json.dumps([str(v) for v in stored]) and stored.token_hash == auth.hash_token(token)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_websocket_without_a_valid_token_is_refused(settings: Settings, protocol: str) -> None:
    from benchmarks.common import server

    async with server(settings.database_url, GATEWAY_WORKERS="0") as base:
        async with connect(base.replace("http", "ws") + "/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer wrong"}})
            )
            try:
                reply = json.loads(await ws.recv())
                assert reply["type"] == "connection_error"
            except Exception as closed:  # graphql-transport-ws closes with 4403 Forbidden
                assert "4403" in str(closed)
        async with connect(base.replace("http", "ws") + "/graphql", subprotocols=[protocol]) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {base.token}"}})
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"


MUTATIONS: list[tuple[str, str, str]] = [
    (
        "createAccount",
        "document.manage",
        'createAccount(input: {name: "x", currency: "USD"}) { userErrors { code category } }',
    ),
    (
        "createInvoice",
        "document.manage",
        'createInvoice(input: {accountId: $a, items: [{amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "createDebitMemo",
        "document.manage",
        'createDebitMemo(input: {accountId: $a, items: [{amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "createCreditMemo",
        "document.manage",
        'createCreditMemo(input: {accountId: $a, items: [{amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "createCreditMemoFromInvoice",
        "document.manage",
        'createCreditMemoFromInvoice(input: {invoiceId: $i, items: [{invoiceItemId: $ii, amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "createPayment",
        "document.manage",
        'createPayment(input: {accountId: $a, amount: "1.00"}) { userErrors { code category } }',
    ),
    ("postCreditMemo", "document.manage", "postCreditMemo(id: $d) { userErrors { code category } }"),
    ("unpostCreditMemo", "document.manage", "unpostCreditMemo(id: $m) { userErrors { code category } }"),
    ("cancelCreditMemo", "document.manage", "cancelCreditMemo(id: $d) { userErrors { code category } }"),
    ("deleteCreditMemo", "document.manage", "deleteCreditMemo(id: $d) { userErrors { code category } }"),
    ("postDebitMemo", "document.manage", "postDebitMemo(id: $dm) { userErrors { code category } }"),
    ("postInvoice", "document.manage", "postInvoice(id: $di) { userErrors { code category } }"),
    (
        "applyCreditMemo",
        "credit_memo.apply",
        'applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "unapplyCreditMemo",
        "credit_memo.unapply",
        "unapplyCreditMemo(input: {creditMemoId: $m}) { userErrors { code category } }",
    ),
    (
        "applyCreditMemoAsync",
        "credit_memo.apply",
        'applyCreditMemoAsync(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "unapplyCreditMemoAsync",
        "credit_memo.unapply",
        "unapplyCreditMemoAsync(input: {creditMemoId: $m}) { userErrors { code category } }",
    ),
    (
        "reverseCreditMemo",
        "credit_memo.reverse",
        "reverseCreditMemo(input: {creditMemoId: $m}) { userErrors { code category } }",
    ),
    (
        "writeOffCreditMemo",
        "credit_memo.write_off",
        "writeOffCreditMemo(input: {creditMemoId: $m}) { userErrors { code category } }",
    ),
    (
        "refundCreditMemo",
        "credit_memo.refund",
        'refundCreditMemo(input: {creditMemoId: $m, amount: "1.00"}) { userErrors { code category } }',
    ),
    (
        "applyPayment",
        "payment.apply",
        'applyPayment(input: {paymentId: $p, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code category } }',
    ),
    (
        "unapplyPayment",
        "payment.unapply",
        "unapplyPayment(input: {paymentId: $p}) { userErrors { code category } }",
    ),
]


def operation(field: str, ids: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The mutation with only the variables ``field`` uses declared."""
    import re

    used = sorted(set(re.findall(r"\$(\w+)", field)))
    head = f"mutation({', '.join(f'${v}: ID!' for v in used)})" if used else "mutation"
    return f"{head} {{ {field} }}", {v: ids[v] for v in used}


async def world(db: Database) -> dict[str, str]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("10.00"))
    memo = await f.credit_memo(db, acct, f.item("5.00"))
    draft = await f.credit_memo(db, acct, post=False)
    dm = await f.debit_memo(db, acct, post=False)
    draft_inv = await f.invoice(db, acct, post=False)
    pay = await f.payment(db, acct, "3.00")
    async with db.connect() as conn:
        item = await conn.scalar(
            select(s.receivable_item_t.c.id).where(s.receivable_item_t.c.receivable_id == inv)
        )
    return {
        "a": encode("Account", acct),
        "i": encode("Invoice", inv),
        "ii": encode("InvoiceItem", item),
        "m": encode("CreditMemo", memo),
        "d": encode("CreditMemo", draft),
        "dm": encode("DebitMemo", dm),
        "di": encode("Invoice", draft_inv),
        "p": encode("Payment", pay),
    }


async def counts(db: Database) -> dict[str, Any]:
    async with db.connect() as conn:
        rows = {
            t.name: await conn.scalar(select(func.count()).select_from(t))
            for t in (
                s.account_t,
                s.receivable_t,
                s.credit_memo_t,
                s.payment_t,
                s.application_t,
                s.job_t,
                s.part_t,
            )
        }
    return {"rows": rows, "money": await balances(db)}


@pytest.mark.parametrize(("name", "permission", "field"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_every_mutation_needs_its_permission(
    db: Database, settings: Settings, name: str, permission: str, field: str
) -> None:
    ids = await world(db)
    before = await counts(db)
    everything_else = set(auth.PERMISSIONS) - {permission, "admin"}
    client = GraphQLClient(db, settings, Principal("clerk", frozenset(everything_else)))
    query, variables = operation(field, ids)
    data = await client(query, **variables)
    assert data[name]["userErrors"] == [{"code": "PERMISSION_DENIED", "category": "PERMISSION_DENIED"}]
    assert await counts(db) == before
    allowed = GraphQLClient(db, settings, Principal("clerk", frozenset({permission})))
    granted = await allowed(query, **variables)
    assert {"code": "PERMISSION_DENIED", "category": "PERMISSION_DENIED"} not in granted[name]["userErrors"]


async def test_queries_need_read(db: Database, settings: Settings) -> None:
    client = GraphQLClient(db, settings, Principal("writer", frozenset({"document.manage"})))
    result = await client.execute(Q)
    assert result.data is None and result.errors[0].extensions["code"] == "PERMISSION_DENIED"


async def test_a_scoped_token_sees_nothing_outside_its_accounts(db: Database, settings: Settings) -> None:
    mine, theirs = await world(db), await world(db)
    # settle in both worlds so that parts, item parts, applications and jobs exist on both sides
    admin = GraphQLClient(db, settings)
    for w in (mine, theirs):
        await admin(
            'mutation($m: ID!, $i: ID!, $p: ID!) { applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "2.00"}]}) { userErrors { code } } '
            'applyPayment(input: {paymentId: $p, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code } } '
            'applyCreditMemoAsync(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code } } }',
            m=w["m"],
            i=w["i"],
            p=w["p"],
        )
    async with db.connect() as conn:
        acct_a = int((await conn.execute(select(s.account_t.c.id).order_by(s.account_t.c.id))).first()[0])
    portal = GraphQLClient(
        db, settings, Principal("portal", frozenset({"read", "credit_memo.apply"}), frozenset({acct_a}))
    )
    graph = await admin("""{ creditMemos(first: 10) { nodes { id account { id } items { nodes { id } }
        parts { nodes { id itemParts { id } } } applications { nodes { id } } } }
        jobs { nodes { id } } invoices { nodes { id items { nodes { id } } } } debitMemos { nodes { id items { nodes { id } } } }
        payments: accounts { nodes { payments { nodes { id parts { nodes { id itemParts { id } } } } } } } }""")
    all_ids = json.dumps(graph)
    theirs_prefix = {k: v for k, v in theirs.items()}
    # every global id of the other world, found anywhere in the admin's view, is invisible to the portal
    from gateway.ids import decode

    ids_in_graph = {v for v in _walk(graph) if isinstance(v, str) and decode(v)}
    visible = await portal("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=sorted(ids_in_graph))
    seen = {n["id"] for n in visible["nodes"] if n}
    mine_ids = await _ids_reachable(admin, mine["a"])
    assert seen == {i for i in ids_in_graph if i in mine_ids}, all_ids[:200]
    for k, v in theirs_prefix.items():
        assert (await portal("query($id: ID!) { node(id: $id) { id } }", id=v))["node"] is None, k
    lists = await portal("""{ accounts { totalCount } creditMemos { totalCount } invoices { totalCount }
        debitMemos { totalCount } jobs { totalCount } other: creditMemo(number: "CM00000003") { id } }""")
    assert lists == {
        "accounts": {"totalCount": 1},
        "creditMemos": {"totalCount": 2},
        "invoices": {"totalCount": 2},
        "debitMemos": {"totalCount": 1},
        "jobs": {"totalCount": 1},
        "other": None,
    }
    before = await counts(db)
    cross = await portal(
        'mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code field } } }',
        m=mine["m"],
        i=theirs["i"],
    )
    assert cross["applyCreditMemo"]["userErrors"] == [{"code": "NOT_FOUND", "field": ["invoices", "0", "id"]}]
    foreign = await portal(
        'mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code field } } }',
        m=theirs["m"],
        i=theirs["i"],
    )
    assert {"code": "NOT_FOUND", "field": ["creditMemoId"]} in foreign["applyCreditMemo"]["userErrors"]
    preview = await portal(
        'query($m: ID!, $i: ID!) { previewCreditMemoApplication(input: {creditMemoId: $m, invoices: [{id: $i, amount: "1.00"}]}) { userErrors { code field } } }',
        m=mine["m"],
        i=theirs["i"],
    )
    assert preview["previewCreditMemoApplication"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["invoices", "0", "id"]}
    ]
    assert await counts(db) == before


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


async def _ids_reachable(admin: GraphQLClient, account_id: str) -> set[str]:
    data = await admin(
        """query($a: ID!) { account(id: $a) { id creditMemos { nodes { id items { nodes { id } }
        parts { nodes { id itemParts { id } } } applications { nodes { id } } } }
        invoices { nodes { id items { nodes { id } } } } debitMemos { nodes { id items { nodes { id } } } }
        payments { nodes { id parts { nodes { id itemParts { id } } } } } } jobs { nodes { id creditMemo { account { id } } } } }""",
        a=account_id,
    )
    ids = {v for v in _walk(data["account"]) if isinstance(v, str)}
    ids |= {j["id"] for j in data["jobs"]["nodes"] if j["creditMemo"]["account"]["id"] == account_id}
    return ids
