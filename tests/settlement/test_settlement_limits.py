"""Each limit at its max (allowed) and at max + 1 (LIMIT_EXCEEDED with its remedies), from counts."""

from dataclasses import replace

import pytest
from settlement_factories import apply, debit_memo, invoice, item, memo, mitem, request, titem, unapply

from gateway.settlement.errors import LimitExceeded, Rejected
from gateway.settlement.limits import (
    Limits,
    check_apply_counts,
    check_refund_counts,
    check_reversal_counts,
    check_unapply_counts,
)
from gateway.settlement.model import ApplyRequest, ExistingItemPart

SMALL = Limits(
    documents_per_request=2,
    items_per_document=3,
    specified_items_per_document=2,
    specified_source_items=2,
    total_items=5,
    async_total_items=7,
    async_invoices_per_request=2,
    item_parts_per_unapply=2,
    reversal_items=2,
    refund_items=2,
    specified_refund_items=1,
)


def _one(errors: list[LimitExceeded]) -> tuple[str, int, int, tuple[str, ...], tuple[str, ...]]:
    (e,) = errors
    return (e.name, e.max, e.actual, e.remedies, e.field)


def test_documents_per_request():
    assert check_apply_counts(limits=SMALL, documents=2) == []
    assert _one(check_apply_counts(limits=SMALL, documents=3)) == (
        "DOCUMENTS_PER_REQUEST",
        2,
        3,
        ("SPLIT_DOCUMENTS",),
        (),
    )


def test_items_per_document_only_when_items_are_not_given():
    f = ("invoices", "4")
    assert check_apply_counts(limits=SMALL, documents=1, items_per_target={f: 3}) == []
    assert _one(check_apply_counts(limits=SMALL, documents=1, items_per_target={f: 4})) == (
        "ITEMS_PER_DOCUMENT",
        3,
        4,
        ("SPECIFY_TARGET_ITEMS",),
        f,
    )


def test_specified_items_per_document():
    f = ("debitMemos", "0")
    assert check_apply_counts(limits=SMALL, documents=1, specified_items={f: 2}) == []
    assert _one(check_apply_counts(limits=SMALL, documents=1, specified_items={f: 3})) == (
        "SPECIFIED_ITEMS_PER_DOCUMENT",
        2,
        3,
        ("SPLIT_DOCUMENTS",),
        (*f, "items"),
    )


def test_specified_source_items():
    assert check_apply_counts(limits=SMALL, documents=1, specified_source_items=2) == []
    assert _one(check_apply_counts(limits=SMALL, documents=1, specified_source_items=3)) == (
        "SPECIFIED_SOURCE_ITEMS",
        2,
        3,
        ("SPLIT_DOCUMENTS",),
        (),
    )


def test_total_items():
    assert check_apply_counts(limits=SMALL, documents=1, total_items=5) == []
    assert _one(check_apply_counts(limits=SMALL, documents=1, total_items=6)) == (
        "TOTAL_ITEMS",
        5,
        6,
        ("SPECIFY_TARGET_ITEMS", "SPECIFY_SOURCE_ITEMS", "SPLIT_DOCUMENTS", "USE_ASYNC"),
        (),
    )


def test_total_items_at_the_real_default_of_15000():
    assert check_apply_counts(limits=Limits(), documents=1000, total_items=15_000) == []
    limit = _one(check_apply_counts(limits=Limits(), documents=1000, total_items=15_001))
    assert limit[:3] == ("TOTAL_ITEMS", 15_000, 15_001)


def test_async_total_items_and_async_invoices_per_request():
    kw = {"limits": SMALL, "documents": 2, "async_": True}
    assert check_apply_counts(**kw, invoices=2, total_items=7, items_per_target={("x",): 9}) == []
    assert _one(check_apply_counts(**kw, total_items=8)) == (
        "ASYNC_TOTAL_ITEMS",
        7,
        8,
        ("SPLIT_DOCUMENTS",),
        (),
    )
    assert _one(check_apply_counts(**kw, invoices=3)) == (
        "ASYNC_INVOICES_PER_REQUEST",
        2,
        3,
        ("SPLIT_DOCUMENTS",),
        ("invoices",),
    )


def test_item_parts_per_unapply():
    assert check_unapply_counts(limits=SMALL, documents=1, item_parts=2) == []
    assert _one(check_unapply_counts(limits=SMALL, documents=1, item_parts=3)) == (
        "ITEM_PARTS_PER_UNAPPLY",
        2,
        3,
        ("SPECIFY_DOCUMENTS", "USE_ASYNC"),
        (),
    )
    assert check_unapply_counts(limits=SMALL, documents=1, item_parts=3, async_=True) == []


def test_reversal_and_refund_items():
    assert check_reversal_counts(limits=SMALL, items=2) == []
    assert _one(check_reversal_counts(limits=SMALL, items=3)) == ("REVERSAL_ITEMS", 2, 3, (), ())
    assert check_refund_counts(limits=SMALL, items_refunded=2, items_named=1) == []
    assert _one(check_refund_counts(limits=SMALL, items_refunded=3)) == (
        "REFUND_ITEMS",
        2,
        3,
        ("SPECIFY_SOURCE_ITEMS",),
        (),
    )
    assert _one(check_refund_counts(limits=SMALL, items_refunded=1, items_named=2)) == (
        "SPECIFIED_REFUND_ITEMS",
        1,
        2,
        ("SPECIFY_SOURCE_ITEMS",),
        (),
    )


def test_apply_counts_open_items_only_and_named_items_alone():
    # 2 open memo items + 3 open target items = 5; the zero-balance item does not count
    cm = memo(mitem(1, 100), mitem(2, 100), mitem(3, 100, unapplied=0))
    inv = invoice(10, titem(101, 100), titem(102, 100), titem(103, 100, balance=0))
    dm = debit_memo(20, titem(201, 100))
    apply(cm, [inv, dm], request((inv, "1.00"), (dm, "1.00")), limits=SMALL)
    with pytest.raises(Rejected) as err:
        apply(cm, [inv, dm], request((inv, "1.00"), (dm, "1.00")), limits=replace(SMALL, total_items=4))
    assert [(e.name, e.actual) for e in err.value.errors] == [("TOTAL_ITEMS", 5)]
    # items given: only the named ones count (1 memo item + 1 target item)
    named = request((inv, "1.00", [item(101, "1.00", 1)]))
    assert apply(cm, [inv], named, limits=Limits(total_items=2)).amount == 100


def test_apply_reports_limits_with_other_errors():
    cm = memo(mitem(1, 100))
    inv = invoice(10, *(titem(100 + i, 10) for i in range(4)))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "9.00")), limits=SMALL)
    assert [(e.code, e.field) for e in err.value.errors] == [
        ("AMOUNT_EXCEEDS_BALANCE", ("invoices", "0", "amount")),
        ("AMOUNT_EXCEEDS_UNAPPLIED", ()),
        ("LIMIT_EXCEEDED", ("invoices", "0")),
    ]


def test_unapply_counts_item_parts_touched():
    cm = memo(mitem(1, 300))
    inv = invoice(10, titem(101, 100), titem(102, 100), titem(103, 100))
    parts = [ExistingItemPart(1, 10, 100 + i, 100) for i in (1, 2, 3)]
    with pytest.raises(Rejected) as err:
        unapply(cm, [inv], parts, ApplyRequest(), limits=Limits(item_parts_per_unapply=2))
    assert [(e.name, e.max, e.actual) for e in err.value.errors] == [("ITEM_PARTS_PER_UNAPPLY", 2, 3)]
    assert unapply(cm, [inv], parts, ApplyRequest(), limits=Limits(item_parts_per_unapply=3)).amount == 300
