"""Connections: keyset cursors, ``first``/``after`` and ``last``/``before`` (a page holds 50 by
default, at most 1,000), lazy ``totalCount``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import orjson
import strawberry
from graphql import GraphQLError
from sqlalchemy import Row

from gateway.config import Settings
from gateway.reads import Cond, PageSpec

T = TypeVar("T")


class QueryArgumentError(GraphQLError):
    """A bad argument of a query field (no payload to carry a UserError): code and field path."""

    def __init__(self, message: str, field: Sequence[str]) -> None:
        super().__init__(
            message,
            extensions={"code": "INVALID_VALUE", "category": "INVALID_VALUE", "field": list(field)},
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many nodes the whole connection has, across all pages.")
    async def total_count(self) -> int:
        return await self._total()


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        return date.fromisoformat(value["d"])
    return value


def encode_cursor(order_key: str, values: Sequence[Any]) -> str:
    raw = orjson.dumps([order_key, *(_encode_value(v) for v in values)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# What a cursor may carry per ordering column (anything else is a crafted cursor).
_TEXT_COLUMNS = frozenset({"number", "currency"})
_DATE_COLUMNS = frozenset({"memo_date"})
_TIME_COLUMNS = frozenset({"created_at"})
_BIGINT = 2**63


def _checked(column: str, value: Any) -> Any:
    """The decoded value of ``column`` when it has that column's type and range, else ValueError."""
    decoded = _decode_value(value)
    if column in _TEXT_COLUMNS:
        ok = isinstance(decoded, str) and len(decoded) <= 255 and decoded.isprintable()
    elif column in _DATE_COLUMNS:
        ok = isinstance(decoded, date) and not isinstance(decoded, datetime)
    elif column in _TIME_COLUMNS:
        ok = isinstance(decoded, datetime)
    else:  # ids, sequence numbers and amounts
        ok = type(decoded) is int and -_BIGINT <= decoded < _BIGINT
    if not ok:
        raise ValueError(column)
    return decoded


def decode_cursor(cursor: str, order_key: str, width: int, field: str = "after") -> tuple[Any, ...]:
    """The position a cursor of this connection and sort names; anything else (another sort, a
    crafted value of the wrong type or range) is an INVALID_VALUE at ``field`` (after or before)."""
    columns = order_key.removesuffix(":desc").split(",")
    try:
        if len(cursor) > 1_000 or not cursor.isascii():
            raise ValueError
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, list) or len(data) != width + 1 or data[0] != order_key:
            raise ValueError
        return tuple(_checked(c, v) for c, v in zip(columns, data[1:], strict=True))
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, orjson.JSONDecodeError):
        raise QueryArgumentError(
            f"{field} is not a cursor of this connection (with this sort)", [field]
        ) from None


def page_spec(
    settings: Settings,
    first: int | None,
    after: str | None,
    *,
    last: int | None = None,
    before: str | None = None,
    where: tuple[Cond, ...] = (),
    order: tuple[str, ...] = ("id",),
    descending: bool = False,
) -> PageSpec:
    """Relay's window: ``after``/``before`` bound it, then ``first`` rows from its start or ``last``
    rows from its end (one of the two; ``first`` defaults to the page size)."""
    if first is not None and last is not None:
        raise QueryArgumentError("pass first or last, not both", ["last"])
    name = "first" if last is None else "last"
    size = last if last is not None else settings.page_size_default if first is None else first
    if size < 0 or size > settings.page_size_max:
        raise QueryArgumentError(
            f"{name} must be between 0 and {settings.page_size_max:,}, got {size:,}; "
            f"page through larger connections with {'after' if last is None else 'before'}",
            [name],
        )
    key = _order_key(order, descending)
    return PageSpec(
        where=where,
        order=order,
        descending=descending,
        after=decode_cursor(after, key, len(order)) if after is not None else None,
        before=decode_cursor(before, key, len(order), "before") if before is not None else None,
        limit=size,
        backward=last is not None,
    )


def _order_key(order: Sequence[str], descending: bool) -> str:
    return ",".join(order) + (":desc" if descending else "")


def build(
    rows: Sequence[Row[Any]],
    spec: PageSpec,
    to_node: Callable[[Row[Any]], Any],
    total: Callable[[], Awaitable[int]],
    cursor: Callable[[Row[Any]], str] | None = None,
) -> Connection[Any]:
    """A connection from up to ``spec.limit + 1`` rows (the extra row only says there is more);
    ``cursor`` replaces the keyset cursor where a connection shares its cursors with a subscription."""
    key = _order_key(spec.order, spec.descending)

    def keyset_cursor(row: Row[Any]) -> str:
        return encode_cursor(key, [getattr(row, c) for c in spec.order])

    cursor = cursor or keyset_cursor
    more = len(rows) > spec.limit
    shown = rows[: spec.limit]
    if spec.backward:  # read from the end of the window: put the rows back in the connection's order
        shown = shown[::-1]
    edges = [Edge(cursor=cursor(r), node=to_node(r)) for r in shown]
    return Connection(
        edges=edges,
        nodes=[edge.node for edge in edges],
        page_info=PageInfo(
            has_next_page=spec.before is not None if spec.backward else more,
            has_previous_page=more if spec.backward else spec.after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        _total=total,
    )
