"""SOURCE_ITEM: each memo item to the invoice item it was created from, TAX to the matching TAX."""

import pytest
from settlement_factories import apply, codes, debit_memo, invoice, item, memo, mitem, moves, request, titem

from gateway.settlement.errors import Rejected


def _invoice():
    return invoice(
        10,
        titem(101, 1000),
        titem(102, 100, "TAX", parent=101),
        titem(103, 2000),
        titem(104, 200, "TAX", parent=103),
    )


def _memo_from_invoice():
    # memo item 3 is a TAX item without its own source: it maps through its parent (item 2 → 103)
    return memo(
        mitem(1, 500, source=101),
        mitem(2, 1000, source=103),
        mitem(3, 100, "TAX", parent=2),
        mitem(4, 50, "TAX", parent=1, source=102),
    )


def test_source_item_applies_each_memo_item_to_its_source_item():
    result = apply(_memo_from_invoice(), [_invoice()], request((_invoice(), "16.50"), rule="SOURCE_ITEM"))
    assert result.rule == "SOURCE_ITEM"
    assert moves(result) == [(1, 101, 500), (4, 102, 50), (2, 103, 1000), (3, 104, 100)]


def test_source_item_partial_amount_goes_in_memo_fifo_order():
    result = apply(_memo_from_invoice(), [_invoice()], request((_invoice(), "5.20"), rule="SOURCE_ITEM"))
    assert moves(result) == [(1, 101, 500), (4, 102, 20)]


def test_source_item_with_named_target_items():
    req = request((_invoice(), "3.00", [item(103, "3.00")]), rule="SOURCE_ITEM")
    assert moves(apply(_memo_from_invoice(), [_invoice()], req)) == [(2, 103, 300)]


def test_source_item_violation_when_memo_item_has_no_source():
    cm = memo(mitem(1, 500, source=101), mitem(2, 500))
    with pytest.raises(Rejected) as err:
        apply(cm, [_invoice()], request((_invoice(), "1.00"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ("invoices", "0"))]


def test_source_item_violation_when_not_exactly_one_invoice():
    cm = _memo_from_invoice()
    dm = debit_memo(20, titem(201, 1000))
    with pytest.raises(Rejected) as err:
        apply(cm, [_invoice(), dm], request((_invoice(), "1.00"), (dm, "1.00"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ())]
    with pytest.raises(Rejected) as err:
        apply(cm, [dm], request((dm, "1.00"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ())]


def test_source_item_violation_when_named_pair_is_not_the_source_pair():
    req = request((_invoice(), "1.00", [item(103, "1.00", 1)]), rule="SOURCE_ITEM")
    with pytest.raises(Rejected) as err:
        apply(_memo_from_invoice(), [_invoice()], req)
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ("invoices", "0", "items", "0"))]


def test_source_item_violation_when_source_items_cannot_cover_the_amount():
    inv = _invoice()
    cm = memo(mitem(1, 500, source=101), mitem(2, 3000, source=103, unapplied=0))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "5.01"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("AMOUNT_EXCEEDS_UNAPPLIED", ())]
    cm = memo(mitem(1, 1500, source=101))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "10.01"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ("invoices", "0", "amount"))]


def test_source_item_violation_when_tax_meets_non_tax():
    cm = memo(mitem(1, 100, "TAX", source=101))
    with pytest.raises(Rejected) as err:
        apply(cm, [_invoice()], request((_invoice(), "1.00"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ("invoices", "0"))]
