"""UserError and the one table that maps rule violations to it."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import strawberry
from graphql import GraphQLError

from gateway.settlement.errors import Code, LimitExceeded, Rejected, RuleViolation
from schema.enums import ErrorCategory, ErrorCode, LimitName, RemedyEnum, WarningCode

C = ErrorCategory
CATEGORIES: dict[Code, ErrorCategory] = {
    Code.NOT_FOUND: C.NOT_FOUND,
    Code.INVALID_STATUS: C.RULE_RESTRICTION,
    Code.CURRENCY_MISMATCH: C.RULE_RESTRICTION,
    Code.ACCOUNT_MISMATCH: C.RULE_RESTRICTION,
    Code.AMOUNT_NOT_POSITIVE: C.INVALID_VALUE,
    Code.AMOUNT_PRECISION: C.INVALID_VALUE,
    Code.AMOUNT_EXCEEDS_UNAPPLIED: C.RULE_RESTRICTION,
    Code.AMOUNT_EXCEEDS_BALANCE: C.RULE_RESTRICTION,
    Code.AMOUNT_EXCEEDS_ITEM_BALANCE: C.RULE_RESTRICTION,
    Code.AMOUNT_EXCEEDS_APPLIED: C.RULE_RESTRICTION,
    Code.ITEM_AMOUNTS_MISMATCH: C.INVALID_VALUE,
    Code.ITEM_NOT_IN_DOCUMENT: C.INVALID_VALUE,
    Code.ITEM_KIND_MISMATCH: C.RULE_RESTRICTION,
    Code.DUPLICATE_TARGET: C.INVALID_VALUE,
    Code.NO_TARGETS: C.INVALID_VALUE,
    Code.EFFECTIVE_DATE_TOO_EARLY: C.RULE_RESTRICTION,
    Code.LIMIT_EXCEEDED: C.LIMIT_EXCEEDED,
    Code.NOT_FULLY_UNAPPLIED: C.RULE_RESTRICTION,
    Code.APPLIED_AMOUNT_NOT_ZERO: C.RULE_RESTRICTION,
    Code.ALREADY_REVERSED: C.RULE_RESTRICTION,
    Code.HAS_APPLICATIONS: C.RULE_RESTRICTION,
    Code.SOURCE_ITEM_RULE_VIOLATION: C.RULE_RESTRICTION,
    Code.IDEMPOTENCY_KEY_REUSED: C.CONFLICT,
    Code.IDEMPOTENCY_KEY_IN_PROGRESS: C.CONFLICT,
    Code.PERMISSION_DENIED: C.PERMISSION_DENIED,
    Code.INVALID_CURRENCY: C.INVALID_VALUE,
    Code.INVALID_VALUE: C.INVALID_VALUE,
    Code.NO_ITEMS: C.INVALID_VALUE,
    Code.ITEM_EXCEEDS_CREDITABLE: C.RULE_RESTRICTION,
    Code.DUPLICATE_NUMBER: C.CONFLICT,
    Code.FILE_TOO_LARGE: C.INVALID_VALUE,
    Code.UNSUPPORTED_CONTENT_TYPE: C.INVALID_VALUE,
    Code.EMAIL_NOT_SENT: C.CONFLICT,
}


@strawberry.type
class LimitViolation:
    name: LimitName
    max: int
    actual: int
    remedies: list[RemedyEnum]


@strawberry.type
class UserError:
    code: ErrorCode
    category: ErrorCategory
    message: str
    field: list[str] | None = strawberry.field(
        description='Path into the input, e.g. ["invoices", "3", "items", "0", "amount"].'
    )
    limit: LimitViolation | None = None


@strawberry.type
class Warning:
    code: WarningCode
    message: str


def user_error(v: RuleViolation) -> UserError:
    limit = None
    if isinstance(v, LimitExceeded):
        limit = LimitViolation(name=v.name, max=v.max, actual=v.actual, remedies=list(v.remedies))
    return UserError(
        code=v.code, category=CATEGORIES[v.code], message=v.message, field=list(v.field) or None, limit=limit
    )


def user_errors(exc: Rejected | RuleViolation) -> list[UserError]:
    violations: Iterable[RuleViolation] = exc.errors if isinstance(exc, Rejected) else [exc]
    return [user_error(v) for v in violations]


def refusal(errors: list[UserError]) -> GraphQLError:
    """Rule violations of a field that returns a node rather than a payload: one GraphQL error that
    carries the first code, category and input path, and every UserError under ``userErrors``."""
    first = errors[0]
    return GraphQLError(
        "; ".join(e.message for e in errors),
        extensions={
            "code": first.code.value,
            "category": first.category.value,
            "field": first.field,
            "userErrors": orjson.loads(user_errors_to_json(errors)),
        },
    )


def user_errors_to_json(errors: Iterable[UserError]) -> str:
    return orjson.dumps(
        [
            {
                "code": e.code.value if hasattr(e.code, "value") else e.code,
                "category": e.category.value,
                "message": e.message,
                "field": e.field,
                "limit": None
                if e.limit is None
                else {
                    "name": e.limit.name.value,
                    "max": e.limit.max,
                    "actual": e.limit.actual,
                    "remedies": [r.value for r in e.limit.remedies],
                },
            }
            for e in errors
        ]
    ).decode()


def user_errors_from_json(text: str | None) -> list[UserError]:
    if not text:
        return []
    out = []
    for d in orjson.loads(text):
        lim = d.get("limit")
        out.append(
            UserError(
                code=Code(d["code"]),
                category=CATEGORIES[Code(d["code"])],
                message=d["message"],
                field=d.get("field"),
                limit=None
                if lim is None
                else LimitViolation(
                    name=lim["name"], max=lim["max"], actual=lim["actual"], remedies=lim["remedies"]
                ),
            )
        )
    return out
