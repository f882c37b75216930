"""Batched read queries: every function answers for many keys with one SQL statement.

Pages are keyset pages: ``order`` names columns (the last one unique, normally ``id``) and ``after``
holds the values of the last row seen. A page per parent is cut with ``ROW_NUMBER() OVER
(PARTITION BY parent ...)`` so that the first N items of 50 memos still cost one statement.
Conditions are hashable tuples ``(column, op, value)`` so that loaders can group keys by them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Row, Select, Table, case, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.settlement.money import EXPONENTS

Cond = tuple[str, str, Any]  # (column, "=" | ">=" | "<=" | ">" | "is_null" | "not_null" | "in", value)

_OPS = {
    "=": lambda c, v: c == v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "<=": lambda c, v: c <= v,
    "is_null": lambda c, v: c.is_(None),
    "not_null": lambda c, v: c.is_not(None),
    "in": lambda c, v: c.in_(v),
}


@dataclass(frozen=True, slots=True)
class PageSpec:
    """Which rows of a connection: filter, order, keyset window and size (``limit`` + 1 fetched).

    ``backward`` (Relay's ``last``) reads the window from its end: rows come in reversed order, the
    connection turns them around."""

    where: tuple[Cond, ...] = ()
    order: tuple[str, ...] = ("id",)
    descending: bool = False
    after: tuple[Any, ...] | None = None
    limit: int = 50
    before: tuple[Any, ...] | None = None
    backward: bool = False


# An order column named "<money column>_value" (e.g. "amount_value") orders amounts by their value
# whatever their currency: minor units scaled to the largest exponent, so 1.000 KWD (1000) sorts
# below 10.00 USD (10000) and 300 JPY (300000) above it. Callers add "currency" as the tie-break.
VALUE = "_value"
_SCALE = max(EXPONENTS.values())


def column(table: Table, name: str) -> ColumnElement[Any]:
    if name.endswith(VALUE) and name not in table.c:
        scale = case(
            {cur: 10 ** (_SCALE - e) for cur, e in EXPONENTS.items()}, value=table.c.currency, else_=1
        )
        return (table.c[name.removesuffix(VALUE)] * scale).label(name)
    return table.c[name]


def _derived(table: Table, spec: PageSpec) -> list[ColumnElement[Any]]:
    return [column(table, c) for c in spec.order if c not in table.c]


def conditions(table: Table, where: Iterable[Cond]) -> list[ColumnElement[bool]]:
    return [_OPS[op](table.c[col], value) for col, op, value in where]


def _keyset(table: Table, spec: PageSpec) -> list[ColumnElement[bool]]:
    cols = tuple_(*(column(table, c) for c in spec.order))

    def at(position: tuple[Any, ...]) -> Any:
        return tuple_(
            *(
                literal(v, type_=table.c[c].type if c in table.c else BigInteger())
                for c, v in zip(spec.order, position, strict=True)
            )
        )

    out = []
    if spec.after is not None:
        out.append(cols < at(spec.after) if spec.descending else cols > at(spec.after))
    if spec.before is not None:
        out.append(cols > at(spec.before) if spec.descending else cols < at(spec.before))
    return out


def _order_by(table: Table, spec: PageSpec) -> list[Any]:
    descending = spec.descending != spec.backward
    return [column(table, c).desc() if descending else column(table, c).asc() for c in spec.order]


async def rows_by_ids(conn: AsyncConnection, table: Table, ids: Sequence[int]) -> dict[int, Row[Any]]:
    rows = (await conn.execute(select(table).where(table.c.id.in_(set(ids))))).all()
    return {row.id: row for row in rows}


async def rows_by_column(
    conn: AsyncConnection, table: Table, column: str, values: Sequence[Hashable]
) -> dict[Hashable, Row[Any]]:
    rows = (await conn.execute(select(table).where(table.c[column].in_(set(values))))).all()
    return {getattr(row, column): row for row in rows}


async def lists_by_parent(
    conn: AsyncConnection,
    table: Table,
    parent: str,
    parent_ids: Sequence[int],
    *,
    where: Sequence[Cond] = (),
    order: Sequence[str] = ("id",),
) -> dict[int, list[Row[Any]]]:
    """Every row of each parent (for short, unpaged lists such as taxation items)."""
    stmt = (
        select(table)
        .where(table.c[parent].in_(set(parent_ids)), *conditions(table, where))
        .order_by(table.c[parent], *(table.c[c] for c in order))
    )
    out: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in (await conn.execute(stmt)).all():
        out[getattr(row, parent)].append(row)
    return out


async def pages_by_parent(
    conn: AsyncConnection, table: Table, parent: str, parent_ids: Sequence[int], spec: PageSpec
) -> dict[int, list[Row[Any]]]:
    """Up to ``spec.limit + 1`` rows per parent (the extra row tells that a next page exists)."""
    ids = sorted(set(parent_ids))
    filters = [*conditions(table, spec.where), *_keyset(table, spec)]
    if len(ids) == 1:
        stmt: Select[Any] = (
            select(table, *_derived(table, spec))
            .where(table.c[parent] == ids[0], *filters)
            .order_by(*_order_by(table, spec))
            .limit(spec.limit + 1)
        )
    else:
        rank = func.row_number().over(partition_by=table.c[parent], order_by=_order_by(table, spec))
        derived = _derived(table, spec)
        inner = (
            select(table, *derived, rank.label("_rank")).where(table.c[parent].in_(ids), *filters).subquery()
        )
        stmt = (
            select(*(inner.c[c.name] for c in table.c), *(inner.c[d.name] for d in derived))
            .where(inner.c._rank <= spec.limit + 1)
            .order_by(inner.c[parent], inner.c._rank)
        )
    out: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in (await conn.execute(stmt)).all():
        out[getattr(row, parent)].append(row)
    return out


async def counts_by_parent(
    conn: AsyncConnection, table: Table, parent: str, parent_ids: Sequence[int], where: Sequence[Cond]
) -> dict[int, int]:
    stmt = (
        select(table.c[parent], func.count())
        .where(table.c[parent].in_(set(parent_ids)), *conditions(table, where))
        .group_by(table.c[parent])
    )
    return {pid: n for pid, n in (await conn.execute(stmt)).all()}


async def page(conn: AsyncConnection, table: Table, spec: PageSpec) -> list[Row[Any]]:
    stmt = (
        select(table, *_derived(table, spec))
        .where(*conditions(table, spec.where), *_keyset(table, spec))
        .order_by(*_order_by(table, spec))
        .limit(spec.limit + 1)
    )
    return list((await conn.execute(stmt)).all())


async def count(conn: AsyncConnection, table: Table, where: Sequence[Cond]) -> int:
    stmt = select(func.count()).select_from(table).where(*conditions(table, where))
    return int((await conn.execute(stmt)).scalar_one())
