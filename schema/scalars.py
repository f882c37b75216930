"""Scalars. ``Decimal`` is an exact amount as a string with the currency's decimals; never a float."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import strawberry
from graphql import GraphQLError

from gateway.settlement.strict import iso_day


def _serialize_decimal(value: decimal.Decimal) -> str:
    return format(value, "f")


def _parse_decimal(value: Any) -> str:
    # Left as text: the rules parse it against the document's currency and answer with a
    # UserError (AMOUNT_PRECISION, with the field path) when it is not an amount.
    if isinstance(value, bool) or not isinstance(value, str):
        raise GraphQLError('Decimal amounts are strings such as "14.99", never JSON numbers')
    return value


DecimalScalar = strawberry.scalar(
    name="Decimal",
    description='Exact amount as a string, e.g. "14.99", with exactly the currency\'s decimals.',
    serialize=_serialize_decimal,
    parse_value=_parse_decimal,
)


def _parse_date(value: Any) -> datetime.date:
    day = iso_day(value) if isinstance(value, str) else None
    if day is None:
        # A GraphQLError: a refusal, not a bug (a ValueError here would be masked as internal).
        raise GraphQLError('dates are ISO 8601 calendar dates written YYYY-MM-DD, e.g. "2026-01-31"')
    return day


DateScalar = strawberry.scalar(
    name="Date",
    description="Date (isoformat)",
    serialize=datetime.date.isoformat,
    parse_value=_parse_date,
)
