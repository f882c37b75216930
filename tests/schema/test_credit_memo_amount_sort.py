"""Sorting credit memos by AMOUNT compares values, not minor units, across currencies; the currency
breaks ties; pages follow the same order."""

from __future__ import annotations

import pytest

from gateway.db import Database
from tests import factories as f
from tests.conftest import GraphQLClient

QUERY = """query($a: String, $d: SortDirection!) { creditMemos(first: 2, after: $a,
  sort: {field: AMOUNT, direction: $d}) { nodes { number amount currency } pageInfo { endCursor } } }"""


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_amount_sort_compares_values_across_currencies(
    db: Database, gql: GraphQLClient, direction: str
) -> None:
    memos = {}
    for currency, amount in (
        ("USD", "4.00"),
        ("JPY", "300"),
        ("KWD", "1.000"),
        ("USD", "10.00"),
        ("EUR", "10.00"),
    ):
        acct = await f.account(db, currency, name=f"Acme {currency} {amount}")
        memos[await f.credit_memo(db, acct, f.item(amount))] = (currency, amount)
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = (await gql(QUERY, a=after, d=direction))["creditMemos"]
        seen += [(n["currency"], n["amount"]) for n in page["nodes"]]
        if len(page["nodes"]) < 2:
            break
        after = page["pageInfo"]["endCursor"]
    # by value: 1.000 KWD < 4.00 USD < 10.00 EUR = 10.00 USD (currency breaks the tie) < 300 JPY
    ascending = [("KWD", "1.000"), ("USD", "4.00"), ("EUR", "10.00"), ("USD", "10.00"), ("JPY", "300")]
    assert seen == (ascending if direction == "ASC" else ascending[::-1])
