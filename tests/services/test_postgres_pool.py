"""PostgreSQL's pool keeps as many connections as a busy process uses: 16 applies at once take
connections the pool kept, not new ones (a connection opened past the pool's size is closed when it
comes back, and the next burst opened it again: a backend started, its statements prepared anew)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from gateway.config import Settings
from gateway.db import Database
from tests import factories as f
from tests.invariants import assert_invariants


def test_a_pool_size_below_one_or_a_negative_overflow_is_refused_with_the_variable_s_name() -> None:
    for variable, value in (("GATEWAY_DATABASE_POOL_SIZE", "0"), ("GATEWAY_DATABASE_MAX_OVERFLOW", "-1")):
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
    settings = Settings.from_env({"GATEWAY_DATABASE_POOL_SIZE": "5", "GATEWAY_DATABASE_MAX_OVERFLOW": "0"})
    assert (settings.database_pool_size, settings.database_max_overflow) == (5, 0)


async def test_sixteen_applies_at_once_take_the_connections_the_pool_kept(pg: Database) -> None:
    opened: list[object] = []
    acct = await f.account(pg)
    pairs = [
        (await f.credit_memo(pg, acct, f.item("1.00")), await f.invoice(pg, acct, f.item("1.00")))
        for _ in range(16)
    ]
    event.listen(pg.engine.sync_engine, "connect", lambda conn, record: opened.append(conn))
    after: list[int] = []
    for _ in range(3):
        await asyncio.gather(*(f.settle(pg, pg.settings, memo, [(inv, "0.01")]) for memo, inv in pairs))
        after.append(len(opened))
    assert 0 < after[0] <= 16
    assert after[1:] == [after[0], after[0]]  # the next bursts opened none
    await assert_invariants(pg)
