"""One exception per rule violation, each with a stable code, a field path and its numbers.

The GraphQL layer maps them to ``UserError`` with one table (``schema/errors.py``); nothing here knows
about GraphQL. A request that breaks several rules raises ``Rejected`` with all of them, so that the
caller sees every problem at once and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, ClassVar


class Code(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_STATUS = "INVALID_STATUS"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    AMOUNT_NOT_POSITIVE = "AMOUNT_NOT_POSITIVE"
    AMOUNT_PRECISION = "AMOUNT_PRECISION"
    AMOUNT_EXCEEDS_UNAPPLIED = "AMOUNT_EXCEEDS_UNAPPLIED"
    AMOUNT_EXCEEDS_BALANCE = "AMOUNT_EXCEEDS_BALANCE"
    AMOUNT_EXCEEDS_ITEM_BALANCE = "AMOUNT_EXCEEDS_ITEM_BALANCE"
    AMOUNT_EXCEEDS_APPLIED = "AMOUNT_EXCEEDS_APPLIED"
    ITEM_AMOUNTS_MISMATCH = "ITEM_AMOUNTS_MISMATCH"
    ITEM_NOT_IN_DOCUMENT = "ITEM_NOT_IN_DOCUMENT"
    ITEM_KIND_MISMATCH = "ITEM_KIND_MISMATCH"
    DUPLICATE_TARGET = "DUPLICATE_TARGET"
    NO_TARGETS = "NO_TARGETS"
    EFFECTIVE_DATE_TOO_EARLY = "EFFECTIVE_DATE_TOO_EARLY"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    NOT_FULLY_UNAPPLIED = "NOT_FULLY_UNAPPLIED"
    APPLIED_AMOUNT_NOT_ZERO = "APPLIED_AMOUNT_NOT_ZERO"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    HAS_APPLICATIONS = "HAS_APPLICATIONS"
    SOURCE_ITEM_RULE_VIOLATION = "SOURCE_ITEM_RULE_VIOLATION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    # (ours) input problems the contract's list does not name
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_VALUE = "INVALID_VALUE"
    NO_ITEMS = "NO_ITEMS"
    ITEM_EXCEEDS_CREDITABLE = "ITEM_EXCEEDS_CREDITABLE"
    DUPLICATE_NUMBER = "DUPLICATE_NUMBER"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSUPPORTED_CONTENT_TYPE = "UNSUPPORTED_CONTENT_TYPE"
    EMAIL_NOT_SENT = "EMAIL_NOT_SENT"


class Limit(StrEnum):
    DOCUMENTS_PER_REQUEST = "DOCUMENTS_PER_REQUEST"
    ITEMS_PER_DOCUMENT = "ITEMS_PER_DOCUMENT"
    SPECIFIED_ITEMS_PER_DOCUMENT = "SPECIFIED_ITEMS_PER_DOCUMENT"
    SPECIFIED_SOURCE_ITEMS = "SPECIFIED_SOURCE_ITEMS"
    TOTAL_ITEMS = "TOTAL_ITEMS"
    ASYNC_TOTAL_ITEMS = "ASYNC_TOTAL_ITEMS"
    ASYNC_INVOICES_PER_REQUEST = "ASYNC_INVOICES_PER_REQUEST"
    ITEM_PARTS_PER_UNAPPLY = "ITEM_PARTS_PER_UNAPPLY"
    REVERSAL_ITEMS = "REVERSAL_ITEMS"
    REFUND_ITEMS = "REFUND_ITEMS"
    SPECIFIED_REFUND_ITEMS = "SPECIFIED_REFUND_ITEMS"
    MEMOS_PER_BULK_REQUEST = "MEMOS_PER_BULK_REQUEST"


class Remedy(StrEnum):
    SPLIT_DOCUMENTS = "SPLIT_DOCUMENTS"
    SPECIFY_TARGET_ITEMS = "SPECIFY_TARGET_ITEMS"
    SPECIFY_SOURCE_ITEMS = "SPECIFY_SOURCE_ITEMS"
    SPECIFY_DOCUMENTS = "SPECIFY_DOCUMENTS"
    USE_ASYNC = "USE_ASYNC"


Field = tuple[str, ...]


class RuleViolation(Exception):
    """A request that breaks a rule. ``field`` is the path into the input, e.g. ("invoices", "3")."""

    code: ClassVar[Code]

    def __init__(self, message: str, *, field: Sequence[str] = (), **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field: Field = tuple(str(p) for p in field)
        self.data = data

    def at(self, *prefix: str | int) -> RuleViolation:
        """The same violation with its field path under ``prefix``."""
        self.field = tuple(str(p) for p in prefix) + self.field
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.field!r}, {self.message!r})"


class Rejected(Exception):
    """Every violation found in one request; raising it means nothing was written."""

    def __init__(self, errors: Iterable[RuleViolation]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(e.message for e in self.errors))


class NotFound(RuleViolation):
    code = Code.NOT_FOUND

    def __init__(self, kind: str, ref: object, *, field: Sequence[str] = ("id",)) -> None:
        super().__init__(f"{kind} {ref} does not exist", field=field, kind=kind, ref=ref)


class InvalidStatus(RuleViolation):
    code = Code.INVALID_STATUS


class CurrencyMismatch(RuleViolation):
    code = Code.CURRENCY_MISMATCH


class AccountMismatch(RuleViolation):
    code = Code.ACCOUNT_MISMATCH


class AmountNotPositive(RuleViolation):
    code = Code.AMOUNT_NOT_POSITIVE

    def __init__(self, amount: object, *, field: Sequence[str]) -> None:
        super().__init__(f"amount must be greater than zero, got {amount}", field=field)


class AmountPrecision(RuleViolation):
    code = Code.AMOUNT_PRECISION

    def __init__(
        self,
        amount: object,
        currency: str | None,
        exp: int | None,
        *,
        field: Sequence[str],
        malformed: bool = False,
        too_large: bool = False,
    ) -> None:
        if malformed:
            message = f"{amount!r} is not a decimal amount"
        elif too_large:
            message = f"{amount} is larger than the gateway accepts"
        else:
            message = f"{amount} has more decimals than {currency} allows ({exp})"
        super().__init__(message, field=field, currency=currency, exponent=exp)


class InvalidCurrency(RuleViolation):
    code = Code.INVALID_CURRENCY

    def __init__(self, currency: str, *, field: Sequence[str] = ("currency",)) -> None:
        super().__init__(f"{currency!r} is not a supported ISO 4217 currency code", field=field)


class InvalidValue(RuleViolation):
    code = Code.INVALID_VALUE


class NoItems(RuleViolation):
    code = Code.NO_ITEMS


class ItemExceedsCreditable(RuleViolation):
    code = Code.ITEM_EXCEEDS_CREDITABLE


class DuplicateNumber(RuleViolation):
    code = Code.DUPLICATE_NUMBER


class FileTooLarge(RuleViolation):
    code = Code.FILE_TOO_LARGE


class UnsupportedContentType(RuleViolation):
    code = Code.UNSUPPORTED_CONTENT_TYPE


class EmailNotSent(RuleViolation):
    code = Code.EMAIL_NOT_SENT


class AmountExceedsUnapplied(RuleViolation):
    code = Code.AMOUNT_EXCEEDS_UNAPPLIED


class AmountExceedsBalance(RuleViolation):
    code = Code.AMOUNT_EXCEEDS_BALANCE


class AmountExceedsItemBalance(RuleViolation):
    code = Code.AMOUNT_EXCEEDS_ITEM_BALANCE


class AmountExceedsApplied(RuleViolation):
    code = Code.AMOUNT_EXCEEDS_APPLIED


class ItemAmountsMismatch(RuleViolation):
    code = Code.ITEM_AMOUNTS_MISMATCH


class ItemNotInDocument(RuleViolation):
    code = Code.ITEM_NOT_IN_DOCUMENT


class ItemKindMismatch(RuleViolation):
    code = Code.ITEM_KIND_MISMATCH


class DuplicateTarget(RuleViolation):
    code = Code.DUPLICATE_TARGET


class NoTargets(RuleViolation):
    code = Code.NO_TARGETS


class EffectiveDateTooEarly(RuleViolation):
    code = Code.EFFECTIVE_DATE_TOO_EARLY


class NotFullyUnapplied(RuleViolation):
    code = Code.NOT_FULLY_UNAPPLIED


class AppliedAmountNotZero(RuleViolation):
    code = Code.APPLIED_AMOUNT_NOT_ZERO


class AlreadyReversed(RuleViolation):
    code = Code.ALREADY_REVERSED


class HasApplications(RuleViolation):
    code = Code.HAS_APPLICATIONS


class SourceItemRuleViolation(RuleViolation):
    code = Code.SOURCE_ITEM_RULE_VIOLATION


class IdempotencyKeyReused(RuleViolation):
    code = Code.IDEMPOTENCY_KEY_REUSED


class IdempotencyKeyInProgress(RuleViolation):
    code = Code.IDEMPOTENCY_KEY_IN_PROGRESS


class PermissionDenied(RuleViolation):
    code = Code.PERMISSION_DENIED


class LimitExceeded(RuleViolation):
    code = Code.LIMIT_EXCEEDED

    def __init__(
        self,
        name: Limit,
        max: int,
        actual: int,
        remedies: Sequence[Remedy],
        *,
        field: Sequence[str] = (),
    ) -> None:
        hint = ", ".join(r.value for r in remedies) or "no remedy: the operation is not possible"
        super().__init__(
            f"{name.value} is {max:,}; this request has {actual:,} (what to do: {hint})",
            field=field,
        )
        self.name = name
        self.max = max
        self.actual = actual
        self.remedies = tuple(remedies)
