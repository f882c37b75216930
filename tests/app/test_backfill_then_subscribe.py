"""A client backfills settlement events with the query, then subscribes from the last cursor: every
event arrives exactly once, including one written between the backfill and the subscription."""

from __future__ import annotations

import httpx
import pytest

from benchmarks.common import server
from gateway.config import Settings
from gateway.db import Database
from tests.app.test_subscriptions import APPLY, EVENTS, documents, post, subscribe

HISTORY = """query($a: ID, $after: String) { settlementEvents(first: 50, accountId: $a, after: $after) {
  edges { cursor node { kind application { amount } } } } }"""


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_backfill_then_subscribe_from_the_last_cursor_without_gap_or_duplicate(
    db: Database, settings: Settings, protocol: str
) -> None:
    ids = await documents(db)
    async with (
        server(settings.database_url, GATEWAY_WORKERS="0") as base,
        httpx.AsyncClient(timeout=30) as client,
    ):
        for amount in ("1.00", "2.00"):
            await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount=amount)
        backfill = (await post(client, base, HISTORY, a=ids["a"]))["settlementEvents"]["edges"]
        assert [(e["node"]["kind"], (e["node"]["application"] or {}).get("amount")) for e in backfill][
            -2:
        ] == [
            ("APPLIED", "1.00"),
            ("APPLIED", "2.00"),
        ]
        await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount="3.00")  # while the client is away
        async with subscribe(base, protocol, EVENTS, a=ids["a"], after=backfill[-1]["cursor"]) as sub:
            missed = (await sub.next())["settlementEvents"]  # type: ignore[index]
            await post(client, base, APPLY, m=ids["m"], i=ids["i"], amount="4.00")
            live = (await sub.next())["settlementEvents"]  # type: ignore[index]
        history = (await post(client, base, HISTORY, a=ids["a"]))["settlementEvents"]["edges"]
    assert (missed["application"]["amount"], live["application"]["amount"]) == ("3.00", "4.00")
    seen = [e["cursor"] for e in backfill] + [missed["cursor"], live["cursor"]]
    assert seen == [e["cursor"] for e in history]  # the same cursors, each event once, none missing
    after_backfill = history[len(backfill) :]
    assert [e["node"]["application"]["amount"] for e in after_backfill] == ["3.00", "4.00"]
