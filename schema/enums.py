"""Enums of the contract. Values equal names, so rows' strings serialize as they are."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

import strawberry

from gateway.settlement.errors import Code, Limit, Remedy


@strawberry.enum
class DocumentStatus(Enum):
    DRAFT = "DRAFT"
    POSTED = "POSTED"
    CANCELED = "CANCELED"


@strawberry.enum
class ItemKind(Enum):
    CHARGE = "CHARGE"
    DISCOUNT = "DISCOUNT"
    TAX = "TAX"


@strawberry.enum
class ApplicationRule(Enum):
    FIFO = "FIFO"
    PRORATION = "PRORATION"
    SOURCE_ITEM = "SOURCE_ITEM"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.enum
class CreditMemoSource(Enum):
    API = "API"
    FROM_INVOICE = "FROM_INVOICE"
    WRITE_OFF_OF_INVOICE = "WRITE_OFF_OF_INVOICE"


@strawberry.enum
class ApplicationKind(Enum):
    APPLY = "APPLY"
    UNAPPLY = "UNAPPLY"
    REVERSE = "REVERSE"
    WRITE_OFF = "WRITE_OFF"
    REFUND = "REFUND"


@strawberry.enum
class JobOperation(Enum):
    APPLY_CREDIT_MEMO = "APPLY_CREDIT_MEMO"
    UNAPPLY_CREDIT_MEMO = "UNAPPLY_CREDIT_MEMO"
    GENERATE_CREDIT_MEMO_PDFS = "GENERATE_CREDIT_MEMO_PDFS"
    EMAIL_CREDIT_MEMO = "EMAIL_CREDIT_MEMO"


@strawberry.enum
class TransferredToAccounting(Enum):
    NO = "NO"
    PROCESSING = "PROCESSING"
    YES = "YES"
    ERROR = "ERROR"
    IGNORE = "IGNORE"


@strawberry.enum
class CreditMemoFileKind(Enum):
    ATTACHMENT = "ATTACHMENT"
    PDF = "PDF"


@strawberry.enum
class PdfStatus(Enum):
    NONE = "NONE"
    PENDING = "PENDING"
    GENERATED = "GENERATED"
    FAILED = "FAILED"


@strawberry.enum
class EmailStatus(Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


@strawberry.enum
class JobStatus(Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@strawberry.enum
class CreditMemoSortField(Enum):
    NUMBER = "NUMBER"
    MEMO_DATE = "MEMO_DATE"
    AMOUNT = "AMOUNT"
    UNAPPLIED_AMOUNT = "UNAPPLIED_AMOUNT"
    CREATED_AT = "CREATED_AT"


@strawberry.enum
class ErrorCategory(Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INVALID_VALUE = "INVALID_VALUE"
    NOT_FOUND = "NOT_FOUND"
    RULE_RESTRICTION = "RULE_RESTRICTION"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    CONFLICT = "CONFLICT"


@strawberry.enum
class WarningCode(Enum):
    PRORATION_FALLBACK_TO_FIFO = "PRORATION_FALLBACK_TO_FIFO"


@strawberry.enum
class SettlementEventKind(Enum):
    APPLIED = "APPLIED"
    UNAPPLIED = "UNAPPLIED"
    REVERSED = "REVERSED"
    WRITTEN_OFF = "WRITTEN_OFF"
    REFUNDED = "REFUNDED"
    POSTED = "POSTED"
    UNPOSTED = "UNPOSTED"
    CANCELED = "CANCELED"


# The rules' enums are the single source of these values. strawberry.enum registers the GraphQL name
# on the class and returns the class itself, which is what the type checker is told.
if TYPE_CHECKING:
    ErrorCode = Code
    LimitName = Limit
    RemedyEnum = Remedy
else:
    ErrorCode = strawberry.enum(Code, name="ErrorCode")
    LimitName = strawberry.enum(Limit, name="LimitName")
    RemedyEnum = strawberry.enum(Remedy, name="Remedy")
