"""Opaque global ids ("CreditMemo:12" in URL-safe base64) and references that accept an id or a number."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

TYPES = frozenset(
    {
        "Account",
        "Invoice",
        "InvoiceItem",
        "DebitMemo",
        "DebitMemoItem",
        "CreditMemo",
        "CreditMemoItem",
        "CreditMemoPart",
        "CreditMemoItemPart",
        "Payment",
        "PaymentPart",
        "PaymentItemPart",
        "Application",
        "Job",
        "CreditMemoFile",
    }
)


def encode(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).rstrip(b"=").decode()


def decode(value: str) -> tuple[str, int] | None:
    """(type, pk) of a global id, or None when ``value`` is not one. Canonical only: the id must be
    exactly what ``encode`` writes (no padding, ASCII digits, no leading zero), so one document has
    one id and "CreditMemo:１" names nothing."""
    if len(value) > 64 or not value.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = raw.partition(":")
    if not sep or type_name not in TYPES or not pk.isascii() or not pk.isdigit() or len(pk) > 18:
        return None
    if encode(type_name, int(pk)) != value:
        return None
    return type_name, int(pk)


@dataclass(frozen=True, slots=True)
class Ref:
    """What a caller wrote to name a document: a global id of one of ``types``, or its number."""

    raw: str
    pk: int | None
    type_name: str | None

    @property
    def number(self) -> str:
        return self.raw


def plausible_number(raw: str) -> bool:
    """A document or account number is printable ASCII without spaces, at most 64 characters:
    anything else names nothing and is not looked up."""
    return 0 < len(raw) <= 64 and raw.isascii() and raw.isprintable() and " " not in raw


def ref(raw: str, *types: str) -> Ref:
    decoded = decode(raw)
    if decoded is not None and decoded[0] in types:
        return Ref(raw, decoded[1], decoded[0])
    if decoded is not None:
        # A valid id of another type never names a document of these types.
        return Ref(raw, -1, decoded[0])
    if not plausible_number(raw):
        return Ref(raw, -1, None)
    return Ref(raw, None, None)
