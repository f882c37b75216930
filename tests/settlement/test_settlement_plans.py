"""Reverse, write-off and refund plans."""

from decimal import Decimal

import pytest
from settlement_factories import DAY, TODAY, codes, memo, mitem

from gateway.settlement import engine
from gateway.settlement.errors import Rejected
from gateway.settlement.limits import Limits
from gateway.settlement.model import PlannedItem, PlannedMovement


def _memo(**kw):
    return memo(
        mitem(1, 1000),
        mitem(2, 100, "TAX", parent=1),
        mitem(3, 200, "DISCOUNT", parent=1),
        mitem(4, 500),
        **kw,
    )


def test_reverse_mirrors_items_and_applies_item_by_item():
    plan = engine.plan_reverse(_memo(), limits=Limits(), today=TODAY, memo_date=None, apply_date=None)
    assert (plan.memo_date, plan.apply_date, plan.amount) == (TODAY, TODAY, 1800)
    assert plan.items == (
        PlannedItem("CHARGE", None, 1000, 1),
        PlannedItem("TAX", 0, 100, 2),
        PlannedItem("DISCOUNT", 0, 200, 3),
        PlannedItem("CHARGE", None, 500, 4),
    )
    assert plan.movements == tuple(PlannedMovement(i + 1, i, a) for i, a in enumerate([1000, 100, 200, 500]))


def test_reverse_checks_status_applied_reversed_and_dates():
    cm = memo(mitem(1, 1000, unapplied=400), status="DRAFT", reversed=True)
    with pytest.raises(Rejected) as err:
        engine.plan_reverse(
            cm, limits=Limits(), today=TODAY, memo_date=DAY.replace(month=2), apply_date=DAY.replace(month=1)
        )
    assert codes(err.value) == [
        ("INVALID_STATUS", ()),
        ("APPLIED_AMOUNT_NOT_ZERO", ()),
        ("ALREADY_REVERSED", ()),
        ("EFFECTIVE_DATE_TOO_EARLY", ("memoDate",)),
        ("EFFECTIVE_DATE_TOO_EARLY", ("applyEffectiveDate",)),
    ]


def test_reverse_refused_after_a_refund():
    cm = memo(mitem(1, 1000, unapplied=600), refund=400)
    with pytest.raises(Rejected) as err:
        engine.plan_reverse(cm, limits=Limits(), today=TODAY, memo_date=None, apply_date=None)
    assert codes(err.value) == [("APPLIED_AMOUNT_NOT_ZERO", ())]


def test_reversal_items_limit_at_max_and_above():
    limits = Limits(reversal_items=4)
    assert (
        engine.plan_reverse(_memo(), limits=limits, today=TODAY, memo_date=None, apply_date=None).amount
        == 1800
    )
    with pytest.raises(Rejected) as err:
        engine.plan_reverse(
            _memo(), limits=Limits(reversal_items=3), today=TODAY, memo_date=None, apply_date=None
        )
    (limit,) = err.value.errors
    assert (limit.code, limit.name, limit.max, limit.actual, limit.remedies) == (
        "LIMIT_EXCEEDED",
        "REVERSAL_ITEMS",
        3,
        4,
        (),
    )


def test_write_off_needs_fully_unapplied():
    plan = engine.plan_write_off(_memo(), today=TODAY, memo_date=DAY, reason_code=None)
    assert (plan.reason_code, plan.memo_date, plan.apply_date, plan.amount) == ("Write-off", DAY, DAY, 1800)
    assert len(plan.items) == 4
    with pytest.raises(Rejected) as err:
        engine.plan_write_off(
            memo(mitem(1, 1000, unapplied=999)), today=TODAY, memo_date=None, reason_code="Bad debt"
        )
    assert codes(err.value) == [("NOT_FULLY_UNAPPLIED", ())]


def test_refund_goes_fifo_over_memo_items():
    cm = memo(mitem(1, 1000, unapplied=300), mitem(2, 100, "TAX", parent=1), mitem(3, 500))
    result = engine.refund(cm, Decimal("6.50"), limits=Limits(), today=TODAY, refund_date=None)
    assert (result.total, result.items, result.refund_date) == (650, ((1, 300), (2, 100), (3, 250)), TODAY)


def test_refund_checks_amount_and_date():
    cm = memo(mitem(1, 1000, unapplied=300))
    with pytest.raises(Rejected) as err:
        engine.refund(cm, Decimal("3.01"), limits=Limits(), today=TODAY, refund_date=DAY.replace(month=1))
    assert codes(err.value) == [
        ("EFFECTIVE_DATE_TOO_EARLY", ("refundDate",)),
        ("AMOUNT_EXCEEDS_UNAPPLIED", ("amount",)),
    ]
    for bad, code in (("0", "AMOUNT_NOT_POSITIVE"), ("0.001", "AMOUNT_PRECISION")):
        with pytest.raises(Rejected) as err:
            engine.refund(cm, Decimal(bad), limits=Limits(), today=TODAY, refund_date=None)
        assert codes(err.value) == [(code, ("amount",))]


def test_refund_items_limit_at_max_and_above():
    cm = memo(mitem(1, 100), mitem(2, 100), mitem(3, 100))
    assert (
        len(
            engine.refund(
                cm, Decimal("2.00"), limits=Limits(refund_items=2), today=TODAY, refund_date=None
            ).items
        )
        == 2
    )
    with pytest.raises(Rejected) as err:
        engine.refund(cm, Decimal("2.01"), limits=Limits(refund_items=2), today=TODAY, refund_date=None)
    (limit,) = err.value.errors
    assert (limit.name, limit.max, limit.actual, limit.remedies) == (
        "REFUND_ITEMS",
        2,
        3,
        ("SPECIFY_SOURCE_ITEMS",),
    )
