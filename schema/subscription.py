"""The Subscription root: job progress and durable settlement events."""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from sqlalchemy import Row
from strawberry.types import Info

from resolvers import subscriptions
from resolvers.permissions import creator, denied_read
from resolvers.relations import ctx, one
from schema.enums import SettlementEventKind
from schema.types import Account, Application, CreditMemo, Job, Payment, _utc


@strawberry.type
class SettlementEvent:
    cursor: str = strawberry.field(description="Pass as `after` to resume without missing an event.")
    kind: SettlementEventKind
    occurred_at: datetime.datetime
    _row: strawberry.Private[Row[Any]]

    @classmethod
    def from_row(cls, r: Row[Any]) -> SettlementEvent:
        return cls(
            cursor=subscriptions.event_cursor(r.id),
            kind=r.kind,
            occurred_at=_utc(r.occurred_at),
            _row=r,
        )

    @strawberry.field(description="Who asked for it; an account-scoped token sees only its own name.")
    def created_by(self, info: Info) -> str | None:
        return creator(info, self._row.created_by)

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return await one(ctx(info).loaders.accounts_by_id, self._row.account_id, Account.from_row)

    @strawberry.field
    async def credit_memo(self, info: Info) -> CreditMemo | None:
        return await one(ctx(info).loaders.credit_memos_by_id, self._row.credit_memo_id, CreditMemo.from_row)

    @strawberry.field
    async def payment(self, info: Info) -> Payment | None:
        return await one(ctx(info).loaders.payments_by_id, self._row.payment_id, Payment.from_row)

    @strawberry.field
    async def application(self, info: Info) -> Application | None:
        return await one(ctx(info).loaders.applications_by_id, self._row.application_id, Application.from_row)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The job's state on every progress step; ends after COMPLETED or FAILED."
    )
    async def job_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Job, None]:
        if (denied := denied_read(info)) is not None:
            raise denied
        async for row in subscriptions.job_states(info, id):
            yield Job.from_row(row)

    @strawberry.subscription(
        description="Every settlement event, optionally of one account; `after` replays."
    )
    async def settlement_events(
        self, info: Info, account_id: strawberry.ID | None = None, after: str | None = None
    ) -> AsyncGenerator[SettlementEvent, None]:
        if (denied := denied_read(info)) is not None:
            raise denied
        async for row in subscriptions.events(info, account_id, after):
            yield SettlementEvent.from_row(row)
