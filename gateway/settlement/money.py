"""Currencies and exact money.

Amounts are ``Decimal`` in the rules, integer minor units in the database and strings on the wire.
This module is the only place that converts between them, and ``allocate`` is the only place that
divides money: largest-remainder rounding, ties to the earlier share.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from gateway.settlement.errors import AmountNotPositive, AmountPrecision, InvalidCurrency
from gateway.settlement.strict import amount_text

# ISO 4217 minor-unit exponents of the currencies the gateway accepts.
EXPONENTS: dict[str, int] = {
    "AED": 2,
    "ARS": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PEN": 2,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
    "ZAR": 2,
}

# The largest amount a document may carry, in minor units: fits a signed 64-bit column with room
# for sums over many documents.
MAX_MINOR = 10**15


def exponent(currency: str, *, field: Sequence[str] = ("currency",)) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise InvalidCurrency(currency, field=field) from None


def to_minor(amount: Decimal | str, currency: str, *, field: Sequence[str] = ("amount",)) -> int:
    """The amount in minor units; refuses more decimals than the currency has."""
    value = parse_decimal(amount, field=field)
    exp = exponent(currency)
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise AmountPrecision(value, currency, exp, field=field)
    minor = int(scaled)
    if abs(minor) > MAX_MINOR:
        raise AmountPrecision(value, currency, exp, field=field, too_large=True)
    return minor


def positive_minor(amount: Decimal | str, currency: str, *, field: Sequence[str]) -> int:
    """``to_minor`` for an amount that must be greater than zero."""
    minor = to_minor(amount, currency, field=field)
    if minor <= 0:
        raise AmountNotPositive(parse_decimal(amount, field=field), field=field)
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    """The exact Decimal of ``minor`` units, with exactly the currency's decimals."""
    exp = EXPONENTS[currency]
    return Decimal(minor).scaleb(-exp) if exp else Decimal(minor)


def format_minor(minor: int, currency: str) -> str:
    """The wire form: "10.00", "1000" for JPY, "1.500" for KWD. Never scientific notation."""
    return format(from_minor(minor, currency), "f")


def parse_decimal(amount: Decimal | str, *, field: Sequence[str] = ("amount",)) -> Decimal:
    """The Decimal of an amount string, refused (INVALID_VALUE) unless it is plain ASCII digits: the
    text is checked before a Decimal is built, so "1e999990" costs nothing."""
    if isinstance(amount, Decimal):
        value = amount
    else:
        try:
            value = Decimal(amount_text(str(amount), field=field))
        except InvalidOperation:
            raise AmountPrecision(str(amount), None, None, field=field, malformed=True) from None
    if not value.is_finite():
        raise AmountPrecision(str(amount), None, None, field=field, malformed=True)
    return value


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights`` by the largest-remainder method.

    Invariant: the shares add up to ``total`` exactly, and a zero weight gets zero. Ties in the
    remainder go to the earlier share. With all weights zero, nothing can be split: all zeros,
    unless ``total`` is zero too (the caller checks that total ≤ sum of what is open).
    """
    weight_sum = sum(weights)
    if weight_sum <= 0:
        if total:
            raise ValueError("cannot allocate a non-zero total over zero weights")
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    short = total - sum(shares)
    # Largest remainder first; on equal remainders the earlier index wins (stable sort on -rem).
    order = sorted(range(len(weights)), key=lambda i: -remainders[i])
    for i in order[:short]:
        shares[i] += 1
    return shares
