"""Authorization beyond the permission of each field, on both databases: a mutation's payload
answers no document to a token without `read`, and an account-scoped token does not learn other
callers' token names (Application.createdBy, SettlementEvent.createdBy)."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.config import Settings
from gateway.context import Principal
from gateway.db import Database
from gateway.ids import encode
from resolvers.permissions import creator
from tests import factories as f
from tests.conftest import GraphQLClient
from tests.invariants import balances

APPLY = """mutation($m: ID!, $i: ID!) { applyCreditMemo(input: {creditMemoId: $m, invoices: [{id: $i, amount: "2.00"}]})
  { creditMemo { number unappliedAmount } application { amount createdBy } appliedRule userErrors { code } } }"""
WHO = "query($m: ID!) { creditMemo(id: $m) { applications { nodes { amount createdBy } } } }"


async def documents(db: Database) -> tuple[int, dict[str, str]]:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, f.item("100.00"))
    memo = await f.credit_memo(db, acct, f.item("10.00"))
    return acct, {"m": encode("CreditMemo", memo), "i": encode("Invoice", inv)}


async def test_a_mutation_payload_answers_no_document_without_read(db: Database, settings: Settings) -> None:
    _, ids = await documents(db)
    writer = GraphQLClient(db, settings, Principal("writer", frozenset({"credit_memo.apply"})))
    before = await balances(db)
    data = await writer(APPLY, **ids)
    assert data["applyCreditMemo"] == {
        "creditMemo": None,
        "application": None,
        "appliedRule": "PRORATION",
        "userErrors": [],
    }
    assert await balances(db) != before  # it ran: only the answer is withheld
    reader = GraphQLClient(db, settings, Principal("both", frozenset({"credit_memo.apply", "read"})))
    data = await reader(APPLY, **ids)
    assert data["applyCreditMemo"]["creditMemo"] == {"number": "CM00000001", "unappliedAmount": "6.00"}


async def test_an_account_scoped_token_sees_only_its_own_name_as_creator(
    db: Database, settings: Settings
) -> None:
    acct, ids = await documents(db)
    await GraphQLClient(db, settings, Principal("back-office"))(APPLY, **ids)
    scoped = GraphQLClient(db, settings, Principal("portal", frozenset({"admin"}), frozenset({acct})))
    await scoped(APPLY, **ids)
    seen = (await scoped(WHO, m=ids["m"]))["creditMemo"]["applications"]["nodes"]
    assert [a["createdBy"] for a in seen] == [None, "portal"]
    everyone = (await GraphQLClient(db, settings)(WHO, m=ids["m"]))["creditMemo"]["applications"]["nodes"]
    assert [a["createdBy"] for a in everyone] == ["back-office", "portal"]


def test_settlement_event_creators_follow_the_same_rule() -> None:
    def info(principal: Principal) -> SimpleNamespace:
        return SimpleNamespace(context=SimpleNamespace(principal=principal))

    scoped = Principal("portal", frozenset({"read"}), frozenset({1}))
    assert creator(info(scoped), "back-office") is None  # type: ignore[arg-type]
    assert creator(info(scoped), "portal") == "portal"  # type: ignore[arg-type]
    assert creator(info(Principal("ops", frozenset({"read"}))), "back-office") == "back-office"  # type: ignore[arg-type]
