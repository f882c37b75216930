"""A credit memo as a PDF document (fpdf2): account, numbers, items with their taxes, parts,
applications and totals in the currency's format. Pure: a ``MemoDocument`` in, bytes out.

Text is set in DejaVu Sans, shipped in ``gateway/fonts`` (Bitstream Vera licence) and embedded as a
subset, so names and comments in Latin, Greek, Cyrillic, Hebrew and most European scripts print as
written; characters outside the font (CJK, for example) print as a replacement character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.settlement.money import from_minor


@dataclass(frozen=True, slots=True)
class Line:
    kind: str
    sku: str | None
    description: str | None
    amount: int
    is_child: bool = False


@dataclass(frozen=True, slots=True)
class Movement:
    label: str  # a part: the target's number or "Unapplied"; an application: its kind
    when: date | None
    amount: int


@dataclass(frozen=True, slots=True)
class MemoDocument:
    number: str
    status: str
    memo_date: date
    currency: str
    account_number: str
    account_name: str
    amount: int
    tax_amount: int
    applied_amount: int
    unapplied_amount: int
    refund_amount: int
    reason_code: str | None = None
    comment: str | None = None
    lines: Sequence[Line] = field(default_factory=tuple)
    parts: Sequence[Movement] = field(default_factory=tuple)
    applications: Sequence[Movement] = field(default_factory=tuple)


def money(minor: int, currency: str) -> str:
    """1234.5 USD → "1,234.50 USD"; the currency's own number of decimals (JPY none, KWD three)."""
    return f"{format(from_minor(minor, currency), ',f')} {currency}"


FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"


def _text(value: str | None) -> str:
    """The text with what the font cannot draw replaced, so nothing is silently dropped."""
    glyphs = _glyphs()
    return "".join(c if ord(c) in glyphs else "\N{REPLACEMENT CHARACTER}" for c in value or "")


@cache
def _glyphs() -> frozenset[int]:
    from fontTools.ttLib import TTFont  # fpdf2's own dependency

    with TTFont(FONTS / "DejaVuSans.ttf") as font:
        return frozenset(font.getBestCmap())


def render(doc: MemoDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(f"Credit memo {doc.number}")
    pdf.set_creator("settlement-gateway")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 10, _text(f"Credit memo {doc.number}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=10)
    for label, value in (
        ("Account", f"{doc.account_number} - {doc.account_name}"),
        ("Memo date", doc.memo_date.isoformat()),
        ("Status", doc.status),
        ("Currency", doc.currency),
        ("Reason code", doc.reason_code or "-"),
        ("Comment", doc.comment or "-"),
    ):
        pdf.cell(35, 6, label)
        pdf.multi_cell(0, 6, _text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _table(
        pdf,
        "Items",
        ("Kind", "SKU", "Description", "Amount"),
        [
            (
                ("  " if ln.is_child else "") + ln.kind,
                ln.sku or "",
                ln.description or "",
                money(ln.amount, doc.currency),
            )
            for ln in doc.lines
        ],
    )
    _table(
        pdf,
        "Parts",
        ("Target", "", "", "Amount"),
        [(p.label, "", "", money(p.amount, doc.currency)) for p in doc.parts],
    )
    _table(
        pdf,
        "Applications",
        ("Kind", "Date", "", "Amount"),
        [
            (a.label, a.when.isoformat() if a.when else "", "", money(a.amount, doc.currency))
            for a in doc.applications
        ],
    )

    pdf.ln(4)
    pdf.set_font(FONT, "B", 11)
    pdf.cell(0, 8, "Totals", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=10)
    for label, minor in (
        ("Total", doc.amount),
        ("Tax", doc.tax_amount),
        ("Applied", doc.applied_amount),
        ("Refunded", doc.refund_amount),
        ("Unapplied", doc.unapplied_amount),
    ):
        pdf.cell(140, 6, label)
        pdf.cell(0, 6, money(minor, doc.currency), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


WIDTHS = (30, 35, 85, 40)


def _table(pdf: FPDF, title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    pdf.ln(4)
    pdf.set_font(FONT, "B", 11)
    pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "B", 9)
    for width, name in zip(WIDTHS, header, strict=True):
        pdf.cell(width, 6, name, border="B", align="R" if name == "Amount" else "L")
    pdf.ln()
    pdf.set_font(FONT, size=9)
    if not rows:
        pdf.cell(0, 6, "none", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for row in rows:
        for n, (width, value) in enumerate(zip(WIDTHS, row, strict=True)):
            text = _text(value)[:200]  # far more than a column holds: the loop below stays short
            while text and pdf.get_string_width(text) > width - 2:  # one line per row: cut long text
                text = text[:-1]
            pdf.cell(width, 6, text, align="R" if n == len(WIDTHS) - 1 else "L")
        pdf.ln()
