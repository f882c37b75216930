"""Strict input: what a string, a date or a name may be before anything else looks at it.

Every check here is cheap and bounded (a regular expression over a length-capped string), so that a
hostile value is refused before an expensive conversion (``Decimal("1e999990")`` then ``scaleb``
takes seconds), and identically on SQLite and PostgreSQL (which refuses NUL bytes on its own, with
an internal error). Each refusal is an ``InvalidValue`` with the field path.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from gateway.settlement.errors import InvalidValue, RuleViolation

# An amount on the wire: ASCII digits, an optional sign and an optional fraction, nothing else.
AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
# No amount needs more characters (MAX_MINOR has 16 digits; an exponent at most 3 decimals).
MAX_AMOUNT_CHARS = 40
# Printable text: no C0/C1 control characters (NUL included), no lone surrogates; \t \n allowed in
# long free text only.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The longest text each input field takes (the column sizes of gateway/tables.py); any other text
# field (ids, numbers, keys) at most DEFAULT_TEXT_CHARS.
TEXT_CHARS: dict[str, int] = {
    "name": 255,
    "number": 64,
    "currency": 3,
    "sku": 255,
    "description": 2_000,
    "comment": 2_000,
    "reasonCode": 255,
    "method": 32,
    "idempotencyKey": 255,
}
MULTILINE = frozenset({"description", "comment"})
DEFAULT_TEXT_CHARS = 255


def amount_text(value: str, *, field: Sequence[str]) -> str:
    """``value`` when it is a plain decimal amount, else INVALID_VALUE (no Decimal is built)."""
    if len(value) > MAX_AMOUNT_CHARS or AMOUNT.fullmatch(value) is None:
        shown = value if len(value) <= MAX_AMOUNT_CHARS else value[:MAX_AMOUNT_CHARS] + "…"
        raise InvalidValue(
            f"{shown!r} is not an amount: ASCII digits with an optional '-' and '.', e.g. \"14.99\"",
            field=field,
        )
    return value


def text(value: str, *, field: Sequence[str], max_chars: int, multiline: bool = False) -> list[RuleViolation]:
    """Refusals for a text input: too long, or with control characters (NUL included)."""
    out: list[RuleViolation] = []
    if len(value) > max_chars:
        out.append(InvalidValue(f"at most {max_chars:,} characters, got {len(value):,}", field=field))
    if (_CONTROL if multiline else _CONTROL_LINE).search(value):
        out.append(InvalidValue("control characters (NUL included) are not allowed", field=field))
    return out


def day(value: date, *, field: Sequence[str], today: date, max_distance_days: int) -> list[RuleViolation]:
    """A date more than ``max_distance_days`` from today is refused (9999-12-31 would lock a memo)."""
    earliest, latest = today - timedelta(days=max_distance_days), today + timedelta(days=max_distance_days)
    if earliest <= value <= latest:
        return []
    return [
        InvalidValue(
            f"{value} is outside {earliest} … {latest} (today ± {max_distance_days} days)", field=field
        )
    ]


def iso_day(value: str) -> date | None:
    """A date written exactly YYYY-MM-DD (no week dates, no compact form), or None."""
    if len(value) != 10 or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value, re.ASCII):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def check_input(
    value: Any, *, today: date, max_distance_days: int, field: Sequence[str] = ()
) -> list[RuleViolation]:
    """Every text and date of an input (dataclasses, lists, strings, dates), with its path in camelCase."""
    return list(_walk(value, tuple(field), today, max_distance_days))


def _walk(value: Any, field: tuple[str, ...], today: date, distance: int) -> Iterator[RuleViolation]:
    if isinstance(value, str):
        name = next((p for p in reversed(field) if not p.isdigit()), "")
        yield from text(
            value,
            field=field,
            max_chars=TEXT_CHARS.get(name, DEFAULT_TEXT_CHARS),
            multiline=name in MULTILINE,
        )
    elif isinstance(value, date):
        yield from day(value, field=field, today=today, max_distance_days=distance)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            yield from _walk(item, (*field, str(n)), today, distance)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name, camel in _fields(type(value)):
            yield from _walk(getattr(value, name), (*field, camel), today, distance)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    """A dataclass's fields and their camelCase names, worked out once per class."""
    return tuple((f.name, _camel(f.name)) for f in dataclasses.fields(cls))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
