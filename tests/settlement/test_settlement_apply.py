"""Apply: the rules of SPEC.md "Apply", one test per rule, amounts to the cent."""

import pytest
from settlement_factories import (
    DAY,
    TODAY,
    apply,
    codes,
    debit_memo,
    invoice,
    item,
    memo,
    mitem,
    moves,
    payment,
    request,
    titem,
)

from gateway.settlement.errors import Rejected


def test_proration_of_100_00_over_three_equal_items():
    cm = memo(mitem(1, 10000))
    inv = invoice(10, titem(101, 5000), titem(102, 5000), titem(103, 5000))
    result = apply(cm, [inv], request((inv, "100.00")))
    assert result.rule == "PRORATION"
    assert moves(result) == [(1, 101, 3334), (1, 102, 3333), (1, 103, 3333)]
    assert result.amount == 10000
    assert result.effective_date == TODAY


def test_proration_splits_what_the_memo_gives_by_unapplied():
    cm = memo(mitem(1, 3000), mitem(2, 1000))
    inv = invoice(10, titem(101, 2000), titem(102, 2000))
    result = apply(cm, [inv], request((inv, "20.00")))
    # memo items give 15.00 / 5.00; target items receive 10.00 / 10.00; laid out in FIFO order
    assert moves(result) == [(1, 101, 1000), (1, 102, 500), (2, 102, 500)]


def test_fifo_settles_items_one_at_a_time_with_tax_after_its_parent():
    cm = memo(mitem(1, 5000), mitem(2, 5000))
    inv = invoice(10, titem(101, 4000), titem(102, 4000), titem(103, 400, "TAX", parent=101))
    result = apply(cm, [inv], request((inv, "60.00"), rule="FIFO"))
    assert result.rule == "FIFO"
    assert moves(result) == [(1, 101, 4000), (1, 103, 400), (1, 102, 600), (2, 102, 1000)]


def test_fifo_consumes_memo_items_across_targets_in_request_order():
    cm = memo(mitem(1, 3000), mitem(2, 3000))
    a, b = invoice(10, titem(101, 2000)), debit_memo(20, titem(201, 2500))
    result = apply(cm, [a, b], request((b, "25.00"), (a, "20.00"), rule="FIFO"))
    assert moves(result) == [(1, 201, 2500), (1, 101, 500), (2, 101, 1500)]
    assert result.by_target() == {20: 2500, 10: 2000}


def test_default_rule_comes_from_settings():
    cm = memo(mitem(1, 1000))
    inv = invoice(10, titem(101, 1000), titem(102, 1000))
    assert moves(apply(cm, [inv], request((inv, "10.00")), rule="FIFO")) == [(1, 101, 1000)]


def test_jpy_has_no_decimals():
    cm = memo(mitem(1, 1000), currency="JPY")
    inv = invoice(10, titem(101, 500), titem(102, 500), titem(103, 500), currency="JPY")
    assert moves(apply(cm, [inv], request((inv, "1000")))) == [(1, 101, 334), (1, 102, 333), (1, 103, 333)]
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "10.5")))
    assert codes(err.value) == [("AMOUNT_PRECISION", ("invoices", "0", "amount"))]


def test_kwd_has_three_decimals():
    cm = memo(mitem(1, 10000), currency="KWD")
    inv = invoice(10, titem(101, 5000), titem(102, 5000), titem(103, 5000), currency="KWD")
    assert moves(apply(cm, [inv], request((inv, "1.000")))) == [(1, 101, 334), (1, 102, 333), (1, 103, 333)]
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "1.0005")))
    assert codes(err.value) == [("AMOUNT_PRECISION", ("invoices", "0", "amount"))]


def test_amount_not_positive():
    cm, inv = memo(mitem(1, 1000)), invoice(10, titem(101, 1000))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "0.00")))
    assert codes(err.value) == [("AMOUNT_NOT_POSITIVE", ("invoices", "0", "amount"))]


def test_payment_applies_target_items_only():
    p = payment(10000)
    inv = invoice(10, titem(101, 5000), titem(102, 5000), titem(103, 5000))
    result = apply(p, [inv], request((inv, "100.00")))
    assert moves(result) == [(None, 101, 3334), (None, 102, 3333), (None, 103, 3333)]


def test_payment_effective_date_not_before_its_latest_application():
    p = payment(10000, latest=TODAY)
    inv = invoice(10, titem(101, 5000))
    with pytest.raises(Rejected) as err:
        apply(p, [inv], request((inv, "1.00"), effective=DAY))
    assert codes(err.value) == [("EFFECTIVE_DATE_TOO_EARLY", ("effectiveDate",))]


def test_payment_refuses_source_item_rule():
    p, inv = payment(1000), invoice(10, titem(101, 1000))
    with pytest.raises(Rejected) as err:
        apply(p, [inv], request((inv, "1.00"), rule="SOURCE_ITEM"))
    assert codes(err.value) == [("SOURCE_ITEM_RULE_VIOLATION", ("applicationRule",))]


def test_effective_date_not_before_memo_or_target_date():
    cm = memo(mitem(1, 1000), doc_date=TODAY)
    inv = invoice(10, titem(101, 1000), doc_date=TODAY.replace(day=20))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "1.00"), effective=DAY))
    assert codes(err.value) == [("EFFECTIVE_DATE_TOO_EARLY", ("effectiveDate",))] * 2


def test_invalid_status_of_memo_and_target():
    cm = memo(mitem(1, 1000), status="DRAFT")
    inv = invoice(10, titem(101, 1000), status="DRAFT")
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "1.00")))
    assert codes(err.value) == [("INVALID_STATUS", ()), ("INVALID_STATUS", ("invoices", "0"))]


def test_account_and_currency_mismatch():
    cm = memo(mitem(1, 1000))
    inv = invoice(10, titem(101, 1000), account=2, currency="EUR")
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "1.00")))
    assert codes(err.value) == [
        ("ACCOUNT_MISMATCH", ("invoices", "0")),
        ("CURRENCY_MISMATCH", ("invoices", "0")),
    ]


def test_duplicate_target_and_no_targets():
    cm, inv = memo(mitem(1, 1000)), invoice(10, titem(101, 1000))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "1.00"), (inv, "1.00")))
    assert codes(err.value) == [("DUPLICATE_TARGET", ("invoices", "1"))]
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request())
    assert codes(err.value) == [("NO_TARGETS", ())]


def test_amount_exceeds_unapplied_and_balance():
    cm = memo(mitem(1, 1000))
    a, b = invoice(10, titem(101, 800)), invoice(11, titem(111, 800))
    with pytest.raises(Rejected) as err:
        apply(cm, [a, b], request((a, "9.00"), (b, "2.00")))
    assert codes(err.value) == [
        ("AMOUNT_EXCEEDS_BALANCE", ("invoices", "0", "amount")),
        ("AMOUNT_EXCEEDS_UNAPPLIED", ()),
    ]


def test_named_items_are_applied_as_given():
    cm = memo(mitem(1, 1000), mitem(2, 100, "TAX", parent=1))
    inv = invoice(10, titem(101, 1000), titem(102, 100, "TAX", parent=101))
    req = request((inv, "5.50", [item(101, "5.00", 1), item(102, "0.50", 2)]))
    result = apply(cm, [inv], req)
    assert moves(result) == [(1, 101, 500), (2, 102, 50)]
    assert result.rule is None


def test_named_target_items_get_memo_items_by_rule_without_kind_matching():
    cm = memo(mitem(1, 300), mitem(2, 300))
    inv = invoice(10, titem(101, 1000), titem(102, 100, "TAX", parent=101))
    req = request((inv, "4.00", [item(102, "1.00"), item(101, "3.00")]), rule="FIFO")
    # receives in FIFO order 101: 3.00, 102: 1.00; memo gives 3.00 / 1.00; CHARGE item 2 → TAX 102
    assert moves(apply(cm, [inv], req)) == [(1, 101, 300), (2, 102, 100)]


def test_amount_exceeds_item_balance():
    cm = memo(mitem(1, 1000), mitem(2, 100))
    inv = invoice(10, titem(101, 1000, balance=200), titem(102, 500))
    req = request((inv, "5.00", [item(101, "1.50"), item(101, "1.00"), item(102, "2.50", 2)]))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], req)
    assert codes(err.value) == [
        ("AMOUNT_EXCEEDS_ITEM_BALANCE", ("invoices", "0", "items", "1", "amount")),
        ("AMOUNT_EXCEEDS_ITEM_BALANCE", ("invoices", "0", "items", "2", "amount")),
    ]


def test_item_amounts_mismatch():
    cm, inv = memo(mitem(1, 1000)), invoice(10, titem(101, 1000))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], request((inv, "5.00", [item(101, "4.99")])))
    assert codes(err.value) == [("ITEM_AMOUNTS_MISMATCH", ("invoices", "0", "items"))]


def test_item_not_in_document():
    cm = memo(mitem(1, 1000))
    inv = invoice(10, titem(101, 1000))
    req = request((inv, "2.00", [item(None, "1.00", raw="X9"), item(101, "1.00", 99)]))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], req)
    assert codes(err.value) == [
        ("ITEM_NOT_IN_DOCUMENT", ("invoices", "0", "items", "0", "targetItemId")),
        ("ITEM_NOT_IN_DOCUMENT", ("invoices", "0", "items", "1", "creditMemoItemId")),
    ]
    assert "X9" in err.value.errors[0].message


def test_item_kind_mismatch():
    cm = memo(mitem(1, 1000), mitem(2, 100, "TAX", parent=1))
    inv = invoice(10, titem(101, 1000), titem(102, 100, "TAX", parent=101))
    req = request((inv, "1.50", [item(101, "0.50", 2), item(102, "1.00", 1)]))
    with pytest.raises(Rejected) as err:
        apply(cm, [inv], req)
    assert codes(err.value) == [
        ("ITEM_KIND_MISMATCH", ("invoices", "0", "items", "0")),
        ("ITEM_KIND_MISMATCH", ("invoices", "0", "items", "1")),
    ]


def test_all_errors_are_reported_together():
    cm = memo(mitem(1, 1000), status="DRAFT")
    early = DAY.replace(month=1)
    a = invoice(10, titem(101, 1000), currency="EUR", doc_date=early)
    b = invoice(11, titem(111, 1000), doc_date=early)
    dm = debit_memo(20, titem(201, 1000), doc_date=early)
    req = request(
        (a, "1.001"),
        (b, "20.00"),
        (b, "1.00"),
        (dm, "3.00", [item(201, "1.00"), item(None, "1.00", raw="nope")]),
        effective=DAY.replace(month=2),
    )
    with pytest.raises(Rejected) as err:
        apply(cm, [a, b, dm], req)
    assert codes(err.value) == [
        ("INVALID_STATUS", ()),
        ("EFFECTIVE_DATE_TOO_EARLY", ("effectiveDate",)),
        ("CURRENCY_MISMATCH", ("invoices", "0")),
        ("AMOUNT_PRECISION", ("invoices", "0", "amount")),
        ("DUPLICATE_TARGET", ("invoices", "2")),
        ("ITEM_NOT_IN_DOCUMENT", ("debitMemos", "0", "items", "1", "targetItemId")),
        ("AMOUNT_EXCEEDS_BALANCE", ("invoices", "1", "amount")),
        ("AMOUNT_EXCEEDS_UNAPPLIED", ()),
        ("ITEM_AMOUNTS_MISMATCH", ("debitMemos", "0", "items")),
    ]


def test_proration_guard_falls_back_to_fifo_with_a_warning():
    cm = memo(mitem(1, 1000), mitem(2, 1000), mitem(3, 1000))
    inv = invoice(10, titem(101, 1000), titem(102, 1000))
    result = apply(cm, [inv], request((inv, "15.00")), guard=5)
    assert result.rule == "FIFO"
    assert moves(result) == [(1, 101, 1000), (2, 102, 500)]
    (warning,) = result.warnings
    assert warning.code == "PRORATION_FALLBACK_TO_FIFO"
    assert "2 target items" in warning.message and "3 memo items" in warning.message
    assert apply(cm, [inv], request((inv, "15.00")), guard=6).rule == "PRORATION"
