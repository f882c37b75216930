"""Subscription sources. The database is the source of truth: events are rows, read in id order
from the subscriber's cursor; a job's state is its row. Rows are polled at a short interval.

A subscription holds no database connection while it waits: it reads in a short snapshot, yields,
and closes the snapshot before waiting for the next wake-up. Each holds a slot of
``db.subscriptions`` (per token and per process) while it runs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Iterator
from functools import partial
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, select
from strawberry.types import Info

from gateway import store as s
from gateway.events import EVENTS, SubscriptionLimit, job_channel
from gateway.hardening import limit_exceeded
from resolvers.lookup import find
from resolvers.relations import ctx
from schema.connection import QueryArgumentError

POLL_SECONDS = 1.0  # the bus wakes subscribers at once; this is the fallback
BATCH = 500


def event_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"event:{event_id}".encode()).rstrip(b"=").decode()


def event_id(cursor: str, field: str = "after") -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "event" or not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise QueryArgumentError(f"{field} is not a settlement event cursor", [field]) from None


async def event_accounts(info: Info, account_raw: str | None) -> frozenset[int] | None:
    """The accounts whose events the caller asked for and may see (None: every account)."""
    if account_raw is None:
        return ctx(info).principal.accounts
    acct = await find(info, "Account", account_raw)  # None outside the caller's scope too
    if acct is None:
        raise QueryArgumentError(f"account {account_raw} does not exist", ["accountId"])
    return frozenset({acct.id})


async def job_states(info: Info, raw_id: str) -> AsyncIterator[Row[Any]]:
    """The job's row on every change; progress messages from the bus (any instance) are merged in
    while it runs. Ends after COMPLETED or FAILED."""
    c = ctx(info)
    found = await find(info, "Job", raw_id)
    if found is None:
        raise QueryArgumentError(f"job {raw_id} does not exist", ["id"])
    row: Any = found
    last = None
    with _slot(info):
        async with c.db.bus.listen(job_channel(row.id)) as queue:
            while True:
                state = (row.status, row.processed_items)
                if state != last:
                    last = state
                    await c.after_write()  # the yielded job's fields must read fresh rows
                    yield row
                if row.status in ("COMPLETED", "FAILED"):
                    return
                await c.after_write()  # no connection held while waiting
                message = await _next(queue)
                row = await c.read(partial(_one_job, pk=row.id))
                if message and "processed" in message and row.status == "PROCESSING":
                    row = _with_progress(row, int(message["processed"]))


@contextlib.contextmanager
def _slot(info: Info) -> Iterator[None]:
    """A slot of the process's subscriptions for this token, or TOO_MANY_SUBSCRIPTIONS."""
    c = ctx(info)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(c.db.subscriptions.hold(c.principal.name))
        except SubscriptionLimit as full:
            raise limit_exceeded(full.name, full.max, full.actual) from None
        yield


def _with_progress(row: Row[Any], processed: int) -> Any:
    values = dict(row._mapping)
    values["processed_items"] = max(values["processed_items"], processed)
    return SimpleNamespace(**values)


async def _next(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any] | None:
    """The next bus message, or None after POLL_SECONDS: rows are re-read either way.

    Not ``asyncio.wait_for``: on Python 3.11 it returns the message instead of raising when the
    subscription is cancelled (its client gone) in the same turn as a message arrives, and the
    subscription would go on for nobody, its WebSocket's task never ending."""
    try:
        async with asyncio.timeout(POLL_SECONDS):
            return await queue.get()
    except TimeoutError:
        return None


async def _one_job(conn: Any, pk: int) -> Row[Any]:
    return (await conn.execute(select(s.job_t).where(s.job_t.c.id == pk))).one()


async def events(info: Info, account_raw: str | None, after: str | None) -> AsyncIterator[Row[Any]]:
    c = ctx(info)
    accounts = await event_accounts(info, account_raw)
    if after is not None:
        position = event_id(after)
    else:
        # No cursor: live events only, from now on.
        position = await c.read(_last_event_id)
    with _slot(info):
        async with c.db.bus.listen(EVENTS) as queue:
            while True:
                await c.after_write()
                rows = await c.read(partial(_events_after, position=position, accounts=accounts))
                for row in rows:
                    position = row.id
                    yield row
                if len(rows) < BATCH:
                    await c.after_write()  # no connection held while waiting
                    await _next(queue)


async def _last_event_id(conn: Any) -> int:
    from sqlalchemy import func

    return int((await conn.execute(select(func.coalesce(func.max(s.event_t.c.id), 0)))).scalar_one())


async def _events_after(conn: Any, position: int, accounts: frozenset[int] | None) -> list[Row[Any]]:
    stmt = select(s.event_t).where(s.event_t.c.id > position).order_by(s.event_t.c.id).limit(BATCH)
    if accounts is not None:
        stmt = stmt.where(s.event_t.c.account_id.in_(sorted(accounts)))
    return list((await conn.execute(stmt)).all())
