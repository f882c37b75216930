"""Document mutations: parse the input, call the service, answer with the node or userErrors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from gateway.ids import ref
from gateway.services.documents import Actor
from gateway.settlement.documents import CreditRequest, NewItem
from gateway.settlement.errors import Rejected, RuleViolation
from resolvers.relations import ctx
from schema.errors import UserError, user_errors

P = TypeVar("P")


def actor(info: Info) -> Actor:
    return Actor(ctx(info).principal.name)


async def mutate(
    info: Info,
    call: Callable[[], Awaitable[int]],
    answer: Callable[[int], Awaitable[P]],
    failed: Callable[[list[UserError]], P],
) -> P:
    """Run a write; on a rule violation answer ``failed(userErrors)``, else ``answer(pk)`` read
    from a fresh snapshot (the request's reads so far predate the write)."""
    try:
        pk = await call()
    except (Rejected, RuleViolation) as exc:
        return failed(user_errors(exc))
    await ctx(info).after_write()
    return await answer(pk)


def new_items(items: list[Any]) -> list[NewItem]:
    return [
        NewItem(
            amount=i.amount, kind=i.kind.value, sku=i.sku, description=i.description, tax_amount=i.tax_amount
        )
        for i in items
    ]


def credit_requests(info: Info, items: list[Any]) -> list[CreditRequest]:
    out = []
    for i in items:
        r = ref(i.invoice_item_id, "InvoiceItem")
        out.append(
            CreditRequest(
                item_id=r.pk if r.pk and r.pk > 0 else None, raw_id=i.invoice_item_id, amount=i.amount
            )
        )
    return out


def account_ref(raw: str) -> Any:
    return ref(raw, "Account")
