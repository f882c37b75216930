"""The request limits of SPEC.md (all configurable) and the checks that produce limit violations."""

from __future__ import annotations

from dataclasses import dataclass, fields


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

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
