"""Strict input, without a database: amounts, dates, text, ids, document totals, cursors."""

from __future__ import annotations

import base64
import json
import time
from datetime import date
from decimal import Decimal

import pytest

from gateway import ids
from gateway.settlement import strict
from gateway.settlement.documents import NewItem, plan_items
from gateway.settlement.errors import InvalidValue, Rejected
from gateway.settlement.money import MAX_MINOR, positive_minor, to_minor

BAD_AMOUNTS = [
    "1e2",
    "1_0.00",
    "١٢",
    "１.００",
    " 1.00",
    "1.00 ",
    "+1",
    ".5",
    "1.",
    "NaN",
    "Infinity",
    "",
    "0x10",
]
TODAY = date(2026, 3, 2)


@pytest.mark.parametrize("bad", BAD_AMOUNTS)
def test_only_plain_ascii_decimal_strings_are_amounts(bad: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        to_minor(bad, "USD", field=("invoices", "0", "amount"))
    assert caught.value.code == "INVALID_VALUE"
    assert caught.value.field == ("invoices", "0", "amount")


def test_a_huge_exponent_is_refused_before_any_decimal_is_built() -> None:
    started = time.monotonic()
    for bad in ("1e999990", "9" * 100_000, "1" + "0" * 5000 + ".00"):
        with pytest.raises(InvalidValue):
            positive_minor(bad, "USD", field=("amount",))
    assert time.monotonic() - started < 1.0  # Decimal("1e999990").scaleb(2) alone took ~26 s


def test_plain_amounts_still_parse_to_the_cent() -> None:
    assert to_minor("14.99", "USD") == 1499
    assert to_minor("-5", "USD") == -500
    assert to_minor("1.500", "KWD") == 1500
    assert to_minor(Decimal("2.50"), "USD") == 250
    assert to_minor("10.000", "USD") == 1000  # trailing zeros are exact


def test_a_documents_total_stays_in_the_stored_range_not_only_each_item() -> None:
    biggest = format(Decimal(MAX_MINOR).scaleb(-2), "f")  # one item at the per-item maximum
    assert [p.amount for p in plan_items([NewItem(biggest)], "USD", max_items=10)] == [MAX_MINOR]
    with pytest.raises(Rejected) as caught:
        plan_items([NewItem(biggest), NewItem("0.01")], "USD", max_items=10)
    assert [(v.code.value, v.field) for v in caught.value.errors] == [("INVALID_VALUE", ("items",))]


def test_dates_are_written_yyyy_mm_dd_only() -> None:
    assert strict.iso_day("2026-01-31") == date(2026, 1, 31)
    for bad in ("20260131", "2026-W05-6", "2026-1-31", "２０２６-01-31", "2026-02-30", "2026-01-31T00:00"):
        assert strict.iso_day(bad) is None, bad


def test_dates_are_within_the_window_around_today() -> None:
    assert strict.day(date(2036, 3, 1), field=("d",), today=TODAY, max_distance_days=3660) == []
    (far,) = strict.day(date(9999, 12, 31), field=("effectiveDate",), today=TODAY, max_distance_days=3660)
    assert (far.code, far.field) == ("INVALID_VALUE", ("effectiveDate",))
    assert strict.day(date(1, 1, 1), field=("d",), today=TODAY, max_distance_days=3660)


def test_text_is_bounded_and_free_of_control_characters() -> None:
    assert strict.text("Acme GmbH", field=("name",), max_chars=255) == []
    assert strict.text("line\nbreak", field=("comment",), max_chars=10, multiline=True) == []
    for bad in ("a\x00b", "a\x1bb", "a\nb", "\ud800"):
        (v,) = strict.text(bad, field=("name",), max_chars=255)
        assert (v.code, v.field) == ("INVALID_VALUE", ("name",))
    (long,) = strict.text("x" * 256, field=("name",), max_chars=255)
    assert "at most 255" in long.message


def test_every_text_and_date_of_an_input_is_walked_with_camel_case_paths() -> None:
    from dataclasses import dataclass

    @dataclass
    class Item:
        amount: str
        description: str | None = None

    @dataclass
    class Input:
        reason_code: str | None
        memo_date: date | None
        items: list[Item]

    value = Input("r\x00", date(9999, 12, 31), [Item("1.00"), Item("1.00", "d" * 2001)])
    found = strict.check_input(value, today=TODAY, max_distance_days=3660)
    assert [v.field for v in found] == [("reasonCode",), ("memoDate",), ("items", "1", "description")]


def test_global_ids_are_canonical() -> None:
    pk = ids.encode("CreditMemo", 1)
    assert ids.decode(pk) == ("CreditMemo", 1)
    assert ids.decode(ids.encode("CreditMemo", 12)) == ("CreditMemo", 12)

    def raw(text: str, pad: bool = False) -> str:
        encoded = base64.urlsafe_b64encode(text.encode()).decode()
        return encoded if pad else encoded.rstrip("=")

    for bad in (
        raw("CreditMemo:１"),
        raw("CreditMemo:12", pad=True),
        raw("CreditMemo:01"),
        raw("CreditMemo:١"),
    ):
        assert ids.decode(bad) is None, bad
        assert ids.ref(bad, "CreditMemo").pk != 1  # at most a number that no document has
    assert ids.ref("CM00000001", "CreditMemo").pk is None
    for bad in ("CM\x0000001", " CM00000001", "x" * 65, "ＣＭ1"):
        assert ids.ref(bad, "CreditMemo").pk == -1, bad


@pytest.mark.parametrize(
    "payload",
    [
        [],
        ["id"],
        ["id", "x"],
        ["id", 2**70],
        ["id", 1.5],
        ["id", True],
        ["id", [1]],
        ["id", {"d": "x"}],
        {"a": 1},
    ],
)
def test_crafted_cursors_are_invalid_values(payload: object) -> None:
    from schema.connection import QueryArgumentError, decode_cursor, encode_cursor

    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(QueryArgumentError) as caught:
        decode_cursor(cursor, "id", 1)
    assert caught.value.extensions == {
        "code": "INVALID_VALUE",
        "category": "INVALID_VALUE",
        "field": ["after"],
    }
    assert decode_cursor(encode_cursor("id", [7]), "id", 1) == (7,)
    when = date(2026, 1, 2)
    assert decode_cursor(encode_cursor("memo_date,id", [when, 3]), "memo_date,id", 2) == (when, 3)
    with pytest.raises(QueryArgumentError):
        decode_cursor(encode_cursor("memo_date,id", ["2026-01-02", 3]), "memo_date,id", 2)
