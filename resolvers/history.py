"""Settlement events as a connection, oldest first, whose edge cursors are the subscription's
``after`` cursors: a client backfills with ``Query.settlementEvents``, then subscribes from the
last edge's cursor and misses nothing, sees nothing twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlalchemy import Row
from strawberry.types import Info

from gateway import reads
from gateway import store as s
from gateway.reads import Cond
from resolvers.relations import ctx
from resolvers.subscriptions import event_accounts, event_cursor, event_id
from schema.connection import Connection, build, page_spec


async def settlement_events(
    info: Info,
    to_node: Callable[[Row[Any]], Any],
    *,
    account_id: str | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Any]:
    c = ctx(info)
    accounts = await event_accounts(info, account_id)
    where: tuple[Cond, ...] = () if accounts is None else (("account_id", "in", tuple(sorted(accounts))),)
    spec = dataclasses.replace(
        page_spec(c.settings, first, None, last=last, where=where),  # sizes checked there
        after=None if after is None else (event_id(after),),
        before=None if before is None else (event_id(before, "before"),),
    )
    rows = await c.read(lambda conn: reads.page(conn, s.event_t, spec))
    return build(
        rows,
        spec,
        to_node,
        lambda: c.read(lambda conn: reads.count(conn, s.event_t, where)),
        cursor=lambda row: event_cursor(row.id),
    )
