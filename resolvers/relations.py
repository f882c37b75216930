"""Loading one related node or one page of related nodes through the request's loaders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Row
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
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
    loader: DataLoader[int, list[Row[Any]]], pk: int, to_node: Callable[[Row[Any]], Any]
) -> list[Any]:
    return [to_node(r) for r in await loader.load(pk)]


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
