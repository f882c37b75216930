"""The allocation rules on plain integers: FIFO, PRORATION, pairing, order, the guard."""

from settlement_factories import mitem, titem

from gateway.settlement import allocation
from gateway.settlement.model import FIFO, PRORATION


def test_proration_of_100_00_over_three_equal_items_is_exact():
    shares = allocation.proration(10000, [5000, 5000, 5000])
    assert shares == [3334, 3333, 3333]
    assert sum(shares) == 10000


def test_proration_items_with_nothing_open_get_nothing():
    assert allocation.proration(100, [0, 300, 0, 100]) == [0, 75, 0, 25]


def test_proration_ties_go_to_the_earlier_item():
    assert allocation.proration(2, [1, 1, 1]) == [1, 1, 0]
    assert allocation.proration(1, [3, 3]) == [1, 0]


def test_proration_never_exceeds_a_capacity():
    assert allocation.proration(3, [1, 1, 1]) == [1, 1, 1]
    assert allocation.proration(299, [1, 99, 200]) == [1, 99, 199]


def test_fifo_fills_each_item_before_the_next():
    assert allocation.fifo(250, [100, 0, 100, 100]) == [100, 0, 100, 50]


def test_fifo_order_puts_tax_items_right_after_their_parents():
    items = [
        titem(1, 100),
        titem(2, 100),
        titem(3, 10, "TAX", parent=1),
        titem(4, 10, "TAX", parent=2),
        titem(5, 5, "DISCOUNT", parent=1),
    ]
    assert [i.id for i in allocation.fifo_order(items)] == [1, 3, 2, 4, 5]


def test_fifo_order_for_memo_items_sorts_by_seq():
    items = [mitem(7, 1, seq=3), mitem(8, 1, "TAX", parent=9, seq=2), mitem(9, 1, seq=1)]
    assert [i.id for i in allocation.fifo_order(items)] == [9, 8, 7]


def test_pairing_lays_each_give_over_the_receives_in_order():
    assert list(allocation.pair([70, 30], [50, 50])) == [(0, 0, 50), (0, 1, 20), (1, 1, 30)]
    assert list(allocation.pair([0, 10], [0, 10])) == [(1, 1, 10)]


def test_spread_chooses_the_rule():
    assert allocation.spread(FIFO, 10, [6, 6]) == [6, 4]
    assert allocation.spread(PRORATION, 10, [6, 6]) == [5, 5]


def test_proration_guard_falls_back_to_fifo_with_the_two_numbers():
    rule, warning = allocation.guarded_rule(PRORATION, target_items=101, memo_items=100, guard=10_000)
    assert rule == FIFO
    assert warning is not None and warning.code == "PRORATION_FALLBACK_TO_FIFO"
    assert "101" in warning.message and "100" in warning.message
    assert warning.data == {"targetItems": 101, "memoItems": 100, "guard": 10_000}
    assert allocation.guarded_rule(PRORATION, target_items=100, memo_items=100, guard=10_000) == (
        PRORATION,
        None,
    )
