"""Plain lists (application lines, item parts, taxation items) count at their real size: the cost
computed before execution cannot know it, so what they return is charged as they resolve and the
operation stops with QUERY_TOO_COSTLY past the limit. Both databases."""

from __future__ import annotations

from gateway.config import Settings
from gateway.db import Database
from gateway.ids import encode
from tests import factories as f
from tests.app.test_hostile import run

LINES = "query($m: ID!) { creditMemo(id: $m) { applications { nodes { lines { amount } } } } }"


async def applied(db: Database, settings: Settings) -> str:
    acct = await f.account(db)
    inv = await f.invoice(db, acct, *[f.item("10.00") for _ in range(40)])
    memo = await f.credit_memo(db, acct, *[f.item("100.00") for _ in range(3)], post=True)
    await f.settle(db, settings, memo, [(inv, "300.00")], rule="PRORATION")
    return encode("CreditMemo", memo)


async def test_plain_lists_are_charged_at_their_real_size(db: Database, settings: Settings) -> None:
    memo = await applied(db, settings)
    result, _ = await run(db, settings, LINES, m=memo)
    assert result.errors is None
    (application,) = result.data["creditMemo"]["applications"]["nodes"]
    lines = len(application["lines"])
    assert lines == 42  # 3 memo items prorated over 40 invoice items, one line per pair touched
    cost = result.extensions["cost"]
    # 101 before execution (1 memo + 50 applications × 1 per plain list), then the 42 lines it returned
    assert cost == {"requestedNodes": 101 + lines, "maxCost": 50_000, "listNodes": lines}


async def test_past_the_limit_a_plain_list_stops_the_operation(db: Database, settings: Settings) -> None:
    memo = await applied(db, settings)
    tight = settings.replace(max_query_cost=120)  # the query "costs" 101 before it runs
    result, _ = await run(db, tight, LINES, m=memo)
    (error,) = result.errors
    assert error.extensions == {
        "code": "QUERY_TOO_COSTLY",
        "category": "LIMIT_EXCEEDED",
        "limit": {"name": "QUERY_COST", "max": 120, "actual": 101 + 42},
    }
