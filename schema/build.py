"""The executable schema."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig

from gateway.committed import AnswerWhenCommitted
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import DateScalar, DecimalScalar
from schema.subscription import Subscription
from schema.types import (
    Account,
    CreditMemo,
    CreditMemoItem,
    CreditMemoItemPart,
    CreditMemoPart,
    DebitMemo,
    DebitMemoItem,
    Invoice,
    InvoiceItem,
    Job,
    Payment,
    PaymentItemPart,
    PaymentPart,
)

NODE_TYPES = [
    Account,
    Invoice,
    InvoiceItem,
    DebitMemo,
    DebitMemoItem,
    CreditMemo,
    CreditMemoItem,
    CreditMemoPart,
    CreditMemoItemPart,
    Payment,
    PaymentPart,
    PaymentItemPart,
    Job,
]


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Expected errors are answers, not incidents; unexpected ones are logged, with their trace
        # and the request id, by gateway.masking before they are masked.
        return None


def build_schema(extensions: list | None = None) -> strawberry.Schema:
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        # a mutation's answer waits for its commits (gateway.committed), whatever else is added
        extensions=[AnswerWhenCommitted, *(extensions or [])],
        config=StrawberryConfig(scalar_map={decimal.Decimal: DecimalScalar, datetime.date: DateScalar}),
    )
