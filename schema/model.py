"""What each node type is made of, declared once: a scalar per field (how its value comes from the
row, as a Python value for strawberry and as a JSON value for the planned read path) and a relation
per object field (the request loader that batches it, the parent row's key, the type it leads to).

``schema.types`` builds its objects and answers its relation fields from this description;
``schema.planner`` executes whole queries from it. A schema field that is in neither ``MODEL`` nor
``FALLBACK`` fails ``tests/schema/test_planner.py``; a field that is only in ``FALLBACK`` makes a
query that selects it run through the standard executor. To declare a new field fallback, add one
line ``"Type.fieldName",`` to ``FALLBACK``.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, overload

from sqlalchemy import Table

from gateway import store as s
from gateway.ids import encode
from gateway.reads import Cond
from gateway.settlement.money import EXPONENTS, format_minor, from_minor
from resolvers import filters

Getter = Callable[[Any], Any]
Shape = tuple[tuple[Cond, ...], tuple[str, ...], bool]  # where, order, descending
Options = Callable[[Any, dict[str, Any]], Awaitable[Shape]]

# Fields the planner does not execute: an operation that selects one runs through graphql-core.
FALLBACK: frozenset[str] = frozenset(
    {
        "Query.job",
        "Query.jobs",
        "Query.limits",
        "Query.previewCreditMemoApplication",
        "Query.settlementEvents",
        "Query.creditMemoPdfStatus",
        "Job.*",  # progress is live in the worker; errors are JSON to decode
        "SettlementEvent.*",
        "Application.createdBy",  # depends on the caller (resolvers.permissions.creator)
        # a credit memo's files, PDF and emails (schema.memo_files)
        "CreditMemo.files",
        "CreditMemo.pdf",
        "CreditMemo.emails",
        "CreditMemoFile.*",
        "CreditMemoFileConnection.*",
        "CreditMemoFileEdge.*",
        "CreditMemoPdf.*",
        "CreditMemoEmail.*",
    }
)


@dataclass(frozen=True, slots=True)
class Scalar:
    py: Getter  # the value strawberry serializes
    wire: Getter  # the same value already serialized (what strawberry would answer)


@dataclass(frozen=True, slots=True)
class One:
    """A node by id: ``loader`` (``Loaders`` attribute) loads ``row.<key>``."""

    loader: str
    key: str
    to: str | Callable[[Any], str]  # a type name, or for a union the row's type name
    many = False
    paged = False


@dataclass(frozen=True, slots=True)
class Many:
    """A short list: ``loader`` loads the rows whose parent is ``row.id``; ``keep`` filters them."""

    loader: str
    to: str
    keep: Callable[[Any], bool] | None = None
    many = True
    paged = False


@dataclass(frozen=True, slots=True)
class Page:
    """A connection of the rows whose parent is ``row.id``: ``pages``/``counts`` loaders; ``where``
    and ``order`` fixed, or computed from the field's arguments by ``options`` (filters, sorts)."""

    pages: str
    counts: str
    to: str | Callable[[Any], str]
    where: tuple[Cond, ...] = ()
    order: tuple[str, ...] = ("id",)
    options: Options | None = None
    many = True
    paged = True

    async def resolve(self, info: Any, args: dict[str, Any]) -> Shape:
        if self.options is None:
            return self.where, self.order, False
        return await self.options(info, args)


Relation = One | Many | Page


@dataclass(frozen=True, slots=True)
class View:
    scalars: dict[str, Scalar]  # by Python field name
    relations: dict[str, Relation] = field(default_factory=dict)


def text(column: str) -> Scalar:
    get = attrgetter(column)
    return Scalar(get, get)


def wire_amount(minor: int, currency: str) -> str:
    """``format_minor`` without building a Decimal (the planner formats one per amount it answers)."""
    exp = EXPONENTS.get(currency)
    if exp is None:
        return format_minor(minor, currency)
    if exp == 0:
        return str(minor)
    whole, frac = divmod(-minor if minor < 0 else minor, 10**exp)
    return f"{'-' if minor < 0 else ''}{whole}.{frac:0{exp}d}"


def money(column: str | Getter) -> Scalar:
    get = attrgetter(column) if isinstance(column, str) else column
    return Scalar(lambda r: from_minor(get(r), r.currency), lambda r: wire_amount(get(r), r.currency))


def day(column: str) -> Scalar:
    get = attrgetter(column)
    return Scalar(get, lambda r: None if (v := get(r)) is None else v.isoformat())


@overload
def utc(value: datetime.datetime) -> datetime.datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime.datetime | None) -> datetime.datetime | None: ...
def utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


def stamp(column: str) -> Scalar:
    get = attrgetter(column)
    return Scalar(lambda r: utc(get(r)), lambda r: None if (v := utc(get(r))) is None else v.isoformat())


def gid(type_name: str) -> Scalar:
    def get(r: Any) -> str:
        return encode(type_name, r.id)

    return Scalar(get, get)


def target_type(r: Any) -> str:
    return "Invoice" if r.kind == "INVOICE" else "DebitMemo"


def target_item_type(r: Any) -> str:
    return "InvoiceItem" if r.doc_kind == "INVOICE" else "DebitMemoItem"


def part_type(r: Any) -> str:
    return "CreditMemoPart" if r.credit_memo_id is not None else "PaymentPart"


async def _credit_memo_options(info: Any, args: dict[str, Any]) -> Shape:
    where = await filters.credit_memo_where(info, args.get("filter"))
    order, descending = filters.credit_memo_order(args.get("sort"))
    return where, order, descending


def _documents(kind: str) -> Options:
    async def options(info: Any, args: dict[str, Any]) -> Shape:
        return (("kind", "=", kind), *filters.document_where(args.get("filter"), "doc_date")), ("id",), False

    return options


POSITIVE: tuple[Cond, ...] = (("amount", ">", 0),)
ITEM_ORDER = ("seq",)


def _document(type_name: str, date_field: str) -> dict[str, Scalar]:
    return {
        "id": gid(type_name),
        "number": text("number"),
        "status": text("status"),
        "currency": text("currency"),
        date_field: day("doc_date"),
        "due_date": day("due_date"),
        "amount": money("amount"),
        "balance": money("balance"),
    }


def _receivable_item(type_name: str) -> dict[str, Scalar]:
    return {
        "id": gid(type_name),
        "kind": text("kind"),
        "sku": text("sku"),
        "description": text("description"),
        "amount": money("amount"),
        "balance": money("balance"),
    }


def _receivable_item_relations(parent: str, type_name: str, item: str) -> dict[str, Relation]:
    return {
        parent: One("receivables_by_id", "receivable_id", type_name),
        "parent_item": One("receivable_items_by_id", "parent_item_id", item),
        "taxation_items": Many("taxation_items_by_receivable_item", item),
    }


def _part(type_name: str) -> dict[str, Scalar]:
    return {"id": gid(type_name), "amount": money("amount")}


MODEL: dict[str, View] = {
    "Account": View(
        {
            "id": gid("Account"),
            "number": text("number"),
            "name": text("name"),
            "currency": text("currency"),
            "bill_to_email": text("bill_to_email"),
        },
        {
            "credit_memos": Page(
                "credit_memo_pages_by_account",
                "credit_memo_counts_by_account",
                "CreditMemo",
                options=_credit_memo_options,
            ),
            "debit_memos": Page(
                "receivable_pages_by_account",
                "receivable_counts_by_account",
                "DebitMemo",
                options=_documents("DEBIT_MEMO"),
            ),
            "invoices": Page(
                "receivable_pages_by_account",
                "receivable_counts_by_account",
                "Invoice",
                options=_documents("INVOICE"),
            ),
            "payments": Page("payment_pages_by_account", "payment_counts_by_account", "Payment"),
        },
    ),
    "Invoice": View(
        {
            **_document("Invoice", "invoice_date"),
            "credit_memo_amount": money("credit_memo_amount"),
            "payment_amount": money("payment_amount"),
        },
        {
            "account": One("accounts_by_id", "account_id", "Account"),
            "items": Page(
                "receivable_item_pages_by_receivable",
                "receivable_item_counts_by_receivable",
                "InvoiceItem",
                order=ITEM_ORDER,
            ),
            "application_parts": Page(
                "part_pages_by_target", "part_counts_by_target", part_type, where=POSITIVE
            ),
            "credit_memos": Page(
                "credit_memo_pages_by_referred_invoice",
                "credit_memo_counts_by_referred_invoice",
                "CreditMemo",
            ),
        },
    ),
    "InvoiceItem": View(
        _receivable_item("InvoiceItem"), _receivable_item_relations("invoice", "Invoice", "InvoiceItem")
    ),
    "DebitMemo": View(
        {
            **_document("DebitMemo", "memo_date"),
            "applied_amount": money(lambda r: r.credit_memo_amount + r.payment_amount),
            "reason_code": text("reason_code"),
            "comment": text("comment"),
        },
        {
            "account": One("accounts_by_id", "account_id", "Account"),
            "referred_credit_memo": One("credit_memos_by_id", "referred_credit_memo_id", "CreditMemo"),
            "items": Page(
                "receivable_item_pages_by_receivable",
                "receivable_item_counts_by_receivable",
                "DebitMemoItem",
                order=ITEM_ORDER,
            ),
            "application_parts": Page(
                "part_pages_by_target", "part_counts_by_target", part_type, where=POSITIVE
            ),
        },
    ),
    "DebitMemoItem": View(
        _receivable_item("DebitMemoItem"),
        _receivable_item_relations("debit_memo", "DebitMemo", "DebitMemoItem"),
    ),
    "CreditMemo": View(
        {
            "id": gid("CreditMemo"),
            "number": text("number"),
            "status": text("status"),
            "currency": text("currency"),
            "memo_date": day("memo_date"),
            "source": text("source"),
            "amount": money("amount"),
            "tax_amount": money("tax_amount"),
            "applied_amount": money("applied_amount"),
            "unapplied_amount": money("unapplied_amount"),
            "refund_amount": money("refund_amount"),
            "reversed": text("reversed"),
            "reason_code": text("reason_code"),
            "comment": text("comment"),
            "transferred_to_accounting": text("transferred_to_accounting"),
            "exclude_from_auto_apply_rules": text("exclude_from_auto_apply_rules"),
            "created_at": stamp("created_at"),
            "posted_at": stamp("posted_at"),
        },
        {
            "account": One("accounts_by_id", "account_id", "Account"),
            "referred_invoice": One("receivables_by_id", "referred_invoice_id", "Invoice"),
            "items": Page(
                "credit_memo_item_pages_by_memo",
                "credit_memo_item_counts_by_memo",
                "CreditMemoItem",
                order=ITEM_ORDER,
            ),
            "parts": Page(
                "part_pages_by_credit_memo", "part_counts_by_credit_memo", "CreditMemoPart", where=POSITIVE
            ),
            "applications": Page(
                "application_pages_by_credit_memo", "application_counts_by_credit_memo", "Application"
            ),
        },
    ),
    "CreditMemoItem": View(
        {
            "id": gid("CreditMemoItem"),
            "kind": text("kind"),
            "sku": text("sku"),
            "description": text("description"),
            "amount": money("amount"),
            "applied_amount": money("applied_amount"),
            "unapplied_amount": money("unapplied_amount"),
            "refund_amount": money("refund_amount"),
        },
        {
            "credit_memo": One("credit_memos_by_id", "credit_memo_id", "CreditMemo"),
            "parent_item": One("credit_memo_items_by_id", "parent_item_id", "CreditMemoItem"),
            "taxation_items": Many("taxation_items_by_credit_memo_item", "CreditMemoItem"),
            "source_item": One("receivable_items_by_id", "source_item_id", "InvoiceItem"),
            "item_parts": Many("item_parts_by_credit_memo_item", "CreditMemoItemPart"),
        },
    ),
    "CreditMemoPart": View(
        _part("CreditMemoPart"),
        {
            "credit_memo": One("credit_memos_by_id", "credit_memo_id", "CreditMemo"),
            "target": One("receivables_by_id", "target_id", target_type),
            "item_parts": Many("item_parts_by_part", "CreditMemoItemPart"),
        },
    ),
    "CreditMemoItemPart": View(
        _part("CreditMemoItemPart"),
        {
            "part": One("parts_by_id", "part_id", "CreditMemoPart"),
            "credit_memo_item": One("credit_memo_items_by_id", "credit_memo_item_id", "CreditMemoItem"),
            "target_item": One("receivable_items_by_id", "target_item_id", target_item_type),
        },
    ),
    "Payment": View(
        {
            "id": gid("Payment"),
            "number": text("number"),
            "currency": text("currency"),
            "effective_date": day("effective_date"),
            "amount": money("amount"),
            "applied_amount": money("applied_amount"),
            "unapplied_amount": money("unapplied_amount"),
        },
        {
            "account": One("accounts_by_id", "account_id", "Account"),
            "parts": Page("part_pages_by_payment", "part_counts_by_payment", "PaymentPart", where=POSITIVE),
            "applications": Page(
                "application_pages_by_payment", "application_counts_by_payment", "Application"
            ),
        },
    ),
    "PaymentPart": View(
        _part("PaymentPart"),
        {
            "payment": One("payments_by_id", "payment_id", "Payment"),
            "target": One("receivables_by_id", "target_id", target_type),
            "item_parts": Many("item_parts_by_part", "PaymentItemPart"),
        },
    ),
    "PaymentItemPart": View(
        _part("PaymentItemPart"),
        {
            "part": One("parts_by_id", "part_id", "PaymentPart"),
            "target_item": One("receivable_items_by_id", "target_item_id", target_item_type),
        },
    ),
    "Application": View(
        {
            "id": gid("Application"),
            "kind": text("kind"),
            "effective_date": day("effective_date"),
            "amount": money("amount"),
            "rule": text("rule"),
            "created_at": stamp("created_at"),
        },
        {
            "credit_memo": One("credit_memos_by_id", "credit_memo_id", "CreditMemo"),
            "payment": One("payments_by_id", "payment_id", "Payment"),
            "debit_memo": One("receivables_by_id", "debit_memo_id", "DebitMemo"),
            "lines": Many("lines_by_application", "ApplicationLine", keep=lambda r: r.target_id is not None),
        },
    ),
    "ApplicationLine": View(
        {"amount": money("amount")},
        {
            "source_item": One("credit_memo_items_by_id", "credit_memo_item_id", "CreditMemoItem"),
            "target": One("receivables_by_id", "target_id", target_type),
            "target_item": One("receivable_items_by_id", "target_item_id", target_item_type),
        },
    ),
}


@dataclass(frozen=True, slots=True)
class Root:
    """A top-level connection of ``Query``: every row of ``table`` in the caller's scope."""

    table: Table
    to: str
    options: Options | None = None

    async def resolve(self, info: Any, args: dict[str, Any]) -> Shape:
        return ((), ("id",), False) if self.options is None else await self.options(info, args)


ROOTS: dict[str, Root] = {
    "accounts": Root(s.account_t, "Account"),
    "credit_memos": Root(s.credit_memo_t, "CreditMemo", _credit_memo_options),
    "debit_memos": Root(s.receivable_t, "DebitMemo", _documents("DEBIT_MEMO")),
    "invoices": Root(s.receivable_t, "Invoice", _documents("INVOICE")),
    "payments": Root(s.payment_t, "Payment"),
}
# Query fields that find one node by id or number (``resolvers.lookup.find``).
LOOKUPS: dict[str, str] = {
    "account": "Account",
    "credit_memo": "CreditMemo",
    "debit_memo": "DebitMemo",
    "invoice": "Invoice",
    "payment": "Payment",
}


def type_of(relation: Relation, row: Any) -> str:
    to = relation.to
    return to if isinstance(to, str) else to(row)
