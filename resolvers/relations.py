"""Loading one related node or one page of related nodes through the request's loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Row
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
from gateway.hardening import limit_exceeded
from gateway.reads import Cond
from schema.connection import Connection, build, page_spec


def ctx(info: Info) -> Context:
    return info.context


async def one(
    loader: DataLoader[int, Row[Any] | None], pk: int | None, to_node: Callable[[Row[Any]], Any]
) -> Any:
    if pk is None:
        return None
    row = await loader.load(pk)
    return None if row is None else to_node(row)


async def many(
    info: Info, loader: DataLoader[int, list[Row[Any]]], pk: int, to_node: Callable[[Row[Any]], Any]
) -> list[Any]:
    """A plain list (not a connection): its real size is charged against the cost limit."""
    rows = await loader.load(pk)
    charge(info, len(rows))
    return [to_node(r) for r in rows]


def charge(info: Info, nodes: int) -> None:
    """Count the nodes a plain list returns: the cost computed before execution counts such a list
    as one node per parent, its real size is known only now. Past ``max_query_cost`` in all, the
    operation stops with QUERY_TOO_COSTLY (the list is not answered)."""
    c = ctx(info)
    c.list_nodes += nodes
    limit, actual = c.settings.max_query_cost, c.cost + c.list_nodes
    if actual > limit:
        raise limit_exceeded("QUERY_COST", limit, actual)


async def paged(
    info: Info,
    pages: DataLoader[Any, list[Row[Any]]],
    counts: DataLoader[Any, int],
    parent_id: int,
    first: int | None,
    after: str | None,
    to_node: Callable[[Row[Any]], Any],
    *,
    where: tuple[Cond, ...] = (),
    order: tuple[str, ...] = ("id",),
    descending: bool = False,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Any]:
    spec = page_spec(
        ctx(info).settings,
        first,
        after,
        last=last,
        before=before,
        where=where,
        order=order,
        descending=descending,
    )
    rows = await pages.load((parent_id, spec))
    return build(rows, spec, to_node, lambda: counts.load((parent_id, where)))
