"""Unapply: amounts go back; never more than applied; not before the latest application."""

from dataclasses import replace

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
    parts_of,
    payment,
    request,
    titem,
    unapply,
)

from gateway.settlement.errors import Rejected
from gateway.settlement.model import ApplyRequest


def _applied():
    cm = memo(mitem(1, 6000), mitem(2, 4000))
    inv = invoice(10, titem(101, 5000), titem(102, 5000), titem(103, 500, "TAX", parent=101))
    dm = debit_memo(20, titem(201, 3000))
    done = apply(cm, [inv, dm], request((inv, "70.00"), (dm, "30.00")), rule="FIFO")
    return cm, inv, dm, done


def test_unapply_everything_restores_every_part():
    cm, inv, dm, done = _applied()
    back = unapply(cm, [inv, dm], parts_of(done), ApplyRequest())
    assert sorted(moves(back)) == sorted(moves(done))
    assert back.amount == 10000 and back.rule is None


def test_unapply_fifo_goes_back_item_by_item():
    cm, inv, dm, done = _applied()
    assert moves(done) == [(1, 101, 5000), (1, 103, 500), (1, 102, 500), (2, 102, 1000), (2, 201, 3000)]
    back = unapply(cm, [inv, dm], parts_of(done), request((inv, "55.00")), rule="FIFO")
    assert moves(back) == [(1, 101, 5000), (1, 103, 500)]


def test_unapply_proration_by_what_is_applied():
    cm, inv, dm, done = _applied()
    back = unapply(cm, [inv, dm], parts_of(done), request((inv, "35.00")))
    # FIFO items 101, 103, 102 applied 50.00 / 5.00 / 15.00 → 25.00 / 2.50 / 7.50;
    # item 102 goes back by memo item in proportion 5.00 / 10.00
    assert moves(back) == [(1, 101, 2500), (1, 103, 250), (1, 102, 250), (2, 102, 500)]


def test_unapply_named_items_and_pairs():
    cm, inv, dm, done = _applied()
    req = request((inv, "12.00", [item(102, "10.00", 2), item(102, "2.00")]), rule="FIFO")
    assert moves(unapply(cm, [inv, dm], parts_of(done), req)) == [(2, 102, 1000), (1, 102, 200)]


def test_amount_exceeds_applied():
    cm, inv, dm, done = _applied()
    req = request((inv, "70.01"), (dm, "2.00", [item(201, "1.00", 1), item(201, "1.00")]))
    with pytest.raises(Rejected) as err:
        unapply(cm, [inv, dm], parts_of(done), req)
    assert codes(err.value) == [
        ("AMOUNT_EXCEEDS_APPLIED", ("invoices", "0", "amount")),
        ("AMOUNT_EXCEEDS_APPLIED", ("debitMemos", "0", "items", "0", "amount")),
    ]


def test_unapply_effective_date_not_before_latest_application():
    cm, inv, dm, done = _applied()
    cm = replace(cm, latest_application_date=TODAY)
    with pytest.raises(Rejected) as err:
        unapply(cm, [inv, dm], parts_of(done), request((inv, "1.00"), effective=DAY))
    assert codes(err.value) == [("EFFECTIVE_DATE_TOO_EARLY", ("effectiveDate",))]


def test_unapply_with_nothing_applied():
    with pytest.raises(Rejected) as err:
        unapply(memo(mitem(1, 100)), [], [], ApplyRequest())
    assert codes(err.value) == [("NO_TARGETS", ())]


def test_unapply_payment():
    p = payment(3000)
    inv = invoice(10, titem(101, 2000), titem(102, 2000))
    done = apply(p, [inv], request((inv, "30.00")))
    assert moves(done) == [(None, 101, 1500), (None, 102, 1500)]
    back = unapply(p, [inv], parts_of(done), request((inv, "10.00")))
    assert moves(back) == [(None, 101, 500), (None, 102, 500)]
