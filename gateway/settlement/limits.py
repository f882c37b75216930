"""The request limits of SPEC.md (all configurable) and the checks that produce limit violations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from gateway.settlement.errors import Field, Limit, LimitExceeded, Remedy


@dataclass(frozen=True, slots=True)
class Limits:
    documents_per_request: int = 1_000
    items_per_document: int = 1_000
    specified_items_per_document: int = 1_000
    specified_source_items: int = 1_000
    total_items: int = 15_000
    async_total_items: int = 300_000
    async_invoices_per_request: int = 1_000
    item_parts_per_unapply: int = 1_000
    reversal_items: int = 2_000
    refund_items: int = 15_000
    specified_refund_items: int = 1_000
    proration_product_apply: int = 10_000
    proration_product_unapply: int = 15_000
    proration_product_async: int = 10_000
    memos_per_bulk_request: int = 50  # Zuora's bulk credit memo limit

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# What to do instead, per limit (SPEC.md, "Limits").
REMEDIES: dict[Limit, tuple[Remedy, ...]] = {
    Limit.DOCUMENTS_PER_REQUEST: (Remedy.SPLIT_DOCUMENTS,),
    Limit.ITEMS_PER_DOCUMENT: (Remedy.SPECIFY_TARGET_ITEMS,),
    Limit.SPECIFIED_ITEMS_PER_DOCUMENT: (Remedy.SPLIT_DOCUMENTS,),
    Limit.SPECIFIED_SOURCE_ITEMS: (Remedy.SPLIT_DOCUMENTS,),
    Limit.TOTAL_ITEMS: (
        Remedy.SPECIFY_TARGET_ITEMS,
        Remedy.SPECIFY_SOURCE_ITEMS,
        Remedy.SPLIT_DOCUMENTS,
        Remedy.USE_ASYNC,
    ),
    Limit.ASYNC_TOTAL_ITEMS: (Remedy.SPLIT_DOCUMENTS,),
    Limit.ASYNC_INVOICES_PER_REQUEST: (Remedy.SPLIT_DOCUMENTS,),
    Limit.ITEM_PARTS_PER_UNAPPLY: (Remedy.SPECIFY_DOCUMENTS, Remedy.USE_ASYNC),
    Limit.REVERSAL_ITEMS: (),
    Limit.REFUND_ITEMS: (Remedy.SPECIFY_SOURCE_ITEMS,),
    Limit.SPECIFIED_REFUND_ITEMS: (Remedy.SPECIFY_SOURCE_ITEMS,),
    Limit.MEMOS_PER_BULK_REQUEST: (Remedy.SPLIT_DOCUMENTS,),
}


def exceeded(name: Limit, max: int, actual: int, *, field: Sequence[str] = ()) -> list[LimitExceeded]:
    """One violation when ``actual`` is over ``max`` (a count equal to the limit is allowed)."""
    if actual <= max:
        return []
    return [LimitExceeded(name, max, actual, REMEDIES[name], field=field)]


def check_apply_counts(
    *,
    limits: Limits,
    documents: int,
    invoices: int = 0,
    items_per_target: Mapping[Field, int] | None = None,
    specified_items: Mapping[Field, int] | None = None,
    specified_source_items: int = 0,
    total_items: int = 0,
    async_: bool = False,
) -> list[LimitExceeded]:
    """The limits of one apply, from counts alone (nothing loaded). Also used for unapply.

    ``items_per_target``: item count of each target whose items are NOT given, keyed by its field
    prefix, e.g. ("invoices", "3"). ``specified_items``: entries given per target, same keys.
    ``total_items``: memo items + target items involved (TAX included, nothing-open excluded; when
    items are given, only those). Sync requests check DOCUMENTS_PER_REQUEST, ITEMS_PER_DOCUMENT and
    TOTAL_ITEMS; async ones ASYNC_INVOICES_PER_REQUEST and ASYNC_TOTAL_ITEMS instead of
    ITEMS_PER_DOCUMENT and TOTAL_ITEMS (ours); both check what the caller named.
    """
    out = exceeded(Limit.DOCUMENTS_PER_REQUEST, limits.documents_per_request, documents)
    if async_:
        out += exceeded(
            Limit.ASYNC_INVOICES_PER_REQUEST,
            limits.async_invoices_per_request,
            invoices,
            field=("invoices",),
        )
    else:
        for prefix, count in (items_per_target or {}).items():
            out += exceeded(Limit.ITEMS_PER_DOCUMENT, limits.items_per_document, count, field=prefix)
    for prefix, count in (specified_items or {}).items():
        out += exceeded(
            Limit.SPECIFIED_ITEMS_PER_DOCUMENT,
            limits.specified_items_per_document,
            count,
            field=(*prefix, "items"),
        )
    out += exceeded(Limit.SPECIFIED_SOURCE_ITEMS, limits.specified_source_items, specified_source_items)
    if async_:
        out += exceeded(Limit.ASYNC_TOTAL_ITEMS, limits.async_total_items, total_items)
    else:
        out += exceeded(Limit.TOTAL_ITEMS, limits.total_items, total_items)
    return out


def check_unapply_counts(
    *,
    limits: Limits,
    documents: int,
    invoices: int = 0,
    specified_items: Mapping[Field, int] | None = None,
    specified_source_items: int = 0,
    item_parts: int = 0,
    total_items: int = 0,
    async_: bool = False,
) -> list[LimitExceeded]:
    """The limits of one unapply: those of apply (no ITEMS_PER_DOCUMENT: only what is applied is
    touched) plus, for a synchronous unapply, the memo item parts it touches."""
    out = check_apply_counts(
        limits=limits,
        documents=documents,
        invoices=invoices,
        specified_items=specified_items,
        specified_source_items=specified_source_items,
        total_items=total_items,
        async_=async_,
    )
    if not async_:
        out += exceeded(Limit.ITEM_PARTS_PER_UNAPPLY, limits.item_parts_per_unapply, item_parts)
    return out


def check_reversal_counts(*, limits: Limits, items: int) -> list[LimitExceeded]:
    """REVERSAL_ITEMS: the memo's items, TAX and DISCOUNT included. There is no remedy."""
    return exceeded(Limit.REVERSAL_ITEMS, limits.reversal_items, items)


def check_refund_counts(*, limits: Limits, items_refunded: int, items_named: int = 0) -> list[LimitExceeded]:
    """REFUND_ITEMS: memo items a refund touches; SPECIFIED_REFUND_ITEMS: memo items named."""
    return exceeded(Limit.REFUND_ITEMS, limits.refund_items, items_refunded) + exceeded(
        Limit.SPECIFIED_REFUND_ITEMS, limits.specified_refund_items, items_named
    )
